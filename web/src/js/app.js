// Application context shared by the views: the API client, the session, the entry point's links,
// navigation and one-shot notices.

import { Api } from "./api.js";
import { href, link } from "./hal.js";
import { Session } from "./session.js";

export const ENTRY_POINT = "/api/v3/";

export function createApp({ fetchImpl = window.fetch.bind(window), storage = window.sessionStorage } = {}) {
  const plain = new Api({ fetch: fetchImpl });
  const app = {
    entry: null,
    me: null,
    notice: null, // {text, kind} shown once by the next view
    plain,
    api: null,
    session: null,

    /** The API entry point (GET /api/v3/), fetched once and kept. */
    async loadEntry() {
      if (!app.entry) app.entry = await plain.get(ENTRY_POINT, { auth: false });
      return app.entry;
    },

    link(rel) {
      return app.entry ? link(app.entry, rel) : null;
    },

    href(rel) {
      return app.entry ? href(app.entry, rel) : null;
    },

    /** Route to a hash path ("/polls", "/login?next=..."). */
    go(path) {
      const target = `#${path}`;
      if (location.hash === target) window.dispatchEvent(new HashChangeEvent("hashchange"));
      else location.hash = target;
    },

    flash(text, kind = "info") {
      app.notice = { text, kind };
    },

    takeNotice() {
      const notice = app.notice;
      app.notice = null;
      return notice;
    },

    async login(username, password) {
      await app.loadEntry();
      const tokens = await plain.send("POST", app.href("token"), { username, password }, { auth: false });
      app.session.setTokens(tokens);
      await app.loadMe();
    },

    async register(fields) {
      await app.loadEntry();
      await plain.send("POST", app.href("register"), fields, { auth: false });
    },

    async logout() {
      const refresh = app.session.refreshToken;
      const logoutHref = app.href("logout");
      if (refresh && logoutHref) {
        try {
          await app.api.send("POST", logoutHref, { refresh });
        } catch {
          /* the token is dropped locally either way */
        }
      }
      app.session.clear();
      app.me = null;
    },

    /** The signed-in user ({id, username, roles}) from the `me` link, or claims as a fallback. */
    async loadMe() {
      if (!app.session.signedIn) {
        app.me = null;
        return null;
      }
      const meHref = app.href("me");
      try {
        app.me = meHref ? await app.api.get(meHref) : null;
      } catch (error) {
        if (error && error.status === 401) throw error;
        app.me = null;
      }
      if (!app.me) {
        const claims = app.session.claims;
        app.me = { id: claims.user_id ?? claims.sub, username: claims.username ?? "you", roles: claims.roles ?? [] };
      }
      return app.me;
    },
  };

  app.session = new Session({
    storage,
    refreshTokens: async (refresh) => {
      await app.loadEntry();
      return plain.send("POST", app.href("refresh"), { refresh }, { auth: false });
    },
  });
  app.api = new Api({
    fetch: fetchImpl,
    session: app.session,
    onSessionExpired: (message) => {
      app.me = null;
      app.flash(message, "warning");
      const here = location.hash.slice(1) || "/polls";
      if (!here.startsWith("/login")) app.go(`/login?next=${encodeURIComponent(here)}`);
    },
  });
  return app;
}
