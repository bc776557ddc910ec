// Invoke keys (everyone: their own; admins: anyone's) and users (admins).

import { call, enc, get } from "../api.js";
import { badge, confirmDialog, errorBox, fill, h, when } from "../dom.js";

function table(testid, columns, body) {
  return h("table", { testid }, h("thead", {}, h("tr", {}, columns.map((c) => h("th", {}, c)))),
    body);
}

export function keys(page) {
  const body = h("tbody");
  const created = h("div", { testid: "key-created" });
  const name = h("input", { id: "key-name", testid: "key-name", placeholder: "ci-bot" });
  const scopes = h("input", { id: "key-scopes", testid: "key-scopes", size: 30,
    placeholder: "invoke:iris read", value: "read" });
  const ttl = h("input", { id: "key-ttl", testid: "key-ttl", type: "number", min: 0,
    placeholder: "0 = never" });
  const refresh = async () => {
    const resp = await get("/api/v1/keys?revoked=1", { signal: page.signal });
    fill(body, resp.keys.map((k) => h("tr", { testid: "key-row", "data-key": k.id },
      h("td", {}, h("code", {}, k.id)), h("td", {}, k.name), h("td", {}, k.user),
      h("td", {}, k.scopes.join(" ")), h("td", {}, k.kind), h("td", {}, when(k.created_at)),
      h("td", {}, k.expires_at ? when(k.expires_at) : "never"),
      h("td", {}, k.revoked_at ? badge("revoked") : h("button", { type: "button",
        class: "danger", testid: `revoke-${k.id}`, onclick: async () => {
          if (!await confirmDialog(`Revoke key ${k.name} (${k.id})? Clients using it get 401.`,
            "Revoke")) return;
          await page.act(async () => { await call("DELETE", `/api/v1/keys/${enc(k.id)}`); await refresh(); });
        } }, "revoke")))));
  };
  const form = h("form", { testid: "key-form" }, h("div", { class: "row" },
    h("div", {}, h("label", { for: "key-name" }, "Name"), name),
    h("div", {}, h("label", { for: "key-scopes" }, "Scopes ",
      h("span", { class: "hint" }, "(space separated: invoke:NAME, read, deploy)")), scopes),
    h("div", {}, h("label", { for: "key-ttl" }, "Expires after (s)"), ttl),
    h("div", {}, h("button", { type: "submit", testid: "key-submit" }, "Create key"))));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const k = await call("POST", "/api/v1/keys", { name: name.value || "key",
        scopes: scopes.value.split(/[\s,]+/).filter(Boolean), ttl_s: Number(ttl.value || 0) });
      fill(created, h("div", { class: "notice" }, h("p", {}, k.note),
        h("dl", { class: "kv" }, h("dt", {}, "token"), h("dd", {}, h("code", { testid: "key-token" }, k.token)),
          h("dt", {}, "access key"), h("dd", {}, h("code", {}, k.access_key)),
          h("dt", {}, "secret key"), h("dd", {}, h("code", {}, k.secret_key)))));
      await refresh();
    } catch (err) {
      fill(created, errorBox(err));
    }
  });
  page.root.append(h("h1", {}, "Keys"), h("section", { class: "card" }, form, created),
    table("keys", ["Id", "Name", "User", "Scopes", "Kind", "Created", "Expires", ""], body));
  page.every(10000, refresh);
}

export function users(page) {
  const body = h("tbody");
  const out = h("div");
  const username = h("input", { id: "user-name", testid: "user-name", autocomplete: "off" });
  const password = h("input", { id: "user-password", testid: "user-password", type: "password",
    autocomplete: "new-password" });
  const role = h("select", { id: "user-role", testid: "user-role" },
    h("option", { value: "member" }, "member"), h("option", { value: "admin" }, "admin"));
  const refresh = async () => {
    const resp = await get("/api/v1/users", { signal: page.signal });
    fill(body, resp.users.map((u) => h("tr", { testid: "user-row", "data-user": u.username },
      h("td", {}, u.username), h("td", {}, u.role), h("td", {}, when(u.created_at)),
      h("td", {}, u.disabled ? badge("disabled") : badge("active")),
      h("td", {}, u.disabled ? null : h("button", { type: "button", class: "danger",
        testid: `disable-${u.username}`, onclick: async () => {
          if (!await confirmDialog(`Disable ${u.username}? Their keys are revoked.`,
            "Disable")) return;
          await page.act(async () => {
            await call("DELETE", `/api/v1/users/${enc(u.username)}`);
            await refresh();
          });
        } }, "disable")))));
  };
  const form = h("form", { testid: "user-form" }, h("div", { class: "row" },
    h("div", {}, h("label", { for: "user-name" }, "User name"), username),
    h("div", {}, h("label", { for: "user-password" }, "Password"), password),
    h("div", {}, h("label", { for: "user-role" }, "Role"), role),
    h("div", {}, h("button", { type: "submit", testid: "user-submit" }, "Add user"))));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const u = await call("POST", "/api/v1/users", { username: username.value,
        password: password.value, role: role.value });
      fill(out, h("p", { class: "notice" }, `Added ${u.username} (${u.role}).`));
      password.value = "";
      await refresh();
    } catch (err) {
      fill(out, errorBox(err));
    }
  });
  page.root.append(h("h1", {}, "Users"), h("section", { class: "card" }, form, out),
    table("users", ["User", "Role", "Created", "State", ""], body));
  page.every(10000, refresh);
}
