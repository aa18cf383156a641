// The signed-in session: access token in memory, refresh token in sessionStorage.
//
// Why sessionStorage: it survives a reload of the tab (the issue asks for that) but is scoped to
// the tab and cleared when the tab closes, and tabs never race each other rotating one shared
// refresh token. The access token is never stored; after a reload it is re-obtained from the
// refresh token. The strict CSP (no inline or third-party script) is what protects the storage.

import { decodeJwtPayload, msUntilRefresh } from "./jwt.js";

const STORAGE_KEY = "polls.refresh";

export class SessionExpired extends Error {
  constructor(message = "Your session has expired. Please log in again.") {
    super(message);
    this.name = "SessionExpired";
  }
}

export class Session {
  /**
   * @param {object} deps
   * @param {(refresh: string) => Promise<{access: string, refresh?: string}>} deps.refreshTokens
   *        calls the API's refresh endpoint; rejects with an error whose `status` is 400/401 when the
   *        refresh token is no longer valid.
   * @param {Storage} deps.storage  sessionStorage (or a stand-in in tests)
   * @param {() => number} [deps.now]
   * @param {(fn: Function, ms: number) => any} [deps.setTimer]
   * @param {(handle: any) => void} [deps.clearTimer]
   */
  constructor({
    refreshTokens,
    storage,
    now = () => Date.now(),
    setTimer = (fn, ms) => setTimeout(fn, ms),
    clearTimer = (handle) => clearTimeout(handle),
  }) {
    this.refreshTokens = refreshTokens;
    this.storage = storage;
    this.now = now;
    this.setTimer = setTimer;
    this.clearTimer = clearTimer;
    this.access = null;
    this.refreshToken = null;
    this.timer = null;
    this.inflight = null;
    this.listeners = new Set();
    try {
      this.refreshToken = storage.getItem(STORAGE_KEY);
    } catch {
      this.refreshToken = null;
    }
  }

  /** True when a refresh token is held (the user is signed in, possibly with an expired access token). */
  get signedIn() {
    return Boolean(this.refreshToken);
  }

  /** Claims of the current access token (`username`, `roles`, ...), or an empty object. */
  get claims() {
    return decodeJwtPayload(this.access) || {};
  }

  onChange(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit() {
    for (const listener of this.listeners) listener(this);
  }

  /** Store a fresh token pair (after login or refresh) and schedule the next refresh. */
  setTokens({ access, refresh }) {
    this.access = access || null;
    if (refresh) {
      this.refreshToken = refresh;
      try {
        this.storage.setItem(STORAGE_KEY, refresh);
      } catch {
        /* storage full or blocked: the session still works until reload */
      }
    }
    this.schedule();
    this.emit();
  }

  /** Forget everything (logout or expired session). */
  clear() {
    this.access = null;
    this.refreshToken = null;
    if (this.timer !== null) this.clearTimer(this.timer);
    this.timer = null;
    try {
      this.storage.removeItem(STORAGE_KEY);
    } catch {
      /* ignore */
    }
    this.emit();
  }

  schedule() {
    if (this.timer !== null) this.clearTimer(this.timer);
    this.timer = null;
    if (!this.access || !this.refreshToken) return;
    const delay = msUntilRefresh(this.access, this.now());
    this.timer = this.setTimer(() => {
      this.timer = null;
      this.refresh().catch(() => {
        /* the next request reports it */
      });
    }, delay);
  }

  /** True when the access token is missing or inside its refresh margin. */
  needsRefresh() {
    return !this.access || msUntilRefresh(this.access, this.now()) === 0;
  }

  /**
   * Exchange the refresh token for a new pair; concurrent callers share one request.
   * Rejects with SessionExpired (and clears the session) when the server refuses the token.
   */
  refresh() {
    if (!this.refreshToken) return Promise.reject(new SessionExpired());
    if (this.inflight) return this.inflight;
    const used = this.refreshToken;
    this.inflight = (async () => {
      try {
        const tokens = await this.refreshTokens(used);
        if (!tokens || !tokens.access) throw new SessionExpired();
        this.setTokens({ access: tokens.access, refresh: tokens.refresh || used });
        return this.access;
      } catch (error) {
        if (error instanceof SessionExpired || (error && [400, 401, 403].includes(error.status))) {
          this.clear();
          throw new SessionExpired();
        }
        throw error; // network trouble: keep the session, the caller may retry
      } finally {
        this.inflight = null;
      }
    })();
    return this.inflight;
  }

  /** A usable access token (refreshing first when needed), or null when signed out. */
  async accessToken() {
    if (!this.refreshToken) return this.access;
    if (this.needsRefresh()) await this.refresh();
    return this.access;
  }
}
