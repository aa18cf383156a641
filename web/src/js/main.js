// Entry module: boots the session, draws the navigation and routes hash URLs to views.

import { createApp } from "./app.js";
import { append, h, clear } from "./dom.js";
import { SessionExpired } from "./session.js";
import { failurePanel } from "./ui.js";
import { loginView, registerView } from "./views/auth.js";
import { createView } from "./views/create.js";
import { listView } from "./views/list.js";
import { pollView } from "./views/poll.js";

const app = createApp();
const main = document.getElementById("main");
const nav = document.getElementById("nav");
let cleanup = null;
let firstRender = true;

function parseRoute() {
  const raw = location.hash.replace(/^#/, "") || "/polls";
  const [path, query = ""] = raw.split("?");
  return { path: path.replace(/\/+$/, "") || "/polls", params: new URLSearchParams(query) };
}

function renderNav() {
  clear(nav);
  const route = parseRoute().path;
  const item = (path, label) =>
    h("li", {}, h("a", { href: `#${path}`, "aria-current": route === path ? "page" : null }, label));
  const list = h("ul", { class: "nav-list" }, item("/polls", "Polls"));
  if (app.session.signedIn) {
    list.append(item("/polls/new", "New poll"));
    list.append(
      h("li", { class: "nav-user" }, h("span", { class: "whoami" }, "Signed in as ", h("strong", {}, app.me ? app.me.username : "…"))),
      h(
        "li",
        {},
        h(
          "button",
          {
            type: "button",
            class: "button link",
            id: "logout",
            onclick: async () => {
              await app.logout();
              app.flash("You have logged out.", "info");
              app.go("/login");
            },
          },
          "Log out",
        ),
      ),
    );
  } else {
    list.append(item("/login", "Log in"), item("/register", "Register"));
  }
  nav.append(list);
}

function viewFor(path) {
  if (path === "/login") return loginView;
  if (path === "/register") return registerView;
  if (path === "/polls") return listView;
  if (path === "/polls/new") return createView;
  const match = path.match(/^\/polls\/([^/]+)$/);
  if (match) return (ctx) => pollView({ ...ctx, id: decodeURIComponent(match[1]) });
  return notFoundView;
}

function notFoundView({ container }) {
  append(
    container,
    h("h1", { tabindex: "-1" }, "Page not found"),
    h("p", {}, "There is nothing at this address. ", h("a", { href: "#/polls" }, "Go to the polls.")),
  );
}

let renderCount = 0;

async function render() {
  if (cleanup) cleanup();
  cleanup = null;
  renderCount += 1;
  const current = renderCount;
  const route = parseRoute();
  renderNav();
  // Each render draws into its own element; a render overtaken by a newer navigation keeps
  // drawing into a detached element and never mixes with the current page.
  const container = h("div", { class: "view" });
  main.replaceChildren(container);
  main.setAttribute("aria-busy", "true");
  let result;
  try {
    await app.loadEntry();
    const view = viewFor(route.path);
    result = await view({ app, container, params: route.params, rerender: render });
  } catch (error) {
    if (current === renderCount) container.replaceChildren(failurePanel(error, render));
  }
  if (current !== renderCount) {
    if (typeof result === "function") result();
    return;
  }
  if (typeof result === "function") cleanup = result;
  main.removeAttribute("aria-busy");
  if (!firstRender) {
    const heading = main.querySelector("h1");
    if (heading) {
      heading.setAttribute("tabindex", "-1");
      heading.focus();
    }
  }
  firstRender = false;
}

async function boot() {
  app.session.onChange(() => renderNav());
  if (app.session.signedIn) {
    try {
      await app.session.refresh();
      await app.loadMe();
    } catch (error) {
      if (error instanceof SessionExpired) {
        app.flash("Your session has expired. Please log in again.", "warning");
        history.replaceState(null, "", "#/login");
      }
      // Network trouble: keep the refresh token; the view below shows the retry.
    }
  }
  window.addEventListener("hashchange", render);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && app.session.signedIn && app.session.needsRefresh()) {
      app.session.refresh().catch(() => {});
    }
  });
  await render();
}

boot();
