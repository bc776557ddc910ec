// Building the page: elements and text nodes only. Strings always become text, so a
// model's output or a file name is shown as written and never parsed as HTML.

const SVG = "http://www.w3.org/2000/svg";
const SVG_TAGS = new Set(["svg", "path", "line", "polyline", "text", "g", "rect", "circle",
  "title"]);

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** h("button", {testid: "x", onclick: fn, class: "danger"}, "Delete") */
export function h(tag, attrs = {}, ...children) {
  const el = SVG_TAGS.has(tag) ? document.createElementNS(SVG, tag) : document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "testid") el.setAttribute("data-testid", value);
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "value") el.value = value;
    else if (key === "checked") el.checked = Boolean(value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** An error as the platform gave it: message, how to fix it, and every problem. */
export function errorBox(err, testid = "error") {
  const problems = (err && err.problems) || [];
  return h("div", { class: "error", testid, role: "alert" },
    h("strong", {}, err.message || String(err)),
    err.code ? h("span", { class: "muted" }, ` (${err.code})`) : null,
    err.fix ? h("div", { class: "fix" }, "Fix: ", err.fix) : null,
    problems.length ? h("ul", { testid: "problems" }, problems.map((p) => h("li", {},
      p.path ? h("code", {}, p.path) : null, p.path ? ": " : null, p.message,
      p.fix ? h("span", { class: "fix" }, ` Fix: ${p.fix}`) : null))) : null);
}

/** Ask before something that cannot be undone; resolves true when confirmed. */
export function confirmDialog(message, action = "Delete") {
  return new Promise((resolve) => {
    const done = (answer) => { overlay.remove(); resolve(answer); };
    const overlay = h("div", { class: "overlay", testid: "confirm-dialog" },
      h("div", { class: "dialog", role: "dialog", "aria-modal": "true" },
        h("p", {}, message),
        h("div", { class: "actions" },
          h("button", { type: "button", class: "secondary", testid: "confirm-cancel",
            onclick: () => done(false) }, "Cancel"),
          h("button", { type: "button", class: "danger", testid: "confirm",
            onclick: () => done(true) }, action))));
    document.body.append(overlay);
  });
}

export function badge(text, testid) {
  return h("span", { class: `badge ${text}`, testid }, text || "unknown");
}

/** Change a badge in place (a test or a reader holding it keeps a live element). */
export function setBadge(el, text) {
  if (el.textContent !== text) el.textContent = text || "unknown";
  el.setAttribute("class", `badge ${text}`);
}

export function when(ts) {
  if (!ts) return "";
  return new Date(ts * 1000).toLocaleString();
}

export function num(value, digits = 1) {
  return value === null || value === undefined ? "–" : Number(value).toFixed(digits);
}
