import assert from "node:assert/strict";
import { test } from "node:test";
import { Api, ApiError, NetworkError } from "../src/js/api.js";
import { Session, SessionExpired } from "../src/js/session.js";
import { jwt, MemoryStorage, response } from "./helpers.mjs";

function fakeClock(start) {
  const clock = { now: start, timers: [] };
  clock.setTimer = (fn, ms) => {
    const t = { fn, at: clock.now + ms };
    clock.timers.push(t);
    return t;
  };
  clock.clearTimer = (t) => {
    clock.timers = clock.timers.filter((x) => x !== t);
  };
  return clock;
}

test("the refresh token is kept in storage so a reload restores the session", () => {
  const storage = new MemoryStorage();
  const s = new Session({ storage, refreshTokens: async () => ({}) });
  s.setTokens({ access: jwt({ iat: 0, exp: 300 }), refresh: "r1" });
  assert.equal(storage.getItem("polls.refresh"), "r1");
  const reloaded = new Session({ storage, refreshTokens: async () => ({}) });
  assert.equal(reloaded.signedIn, true);
  assert.equal(reloaded.access, null); // the access token lives in memory only
  reloaded.clear();
  assert.equal(storage.getItem("polls.refresh"), null);
});

test("schedules a refresh before expiry and rotates the refresh token", async () => {
  const clock = fakeClock(0);
  const calls = [];
  const s = new Session({
    storage: new MemoryStorage(),
    now: () => clock.now,
    setTimer: clock.setTimer,
    clearTimer: clock.clearTimer,
    refreshTokens: async (refresh) => {
      calls.push(refresh);
      return { access: jwt({ iat: 270, exp: 570 }), refresh: "r2" };
    },
  });
  s.setTokens({ access: jwt({ iat: 0, exp: 300 }), refresh: "r1" });
  assert.equal(clock.timers.length, 1);
  assert.equal(clock.timers[0].at, 270_000);
  clock.now = 270_000;
  clock.timers.shift().fn();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(calls, ["r1"]);
  assert.equal(s.refreshToken, "r2");
  assert.equal(clock.timers.length, 1); // rescheduled for the new token
});

test("concurrent refreshes share one request; a refused refresh clears the session", async () => {
  let calls = 0;
  const s = new Session({
    storage: new MemoryStorage({ "polls.refresh": "old" }),
    refreshTokens: async () => {
      calls += 1;
      throw Object.assign(new Error("no"), { status: 401 });
    },
  });
  const results = await Promise.allSettled([s.refresh(), s.refresh()]);
  assert.equal(calls, 1);
  assert.ok(results.every((r) => r.status === "rejected" && r.reason instanceof SessionExpired));
  assert.equal(s.signedIn, false);
});

test("a network failure during refresh keeps the session for a retry", async () => {
  const s = new Session({
    storage: new MemoryStorage({ "polls.refresh": "keep" }),
    refreshTokens: async () => {
      throw new TypeError("fetch failed");
    },
  });
  await assert.rejects(s.refresh(), TypeError);
  assert.equal(s.signedIn, true);
});

test("Api sends the bearer token, retries once after a 401 with a refreshed token", async () => {
  const seen = [];
  let access = jwt({ iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 300, n: 1 });
  const session = new Session({
    storage: new MemoryStorage(),
    refreshTokens: async () => ({ access: jwt({ exp: Math.floor(Date.now() / 1000) + 300, n: 2 }), refresh: "r2" }),
  });
  session.setTokens({ access, refresh: "r1" });
  const fetch = async (url, init) => {
    seen.push(init.headers.Authorization);
    return seen.length === 1 ? response(401, { title: "Authentication required.", detail: "Token expired." }) : response(200, { ok: true });
  };
  const api = new Api({ fetch, session });
  assert.deepEqual(await api.get("/api/v3/polls/"), { ok: true });
  assert.equal(seen.length, 2);
  assert.notEqual(seen[0], seen[1]);
  session.clear();
});

test("an unrecoverable 401 clears the session and reports it once", async () => {
  const messages = [];
  const session = new Session({
    storage: new MemoryStorage({ "polls.refresh": "r" }),
    refreshTokens: async () => {
      throw Object.assign(new Error("blacklisted"), { status: 401 });
    },
  });
  const api = new Api({ fetch: async () => response(200, {}), session, onSessionExpired: (m) => messages.push(m) });
  const error = await api.get("/api/v3/auth/me/").catch((e) => e);
  assert.ok(error instanceof ApiError);
  assert.equal(error.status, 401);
  assert.deepEqual(messages, ["Your session has expired. Please log in again."]);
  assert.equal(session.signedIn, false);
});

test("ETag revalidation: 304 returns the cached body", async () => {
  const sent = [];
  const fetch = async (url, init) => {
    sent.push(init.headers["If-None-Match"]);
    return sent.length === 1 ? response(200, { total: 1 }, { ETag: '"v1"' }) : response(304, null, { ETag: '"v1"' });
  };
  const api = new Api({ fetch });
  const first = await api.request("GET", "/api/v3/results/p/", { revalidate: true });
  const second = await api.request("GET", "/api/v3/results/p/", { revalidate: true });
  assert.deepEqual(sent, [undefined, '"v1"']);
  assert.equal(first.notModified, false);
  assert.equal(second.notModified, true);
  assert.deepEqual(second.body, { total: 1 });
});

test("problem+json errors become ApiError with readable messages; network failures NetworkError", async () => {
  const api = new Api({ fetch: async () => response(409, { title: "Conflict.", status: 409, detail: "You have already voted in this poll." }) });
  const error = await api.send("POST", "/api/v3/votes/", { poll: "p", choice: "c" }).catch((e) => e);
  assert.ok(error instanceof ApiError);
  assert.equal(error.message, "You have already voted in this poll.");
  const offline = new Api({ fetch: async () => { throw new TypeError("Failed to fetch"); } });
  assert.ok((await offline.get("/api/v3/").catch((e) => e)) instanceof NetworkError);
});
