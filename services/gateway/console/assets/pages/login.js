// Login: a token (the admin token `modelport up` printed, or a key), or a user name and
// password (a session cookie). Nothing but this form shows before one is accepted.

import { ApiError, request, session } from "../api.js";
import { errorBox, fill, h } from "../dom.js";

export function render(root, message, enter) {
  const status = h("div", { testid: "login-status" },
    message ? h("p", { class: "muted" }, message) : null);
  const token = h("input", { type: "password", testid: "token-input", id: "token",
    autocomplete: "off", placeholder: "mp_…", size: 40, required: true });
  const tokenForm = h("form", { testid: "login-token" },
    h("label", { for: "token" }, "Token ",
      h("span", { class: "hint" }, "(the admin token `modelport up` printed, or a key)")),
    token,
    h("div", { class: "actions" }, h("button", { type: "submit", testid: "login-submit" },
      "Log in")));
  tokenForm.addEventListener("submit", (e) => {
    e.preventDefault();
    session.useToken(token.value.trim());
    enter();
  });

  const user = h("input", { id: "username", testid: "login-username", autocomplete: "username" });
  const password = h("input", { id: "password", type: "password", testid: "login-password",
    autocomplete: "current-password" });
  const userForm = h("form", { testid: "login-user" },
    h("label", { for: "username" }, "User name"), user,
    h("label", { for: "password" }, "Password"), password,
    h("div", { class: "actions" }, h("button", { type: "submit", class: "secondary",
      testid: "login-password-submit" }, "Log in with password")));
  userForm.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const { data } = await request("POST", "/api/v1/auth/login",
        { json: { username: user.value, password: password.value } });
      session.useCookie(data.csrf_token);
      enter();
    } catch (err) {
      fill(status, errorBox(err instanceof ApiError ? err : new ApiError(0, {})));
    }
  });

  fill(root, h("div", { class: "login", testid: "login" },
    h("h1", {}, "modelport console"),
    h("section", { class: "card" }, status, tokenForm),
    h("section", { class: "card" }, h("h2", {}, "Or with a user account"), userForm)));
  token.focus();
}
