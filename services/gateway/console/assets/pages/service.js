// One service: how to call it, a form to try it, its charts, versions and canary split,
// actions, events, logs and async tasks.

import { call, enc, get, stream, upload } from "../api.js";
import { lineChart } from "../chart.js";
import { badge, confirmDialog, errorBox, fill, h, setBadge, when } from "../dom.js";
import { testForm } from "./testform.js";

const MAX_LOG_CHARS = 200_000;

function card(title, ...children) {
  return h("section", { class: "card" }, h("h2", {}, title), children);
}

function examples(svc) {
  const code = h("pre", { testid: "call-example" });
  const tabs = h("div", { class: "tabs" });
  const pick = (key) => {
    code.textContent = svc.examples[key];
    for (const b of tabs.children) b.className = b.dataset.key === key ? "" : "secondary";
  };
  for (const key of ["curl", "python", "sdk"]) {
    const b = h("button", { type: "button", testid: `example-${key}`, onclick: () => pick(key) },
      key);
    b.dataset.key = key;
    tabs.append(b);
  }
  pick("curl");
  return h("div", {}, h("dl", { class: "kv" }, h("dt", {}, "URL"),
    h("dd", {}, h("code", { testid: "service-url" }, svc.url))), tabs, code);
}

function charts(page, name) {
  const box = h("div", { class: "charts", testid: "metrics-chart" });
  page.every(5000, async () => {
    const st = await get(`/api/v1/services/${enc(name)}/stats?series=15`, { signal: page.signal });
    const pts = (key) => st.series.map((p) => [p.t, p[key]]);
    fill(box,
      lineChart({ title: "Requests", unit: "per s", testid: "chart-rps",
        series: [{ label: "rps", points: pts("rps") }] }),
      lineChart({ title: "Latency", unit: "ms", testid: "chart-latency",
        series: [{ label: "p50", points: pts("p50") }, { label: "p99", points: pts("p99") }] }),
      lineChart({ title: "Errors", unit: "per s", testid: "chart-errors",
        series: [{ label: "errors", points: pts("errors"), color: 2 }] }));
  });
  return box;
}

function logs(page, name) {
  const out = h("pre", { testid: "logs" });
  const kind = h("select", { testid: "logs-kind" }, ["app", "access", "error"].map(
    (k) => h("option", { value: k }, k)));
  const follow = h("input", { type: "checkbox", testid: "logs-follow", id: "logs-follow" });
  let following = null;
  const base = () => `/api/v1/services/${enc(name)}/logs?kind=${kind.value}&tail=200`;
  const show = (text) => {
    out.textContent = text.length > MAX_LOG_CHARS ? text.slice(-MAX_LOG_CHARS) : text;
    out.scrollTop = out.scrollHeight;
  };
  const stopFollowing = () => { if (following) following.abort(); following = null; };
  const start = () => {
    stopFollowing();
    if (!follow.checked) return;
    following = new AbortController();
    page.signal.addEventListener("abort", stopFollowing);
    out.textContent = "";
    stream(`${base()}&follow=true`, (text) => show(out.textContent + text), following.signal)
      .catch((err) => page.error(err));
  };
  follow.addEventListener("change", start);
  kind.addEventListener("change", () => { out.textContent = ""; start(); });
  page.every(5000, async () => {
    if (!follow.checked) show(await get(base(), { signal: page.signal }));
  });
  return h("div", {}, h("div", { class: "row" }, kind,
    h("label", { for: "logs-follow", class: "inline" }, follow, " follow")), out);
}

