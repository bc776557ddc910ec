// "Try it": a form generated from the service's input schema. Text boxes for text,
// file pickers (with a preview) for images and files, number fields, JSON editors for
// json and tensor inputs. The answer is shown as text, whatever the model returned.

import { enc, request } from "../api.js";
import { errorBox, fill, h } from "../dom.js";

function field(input) {
  const id = `input-${input.name}`;
  const example = input.example;
  const hint = [input.type, input.dtype, input.shape ? `[${input.shape.join(", ")}]` : null,
    input.description].filter(Boolean).join(" · ");
  let control;
  let preview = null;
  if (input.type === "image" || input.type === "file") {
    control = h("input", { type: "file", id, testid: id,
      accept: input.type === "image" ? "image/*" : null });
    if (input.type === "image") {
      preview = h("img", { class: "preview", testid: `preview-${input.name}`, alt: "", hidden: true });
      let url = "";
      control.addEventListener("change", () => {
        if (url) URL.revokeObjectURL(url);
        url = control.files.length ? URL.createObjectURL(control.files[0]) : "";
        preview.hidden = !url;
        if (url) preview.src = url;
      });
    }
  } else if (input.type === "number") {
    control = h("input", { type: "number", step: "any", id, testid: id,
      value: typeof example === "number" ? String(example) : "" });
  } else if (input.type === "text") {
    control = h("textarea", { id, testid: id, rows: 3,
      value: typeof example === "string" ? example : "" });
  } else { // json, tensor
    control = h("textarea", { id, testid: id, rows: 4, spellcheck: "false",
      value: example === undefined ? "" : JSON.stringify(example) });
  }
  return { input, control, element: h("div", {},
    h("label", { for: id }, input.name, " ", h("span", { class: "hint" }, `(${hint})`)),
    control, preview) };
}

function body(fields) {
  const files = fields.some((f) => f.control.type === "file" && f.control.files.length);
  if (files) { // multipart: files for image/file, fields for the rest (parsed as JSON there)
    const form = new FormData();
    for (const { input, control } of fields) {
      if (control.type === "file") {
        if (control.files.length) form.append(input.name, control.files[0]);
      } else if (control.value !== "") {
        form.append(input.name, control.value);
      }
    }
    return { form };
  }
  const json = {};
  for (const { input, control } of fields) {
    if (control.type === "file" || control.value === "") continue;
    if (input.type === "number") json[input.name] = Number(control.value);
    else if (input.type === "text") json[input.name] = control.value;
    else {
      try {
        json[input.name] = JSON.parse(control.value);
      } catch (err) {
        throw Object.assign(new Error(`input ${input.name} is not valid JSON: ${err.message}`),
          { fix: 'write JSON, e.g. [5.1, 3.5, 1.4, 0.2] or {"key": 1}' });
      }
    }
  }
  return { json };
}

function show(out, meta, resp) {
  const data = resp.data && typeof resp.data === "object" && "data" in resp.data
    ? resp.data.data : resp.data;
  const md = (resp.data && resp.data.metadata) || {};
  const type = md.content_type || "";
  fill(meta, `version ${resp.headers.get("x-model-version") || md.version || "?"}`,
    md.duration !== undefined ? ` · ${Number(md.duration).toFixed(1)} ms` : "",
    md.request_id ? ` · request ${md.request_id}` : "");
  fill(out, typeof data === "string" ? data : JSON.stringify(data, null, 2));
  if (type.startsWith("image/") && typeof data === "string") {
    out.after(h("img", { class: "preview", testid: "predict-image", alt: "output",
      src: `data:${type};base64,${data}` }));
  }
}

/** The form; ``versions()`` gives the version numbers a call may be pinned to. */
export function testForm(page, svc, onTask) {
  const fields = svc.inputs.map(field);
  const version = h("select", { testid: "predict-version", id: "predict-version" },
    h("option", { value: "" }, "any (traffic split)"));
  const out = h("pre", { testid: "predict-output", "aria-live": "polite" });
  const meta = h("p", { class: "muted", testid: "predict-meta" });
  const submit = h("button", { type: "submit", testid: "predict-submit" }, "Predict");
  const asTask = h("button", { type: "button", class: "secondary", testid: "predict-async" },
    "Run as async task");
  const path = `/v1/services/${enc(svc.name)}`;

  async function send(route) {
    let payload;
    try {
      payload = body(fields);
    } catch (err) {
      fill(out, errorBox(err, "predict-error"));
      return null;
    }
    const headers = version.value ? { "X-Model-Version": version.value } : {};
    for (const img of out.parentElement.querySelectorAll("img[data-testid=predict-image]")) {
      img.remove();
    }
    fill(meta, "…");
    try {
      return await request("POST", `${path}/${route}`, { ...payload, headers });
    } catch (err) {
      fill(meta, err.status ? `HTTP ${err.status}` : "");
      fill(out, errorBox(err, "predict-error"));
      return null;
    }
  }

  const form = h("form", { testid: "predict-form" },
    fields.length ? fields.map((f) => f.element)
      : h("p", { class: "muted" }, "This service declares no inputs."),
    h("div", { class: "row" }, h("div", {}, h("label", { for: "predict-version" },
      "Version"), version)),
    h("div", { class: "actions" }, submit, asTask));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    submit.disabled = true;
    const resp = await send("infer");
    submit.disabled = false;
    if (resp) show(out, meta, resp);
  });
  asTask.addEventListener("click", async () => {
    const resp = await send("tasks");
    if (resp) {
      fill(meta, `task ${resp.data.task_id}: ${resp.data.status}`);
      fill(out, JSON.stringify(resp.data, null, 2));
      onTask();
    }
  });
  return {
    element: h("div", {}, form, h("h2", {}, "Answer"), meta, out),
    setVersions(numbers) {
      const have = [...version.options].slice(1).map((o) => Number(o.value));
      if (have.join() === numbers.join()) return;
      const chosen = version.value;
      fill(version, h("option", { value: "" }, "any (traffic split)"),
        numbers.map((n) => h("option", { value: String(n) }, `v${n}`)));
      version.value = numbers.includes(Number(chosen)) ? chosen : "";
    },
  };
}
