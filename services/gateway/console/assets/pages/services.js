// Every service with its status, version, replicas and recent traffic, refreshed every
// two seconds. Rows are updated in place, so a click never lands on a replaced row.

import { get } from "../api.js";
import { badge, fill, h, num, setBadge } from "../dom.js";

const COLUMNS = ["Name", "Status", "Version", "Replicas", "RPS (1m)", "p50 ms (1m)", "Message"];

function open(name) { location.hash = `#/services/${encodeURIComponent(name)}`; }

function newRow(name) {
  const cells = {
    name: h("td", {}, h("a", { href: `#/services/${encodeURIComponent(name)}` }, name)),
    status: h("td", {}, badge("", "service-status")), version: h("td", {}), replicas: h("td", {}), rps: h("td", {}),
    p50: h("td", {}), message: h("td", { class: "muted" }),
  };
  const tr = h("tr", { testid: "service-row", "data-service": name, class: "clickable",
    onclick: () => open(name) }, Object.values(cells));
  return { tr, cells };
}

export function render(page) {
  const tbody = h("tbody");
  const empty = h("p", { class: "muted", testid: "service-list-empty", hidden: true },
    "No services yet. Create one from a model package (a zip with config.json).");
  page.root.append(
    h("div", { class: "toolbar" }, h("h1", {}, "Services"),
      h("a", { href: "#/create", class: "button", testid: "create-open" }, "Create service")),
    h("table", { testid: "service-list" },
      h("thead", {}, h("tr", {}, COLUMNS.map((c) => h("th", {}, c)))), tbody),
    empty);
  const rows = new Map();
  page.every(2000, async () => {
    const [list, stats] = await Promise.all([
      get("/api/v1/services", { signal: page.signal }),
      get("/api/v1/stats", { signal: page.signal })]);
    const byName = new Map(stats.services.map((s) => [s.service, s]));
    const seen = new Set();
    for (const svc of list.services) {
      seen.add(svc.name);
      let row = rows.get(svc.name);
      if (!row) {
        row = newRow(svc.name);
        rows.set(svc.name, row);
      }
      tbody.append(row.tr); // keeps the registry's order; moving a node keeps it alive
      const st = byName.get(svc.name);
      const minute = st ? st.windows["1m"] : null;
      setBadge(row.cells.status.firstChild, svc.phase);
      fill(row.cells.version, svc.serving_version ? `v${svc.serving_version}` : "–",
        svc.target_version && svc.target_version !== svc.serving_version
          ? ` → v${svc.target_version}` : "");
      fill(row.cells.replicas, `${svc.ready_replicas}/${svc.desired_replicas}`);
      fill(row.cells.rps, minute ? num(minute.rps, 2) : "–");
      fill(row.cells.p50, minute ? num(minute.latency_ms.p50, 1) : "–");
      fill(row.cells.message, svc.message || "");
    }
    for (const [name, row] of rows) {
      if (!seen.has(name)) {
        row.tr.remove();
        rows.delete(name);
      }
    }
    empty.hidden = rows.size > 0;
  });
}
