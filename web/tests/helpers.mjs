// Test helpers: build unsigned JWTs and fake fetch responses (the client only reads JWT payloads).

export function jwt(payload) {
  const enc = (obj) => Buffer.from(JSON.stringify(obj)).toString("base64url");
  return `${enc({ alg: "RS256", typ: "JWT" })}.${enc(payload)}.signature`;
}

export function response(status, body, headers = {}) {
  const text = body === undefined || body === null ? "" : typeof body === "string" ? body : JSON.stringify(body);
  const h = new Headers(headers);
  if (text && !h.has("content-type")) h.set("content-type", status >= 400 ? "application/problem+json" : "application/hal+json");
  return new Response(status === 204 || status === 304 ? null : text, { status, headers: h });
}

export class MemoryStorage {
  constructor(initial = {}) {
    this.map = new Map(Object.entries(initial));
  }
  getItem(k) {
    return this.map.has(k) ? this.map.get(k) : null;
  }
  setItem(k, v) {
    this.map.set(k, String(v));
  }
  removeItem(k) {
    this.map.delete(k);
  }
}
