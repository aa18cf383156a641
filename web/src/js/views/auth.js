// Log in and register.

import { ApiError } from "../api.js";
import { append, h } from "../dom.js";
import { busy, errorSlot, field, showFormError } from "../ui.js";

function noticeBox(app) {
  const notice = app.takeNotice();
  if (!notice) return null;
  return h("div", { class: `notice ${notice.kind}`, role: notice.kind === "warning" ? "alert" : "status" }, notice.text);
}

function safeNext(params) {
  const next = params.get("next") || "/polls";
  return next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/login") ? next : "/polls";
}

export function loginView({ app, container, params }) {
  const username = field({ name: "username", label: "Username", autocomplete: "username", required: true });
  const password = field({ name: "password", label: "Password", type: "password", autocomplete: "current-password", required: true });
  const slot = errorSlot();
  const submit = h("button", { type: "submit", class: "button" }, "Log in");
  const form = h(
    "form",
    {
      class: "panel form narrow",
      novalidate: true,
      onsubmit: async (event) => {
        event.preventDefault();
        slot.hide();
        if (!username.input.value.trim() || !password.input.value) {
          username.setError(username.input.value.trim() ? null : "Enter your username.");
          password.setError(password.input.value ? null : "Enter your password.");
          (username.input.value.trim() ? password : username).input.focus();
          return;
        }
        try {
          await busy(submit, () => app.login(username.input.value.trim(), password.input.value), "Logging in…");
          app.flash(`Welcome, ${app.me ? app.me.username : username.input.value.trim()}.`, "info");
          app.go(safeNext(params));
        } catch (error) {
          if (error instanceof ApiError && (error.status === 401 || error.status === 400) && !Object.keys(error.describe(["username", "password"]).fields).length) {
            slot.show(`Log in failed: ${error.problem.message}`);
            password.input.select();
            password.input.focus();
            return;
          }
          showFormError(error, [username, password], slot, { retry: () => form.requestSubmit() });
        }
      },
    },
    username.el,
    password.el,
    slot.el,
    h("div", { class: "actions" }, submit),
    h("p", {}, "No account yet? ", h("a", { href: "#/register" }, "Register")),
  );
  append(container, h("h1", {}, "Log in"), noticeBox(app), form);
  if (!app.session.signedIn || params.get("next")) username.input.focus();
}

export function registerView({ app, container }) {
  const username = field({ name: "username", label: "Username", autocomplete: "username", required: true, maxlength: 150 });
  const email = field({ name: "email", label: "Email (optional)", type: "email", autocomplete: "email" });
  const password = field({
    name: "password",
    label: "Password",
    type: "password",
    autocomplete: "new-password",
    required: true,
    hint: "At least 10 characters; not a common password, not all digits, not like your username.",
  });
  const slot = errorSlot();
  const submit = h("button", { type: "submit", class: "button" }, "Create account");
  const form = h(
    "form",
    {
      class: "panel form narrow",
      novalidate: true,
      onsubmit: async (event) => {
        event.preventDefault();
        slot.hide();
        const body = { username: username.input.value.trim(), password: password.input.value };
        if (email.input.value.trim()) body.email = email.input.value.trim();
        try {
          await busy(
            submit,
            async () => {
              await app.register(body);
              await app.login(body.username, body.password);
            },
            "Creating account…",
          );
          app.flash(`Welcome, ${body.username}. Your account is ready.`, "info");
          app.go("/polls");
        } catch (error) {
          showFormError(error, [username, email, password], slot, { retry: () => form.requestSubmit() });
        }
      },
    },
    username.el,
    email.el,
    password.el,
    slot.el,
    h("div", { class: "actions" }, submit),
    h("p", {}, "Already registered? ", h("a", { href: "#/login" }, "Log in")),
  );
  append(container, h("h1", {}, "Create an account"), form);
}

export { noticeBox };
