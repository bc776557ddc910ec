// GitOps: each watched repository's commit and every service it declares, in sync or not.

import { get } from "../api.js";
import { badge, fill, h, when } from "../dom.js";

const short = (commit) => h("code", {}, (commit || "").slice(0, 12));

function serviceRow(s) {
  return h("tr", { testid: "gitops-service", "data-service": s.service },
    h("td", {}, h("a", { href: `#/services/${encodeURIComponent(s.service)}` }, s.service)),
    h("td", {}, badge(s.sync)),
    h("td", {}, s.health),
    h("td", {}, short(s.commit)),
    h("td", {}, s.file ? `${s.file}:${s.line || 1}` : ""),
    h("td", { class: "muted" }, s.message || ""));
}

function source(src, services) {
  const facts = h("dl", { class: "kv" },
    h("dt", {}, "head"), h("dd", {}, short(src.head)),
    h("dt", {}, "synced"), h("dd", { testid: "gitops-commit" }, short(src.synced_commit)),
    h("dt", {}, "last sync"), h("dd", {}, when(src.last_sync)),
    h("dt", {}, "watcher seen"), h("dd", {}, when(src.heartbeat)));
  const table = h("table", {},
    h("thead", {}, h("tr", {}, ["Service", "Sync", "Health", "Commit", "File", "Last error"]
      .map((c) => h("th", {}, c)))),
    h("tbody", {}, services.filter((s) => s.source === src.id).map(serviceRow)));
  return h("section", { class: "card", testid: "gitops-source", "data-source": src.id },
    h("h2", {}, src.repo, " ", h("span", { class: "muted" }, `${src.branch} ${src.path || ""}`)),
    facts,
    src.message ? h("p", { class: "error", testid: "gitops-error" }, src.message) : null,
    table);
}

export function render(page) {
  const box = h("div", { testid: "gitops" });
  page.root.append(h("h1", {}, "GitOps"), box);
  page.every(3000, async () => {
    const st = await get("/api/v1/gitops", { signal: page.signal });
    fill(box, st.sources.length ? st.sources.map((src) => source(src, st.services))
      : h("p", { class: "muted", testid: "gitops-empty" }, "No watcher reports here. ",
        "Start one with `modelport watch REPO` (docs/gitops.md)."));
  });
}
