// Decoding (never verifying) the payload of a JWT, and deciding when to refresh it.
// The server verifies tokens; the client only reads `exp` to refresh before expiry.

function base64UrlDecode(segment) {
  let b64 = segment.replace(/-/g, "+").replace(/_/g, "/");
  while (b64.length % 4) b64 += "=";
  const binary = atob(b64);
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

/** The JSON payload of a compact JWT, or null when the token is not a readable JWT. */
export function decodeJwtPayload(token) {
  if (typeof token !== "string") return null;
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  try {
    const payload = JSON.parse(base64UrlDecode(parts[1]));
    return payload && typeof payload === "object" ? payload : null;
  } catch {
    return null;
  }
}

/** Expiry of a token in epoch milliseconds, or null when it carries no numeric `exp`. */
export function tokenExpiryMs(token) {
  const payload = decodeJwtPayload(token);
  return payload && typeof payload.exp === "number" ? payload.exp * 1000 : null;
}

/**
 * Milliseconds from `nowMs` until the token should be refreshed: a margin before `exp`
 * (a tenth of its lifetime, between 5 s and 60 s). 0 means "refresh now".
 */
export function msUntilRefresh(token, nowMs) {
  const payload = decodeJwtPayload(token);
  if (!payload || typeof payload.exp !== "number") return 0;
  const expMs = payload.exp * 1000;
  const lifetime = typeof payload.iat === "number" ? expMs - payload.iat * 1000 : 300_000;
  const margin = Math.min(60_000, Math.max(5_000, lifetime / 10));
  return Math.max(0, expMs - margin - nowMs);
}