function tasks(page, name) {
  const body = h("tbody");
  const result = h("pre", { testid: "task-result", hidden: true });
  const refresh = async () => {
    const resp = await get(`/v1/services/${enc(name)}/tasks?limit=20`, { signal: page.signal });
    fill(body, resp.tasks.length ? resp.tasks.map((t) => h("tr", { testid: "task-row",
      "data-task": t.task_id },
    h("td", {}, h("code", {}, t.task_id.slice(0, 12))), h("td", {}, badge(t.status)),
    h("td", {}, when(t.created_at)), h("td", {}, when(t.finished_at)),
    h("td", {}, t.error ? t.error.message : ""),
    h("td", {}, t.status === "succeeded" ? h("button", { type: "button", class: "secondary",
      onclick: () => page.act(async () => {
        const r = await get(`/v1/tasks/${enc(t.task_id)}/result`);
        result.hidden = false;
        result.textContent = JSON.stringify(r.data, null, 2);
      }) }, "result") : null)))
      : h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No async tasks.")));
  };
  page.every(5000, refresh);
  return { refresh, element: h("div", {}, h("table", { testid: "tasks" },
    h("thead", {}, h("tr", {}, ["Task", "Status", "Created", "Finished", "Error", ""].map(
      (c) => h("th", {}, c)))), body), result) };
}

function versions(page, name, form) {
  const body = h("tbody");
  const split = h("div", { testid: "traffic-editor" });
  const status = h("p", { testid: "traffic-status", class: "muted" });
  const note = h("div");
  let shown = "";
  const apply = (traffic) => page.act(async () => {
    const svc = await call("PUT", `/api/v1/services/${enc(name)}/traffic`, { traffic });
    fill(note, h("p", { class: "notice", testid: "traffic-result" }, traffic.length
      ? `Split set: ${traffic.map((t) => `v${t.version} ${t.percent}%`).join(", ")}`
      : "Split cleared: all traffic to the latest version."));
    shown = ""; // the editor takes the new spec
    await refresh(svc);
  });
  const editor = (svc, usable) => {
    const want = new Map(svc.spec.traffic.map((t) => [t.version, t.percent]));
    if (!want.size && svc.serving_version) want.set(svc.serving_version, 100);
    const inputs = usable.map((n) => h("input", { type: "number", min: 0, max: 100, step: "any",
      testid: `traffic-${n}`, id: `traffic-${n}`, value: String(want.get(n) || 0), size: 5 }));
    fill(split, h("div", { class: "row" }, usable.map((n, i) => h("div", {},
      h("label", { for: `traffic-${n}` }, `v${n} %`), inputs[i]))),
    h("div", { class: "actions" },
      h("button", { type: "button", testid: "traffic-submit", onclick: () => apply(usable
        .map((n, i) => ({ version: n, percent: Number(inputs[i].value) }))
        .filter((t) => t.percent > 0)) }, "Apply split"),
      h("button", { type: "button", class: "secondary", testid: "traffic-clear",
        onclick: () => apply([]) }, "All to latest")));
  };
  async function refresh(svc) {
    const resp = await get(`/api/v1/services/${enc(name)}/versions`, { signal: page.signal });
    const usable = resp.versions.filter((v) => v.state !== "failed").map((v) => v.number);
    form()?.setVersions(usable);
    fill(status, "Serving now: ", svc.traffic.length
      ? svc.traffic.map((t) => `v${t.version} ${t.percent}%`).join(" · ")
      : `v${svc.serving_version || "–"} 100%`);
    fill(body, resp.versions.slice().reverse().map((v) => h("tr", { testid: "version-row",
      "data-version": String(v.number) },
    h("td", {}, `v${v.number}`), h("td", {}, badge(v.state)), h("td", {}, when(v.created_at)),
    h("td", {}, h("code", {}, (v.digest || "").slice(0, 12))),
    h("td", { class: "muted" }, v.error || ""),
    h("td", {}, v.state === "failed" ? null : h("button", { type: "button", class: "secondary",
      testid: `pin-${v.number}`, onclick: () => apply([{ version: v.number, percent: 100 }]) },
    "pin")))));
    const key = `${usable.join()}|${JSON.stringify(svc.spec.traffic)}`;
    if (key !== shown) {
      shown = key;
      editor(svc, usable);
    }
  }
  const file = h("input", { type: "file", accept: ".zip,application/zip", testid: "update-file" });
  const progress = h("progress", { max: 1, value: 0, hidden: true, testid: "update-progress" });
  const result = h("div", { testid: "update-result" });
  const send = h("button", { type: "button", testid: "update-submit", onclick: () => {
    if (!file.files.length) {
      fill(result, errorBox({ message: "no package chosen", fix: "pick the new version's zip" }));
      return;
    }
    const data = new FormData();
    data.append("package", file.files[0]);
    progress.hidden = false;
    send.disabled = true;
    upload("PUT", `/api/v1/services/${enc(name)}/package`, data, (f) => { progress.value = f; })
      .then(async (svc) => {
        if (svc.unchanged) {
          fill(result, h("p", { class: "notice" }, svc.notice));
          return;
        }
        // the view answers before the controller moved: the new version is the newest
        const list = await get(`/api/v1/services/${enc(name)}/versions`);
        const newest = Math.max(...list.versions.map((v) => v.number));
        fill(result, h("p", { class: "notice" }, `Version ${newest} is rolling out; `,
          `v${svc.serving_version} serves until it is ready.`));
      })
      .catch((err) => fill(result, errorBox(err, "update-error")))
      .finally(() => { send.disabled = false; });
  } }, "Upload new version");
  return {
    refresh,
    element: h("div", {},
      h("table", { testid: "versions" }, h("thead", {}, h("tr", {}, ["Version", "State",
        "Created", "Digest", "Error", ""].map((c) => h("th", {}, c)))), body),
      h("h2", {}, "Traffic split"), status, split, note,
      h("h2", {}, "Update"), h("p", { class: "muted" }, "A new zip becomes the next version; ",
        "it takes the traffic once its replicas are ready."), file, " ", send, progress, result),
  };
}

export function render(page, name) {
  const phase = badge("", "service-status");
  const message = h("span", { class: "muted", testid: "service-message" });
  const replicas = h("tbody");
  const events = h("ul", { class: "plain events", testid: "events" });
  const callBox = h("div");
  const tryBox = h("div", {}, h("p", { class: "muted" }, "Loading the input schema…"));
  let form = null;
  let iface = "";
  const taskList = tasks(page, name);
  const vers = versions(page, name, () => form);

  const action = (verb) => page.act(async () => {
    show(await call("POST", `/api/v1/services/${enc(name)}/${verb}?reason=console`));
  });
  const remove = async () => {
    if (!await confirmDialog(`Delete service ${name}? Its URL stops answering at once; `
      + "its model versions are kept.")) return;
    await page.act(async () => {
      await call("DELETE", `/api/v1/services/${enc(name)}`);
      location.hash = "#/services";
    });
  };

  function show(svc) {
    setBadge(phase, svc.phase);
    fill(message, svc.message || "");
    fill(replicas, svc.replicas.length ? svc.replicas.map((r) => h("tr", {},
      h("td", {}, h("code", {}, r.id)), h("td", {}, `v${r.version}`), h("td", {}, r.agent),
      h("td", {}, badge(r.state)), h("td", {}, String(r.restarts)),
      h("td", { class: "muted" }, r.message || "")))
      : h("tr", {}, h("td", { colspan: 6, class: "muted" }, "No replicas.")));
    const now = JSON.stringify(svc.inputs);
    if (now !== iface) { // a new version may take other inputs
      iface = now;
      form = testForm(page, svc, () => page.act(taskList.refresh));
      fill(tryBox, form.element);
      fill(callBox, examples(svc));
    }
    return svc;
  }

  page.root.append(
    h("div", { class: "toolbar" },
      h("h1", { testid: "service-name" }, name, " ", phase),
      h("button", { type: "button", class: "secondary", testid: "action-start",
        onclick: () => action("start") }, "Start"),
      h("button", { type: "button", class: "secondary", testid: "action-stop",
        onclick: () => action("stop") }, "Stop"),
      h("button", { type: "button", class: "secondary", testid: "action-restart",
        onclick: () => action("restart") }, "Restart"),
      h("button", { type: "button", class: "danger", testid: "action-delete", onclick: remove },
        "Delete")),
    h("p", {}, message),
    h("div", { class: "grid" }, card("Call it", callBox), card("Try it", tryBox)),
    card("Metrics (last 15 minutes)", charts(page, name)),
    card("Versions", vers.element),
    h("div", { class: "grid" },
      card("Replicas", h("table", { testid: "replicas" }, h("thead", {}, h("tr", {},
        ["Replica", "Version", "Host", "State", "Restarts", ""].map((c) => h("th", {}, c)))),
      replicas)),
      card("Events", events)),
    card("Logs", logs(page, name)),
    card("Async tasks", taskList.element));

  page.every(2000, async () => {
    const svc = show(await get(`/api/v1/services/${enc(name)}`, { signal: page.signal }));
    await vers.refresh(svc);
  });
  page.every(3000, async () => {
    const resp = await get(`/api/v1/services/${enc(name)}/events?limit=50`,
      { signal: page.signal });
    fill(events, resp.events.slice().reverse().map((e) => h("li", { class: e.type },
      h("span", { class: "muted" }, when(e.ts)), " ", h("strong", {}, e.reason),
      e.version ? ` v${e.version}` : "", ": ", e.message)));
  });
}
