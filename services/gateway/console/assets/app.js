// The console's entry: who is logged in, which page the URL's #fragment names, the nav.

import { get, onUnauthorized, request, session } from "./api.js";
import { fill, h } from "./dom.js";
import { Page } from "./page.js";
import * as admin from "./pages/admin.js";
import * as batches from "./pages/batches.js";
import * as create from "./pages/create.js";
import * as gitops from "./pages/gitops.js";
import * as login from "./pages/login.js";
import * as service from "./pages/service.js";
import * as services from "./pages/services.js";

const ROUTES = [
  [/^#\/services$/, services.render, "services"],
  [/^#\/create$/, create.render, "services"],
  [/^#\/services\/([^/]+)$/, service.render, "services"],
  [/^#\/batches$/, batches.render, "batches"],
  [/^#\/keys$/, admin.keys, "keys"],
  [/^#\/users$/, admin.users, "users", "admin"],
  [/^#\/gitops$/, gitops.render, "gitops", "admin"],
];
const NAV = [["services", "Services"], ["batches", "Batches"], ["keys", "Keys"],
  ["users", "Users", "admin"], ["gitops", "GitOps", "admin"]];

const main = document.getElementById("main");
const top = document.getElementById("top");
let principal = null;
let current = null;

function isAdmin(p) { return p && p.role === "admin" && p.scopes.includes("admin"); }

function showLogin(message) {
  if (current) current.close();
  current = null;
  principal = null;
  top.hidden = true;
  login.render(main, message, enter);
}

function cookie(name) {
  const pair = document.cookie.split("; ").find((c) => c.startsWith(`${name}=`));
  return pair ? pair.slice(name.length + 1) : "";
}

async function enter() {
  // a login session from another tab: its (readable) CSRF cookie goes with every change
  if (!session.mode && cookie("modelport_csrf")) session.useCookie(cookie("modelport_csrf"));
  try {
    principal = await get("/api/v1/auth/whoami");
  } catch (err) {
    session.clear();
    showLogin(err.status === 401 ? `Not accepted: ${err.message}` : err.message);
    return;
  }
  top.hidden = false;
  fill(document.getElementById("whoami"), `${principal.user} (${principal.role})`);
  route();
}

function route() {
  if (!principal) return;
  if (current) current.close();
  const hash = ["", "#", "#/"].includes(location.hash) ? "#/services" : location.hash;
  for (const [rx, render, section, need] of ROUTES) {
    const m = hash.match(rx);
    if (!m) continue;
    fill(document.getElementById("nav"), NAV.filter(([, , n]) => !n || isAdmin(principal))
      .map(([id, label]) => h("a", { href: `#/${id}`, class: id === section ? "active" : null,
        testid: `nav-${id}` }, label)));
    fill(main);
    current = new Page(main, principal);
    if (need === "admin" && !isAdmin(principal)) {
      main.append(h("p", { class: "error" }, "This page is for admins."));
      return;
    }
    render(current, ...m.slice(1).map(decodeURIComponent));
    return;
  }
  fill(main, h("p", {}, "No such page. ", h("a", { href: "#/services" }, "Services")));
}

document.getElementById("logout").addEventListener("click", async () => {
  if (session.mode === "cookie") {
    try { await request("POST", "/api/v1/auth/logout"); } catch { /* it ends here anyway */ }
  }
  session.clear();
  showLogin("Logged out.");
});

onUnauthorized((err) => {
  if (!principal) return; // the login page says it itself
  session.clear();
  showLogin(`Your credential is no longer accepted: ${err.message}`);
});

window.addEventListener("hashchange", route);

// A credential from earlier in this tab, or a platform started with --no-auth, goes
// straight in; otherwise only the login page shows.
if (session.mode) {
  enter();
} else {
  fetch("/api/v1/auth/whoami", { credentials: "same-origin" }).then((resp) => {
    if (resp.ok) enter(); else showLogin("");
  }).catch(() => showLogin("The platform did not answer."));
}
