// Create: a name and a package zip, uploaded with a progress bar; then the build and the
// rollout as they happen, until the service runs (or every reason it cannot).

import { enc, get, request, upload } from "../api.js";
import { badge, errorBox, fill, h, setBadge } from "../dom.js";

/** Build log and status of a service being created or updated, until it runs or fails. */
export function followRollout(page, name, out) {
  const status = badge("pending", "create-phase");
  const message = h("span", { class: "muted", testid: "create-message" });
  const log = h("pre", { class: "light", testid: "build-log" });
  const link = h("p", { hidden: true },
    h("a", { href: `#/services/${enc(name)}`, testid: "create-done" }, `Open ${name}`));
  fill(out, h("p", { testid: "create-status" }, h("strong", {}, name), " ", status, " ", message),
    link, h("details", { open: true }, h("summary", {}, "Build log"), log));
  let finished = false;
  page.every(1000, async () => {
    if (finished) return;
    const svc = await get(`/api/v1/services/${enc(name)}`, { signal: page.signal });
    setBadge(status, svc.phase);
    fill(message, svc.message || "");
    const number = svc.target_version || svc.serving_version;
    if (number) {
      const resp = await request("GET", `/api/v1/models/${enc(svc.spec.model || name)}` +
        `/versions/${number}/build-log`, { signal: page.signal });
      if (log.textContent !== resp.data) {
        log.textContent = resp.data || `(${resp.headers.get("x-build-state") || "waiting"})`;
        log.scrollTop = log.scrollHeight;
      }
    }
    if (svc.phase === "running" && svc.serving_version === number) {
      link.hidden = false;
      finished = true;
    } else if (svc.phase === "failed") {
      finished = true;
    }
  });
}

export function render(page) {
  const name = h("input", { id: "create-name", testid: "create-name",
    placeholder: "from config.json", pattern: "[a-z0-9]([a-z0-9\\-]*[a-z0-9])?" });
  const file = h("input", { id: "create-file", type: "file", testid: "create-file",
    accept: ".zip,application/zip", required: true });
  const runtime = h("select", { id: "create-runtime", testid: "create-runtime" },
    h("option", { value: "process" }, "process (a virtualenv)"),
    h("option", { value: "docker" }, "docker (an image per version)"));
  const replicas = h("input", { id: "create-replicas", type: "number", min: 0, max: 64,
    value: 1, testid: "create-replicas" });
  const progress = h("progress", { max: 1, value: 0, testid: "create-progress", hidden: true });
  const out = h("div", { testid: "create-result" });
  const submit = h("button", { type: "submit", testid: "create-submit" }, "Upload and deploy");
  const form = h("form", { testid: "create-form" },
    h("div", { class: "row" },
      h("div", {}, h("label", { for: "create-name" }, "Name ",
        h("span", { class: "hint" }, "(lower case, digits, -)")), name),
      h("div", {}, h("label", { for: "create-runtime" }, "Runtime"), runtime),
      h("div", {}, h("label", { for: "create-replicas" }, "Replicas"), replicas)),
    h("label", { for: "create-file" }, "Package ",
      h("span", { class: "hint" }, "(a zip: config.json, code, weights, requirements.txt)")),
    file,
    h("div", { class: "actions" }, submit),
    progress);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!file.files.length) {
      fill(out, errorBox({ message: "no package chosen", fix: "pick the model's zip file" }));
      return;
    }
    const body = new FormData();
    body.append("package", file.files[0]);
    if (name.value.trim()) body.append("name", name.value.trim());
    const spec = {};
    if (runtime.value !== "process") spec.runtime = runtime.value;
    if (Number(replicas.value) !== 1) spec.replicas = Number(replicas.value);
    if (Object.keys(spec).length) body.append("spec", JSON.stringify(spec));
    submit.disabled = true;
    progress.hidden = false;
    progress.value = 0;
    fill(out, h("p", { class: "muted" }, "Uploading ", file.files[0].name, "…"));
    try {
      const svc = await upload("POST", "/api/v1/services", body, (f) => { progress.value = f; });
      followRollout(page, svc.name, out);
    } catch (err) {
      fill(out, errorBox(err, "create-error"));
    } finally {
      submit.disabled = false;
    }
  });
  page.root.append(h("div", { class: "toolbar" }, h("h1", {}, "Create a service"),
    h("a", { href: "#/services" }, "← Services")), h("section", { class: "card" }, form, out));
}
