// The HTTP client for the public API through the gateway: JSON in and out, bearer tokens with
// refresh-and-retry on 401, ETag revalidation, and errors as ApiError / NetworkError.

import { describeProblem } from "./problem.js";
import { SessionExpired } from "./session.js";

export const ACCEPT = "application/hal+json, application/problem+json;q=0.9, application/json;q=0.8";

export class ApiError extends Error {
  constructor(status, body, response) {
    const problem = describeProblem(status, body);
    super(problem.message);
    this.name = "ApiError";
    this.status = status;
    this.body = body;
    this.problem = problem;
    this.response = response;
  }

  /** The problem with field errors mapped onto the given input names. */
  describe(knownFields = []) {
    return describeProblem(this.status, this.body, knownFields);
  }
}

export class NetworkError extends Error {
  constructor(cause) {
    super("The server could not be reached. Check your connection and try again.");
    this.name = "NetworkError";
    this.cause = cause;
  }
}

async function readBody(response) {
  if (response.status === 204 || response.status === 304) return null;
  const text = await response.text();
  if (!text) return null;
  const type = response.headers.get("content-type") || "";
  if (type.includes("json")) {
    try {
      return JSON.parse(text);
    } catch {
      return null;
    }
  }
  return text;
}

export class Api {
  /**
   * @param {object} deps
   * @param {typeof fetch} deps.fetch
   * @param {import("./session.js").Session} [deps.session]  attach and refresh bearer tokens
   * @param {(message: string) => void} [deps.onSessionExpired]  called once a 401 cannot be recovered
   */
  constructor({ fetch: fetchImpl, session = null, onSessionExpired = () => {} }) {
    this.fetch = fetchImpl;
    this.session = session;
    this.onSessionExpired = onSessionExpired;
    this.etags = new Map(); // href -> {etag, body}
  }

  /**
   * Send a request. Options: `body` (JSON), `auth` (default true: send the token when signed in),
   * `revalidate` (send If-None-Match with the last ETag of this href; a 304 resolves to
   * `{notModified: true, body: <cached>}`), `headers`.
   * Resolves to `{status, body, headers, notModified}`; rejects with ApiError or NetworkError.
   */
  async request(methodName, href, { body, auth = true, revalidate = false, headers = {} } = {}) {
    const send = async (token) => {
      const h = { Accept: ACCEPT, ...headers };
      if (body !== undefined) h["Content-Type"] = "application/json";
      if (token) h.Authorization = `Bearer ${token}`;
      const cached = revalidate ? this.etags.get(href) : null;
      if (cached) h["If-None-Match"] = cached.etag;
      let response;
      try {
        response = await this.fetch(href, {
          method: methodName,
          headers: h,
          body: body === undefined ? undefined : JSON.stringify(body),
          credentials: "same-origin",
          cache: "no-store",
        });
      } catch (error) {
        throw new NetworkError(error);
      }
      return response;
    };

    const useAuth = auth && this.session && this.session.signedIn;
    let token = null;
    if (useAuth) token = await this.tokenOrExpire();
    let response = await send(token);
    if (response.status === 401 && useAuth) {
      // The access token may have been revoked or expired in flight: refresh once and retry.
      try {
        token = await this.session.refresh();
      } catch (error) {
        this.expire(error);
      }
      response = await send(token);
      if (response.status === 401) this.expire(new SessionExpired());
    }

    if (response.status === 304) {
      const cached = this.etags.get(href);
      return { status: 304, notModified: true, body: cached ? cached.body : null, headers: response.headers };
    }
    const data = await readBody(response);
    if (!response.ok) throw new ApiError(response.status, data, response);
    const etag = response.headers.get("etag");
    if (revalidate && etag) this.etags.set(href, { etag, body: data });
    return { status: response.status, notModified: false, body: data, headers: response.headers };
  }

  async tokenOrExpire() {
    try {
      return await this.session.accessToken();
    } catch (error) {
      this.expire(error);
      return null;
    }
  }

  expire(error) {
    if (error instanceof SessionExpired) {
      this.session.clear();
      this.onSessionExpired(error.message);
      throw new ApiError(401, { title: "Session expired", detail: error.message });
    }
    throw error;
  }

  async get(href, options) {
    return (await this.request("GET", href, options)).body;
  }

  async send(methodName, href, body, options = {}) {
    return (await this.request(methodName, href, { ...options, body })).body;
  }
}
