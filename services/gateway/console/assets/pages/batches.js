// Batch jobs (docs/batch.md): progress of each, newest first.

import { get } from "../api.js";
import { badge, fill, h, when } from "../dom.js";

const COLUMNS = ["Job", "Service", "Status", "Done", "Failed", "Total", "Items/s", "Created",
  "Results"];
const FINISHED = ["succeeded", "failed", "cancelled"];

function row(b) {
  return h("tr", { testid: "batch-row", "data-batch": b.id },
    h("td", {}, h("code", {}, b.id)),
    h("td", {}, b.service),
    h("td", {}, badge(b.status)),
    h("td", {}, String(b.done)),
    h("td", {}, String(b.failed)),
    h("td", {}, String(b.total)),
    h("td", {}, b.items_per_s ? Number(b.items_per_s).toFixed(1) : "–"),
    h("td", {}, when(b.created_at)),
    h("td", { class: "muted" }, FINISHED.includes(b.status)
      ? `modelport batch results ${b.id} --output DIR` : ""));
}

export function render(page) {
  const body = h("tbody");
  page.root.append(h("h1", {}, "Batch jobs"),
    h("p", { class: "muted" }, "Create one with `modelport batch create SERVICE --input PATH`; ",
      "results download as a zip in ModelArts' layout."),
    h("table", { testid: "batches" },
      h("thead", {}, h("tr", {}, COLUMNS.map((c) => h("th", {}, c)))), body));
  page.every(3000, async () => {
    const resp = await get("/api/v1/batches?limit=100", { signal: page.signal });
    const empty = h("tr", {}, h("td", { colspan: COLUMNS.length, class: "muted" },
      "No batch jobs."));
    fill(body, resp.batches.length ? resp.batches.map(row) : empty);
  });
}
