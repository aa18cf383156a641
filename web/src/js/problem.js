// Turning RFC 9457 problem documents (and anything else an error response may carry) into
// readable messages: one summary plus messages per form field.

const FALLBACK = {
  400: "The request was not accepted.",
  401: "You need to log in to do that.",
  403: "You are not allowed to do that.",
  404: "That no longer exists.",
  405: "That action is not available.",
  409: "That conflicts with the current state.",
  412: "Someone changed this in the meantime; reload and try again.",
  413: "That is too large.",
  415: "The request format was not accepted.",
  422: "That cannot be done right now.",
  429: "Too many requests; wait a moment and try again.",
  500: "The server had a problem; try again.",
  502: "The service is unreachable; try again.",
  503: "The service is temporarily unavailable; try again shortly.",
  504: "The service took too long to answer; try again.",
};

function asMessages(value) {
  if (value === null || value === undefined) return [];
  if (Array.isArray(value)) return value.flatMap(asMessages);
  if (typeof value === "object") {
    return Object.entries(value).flatMap(([k, v]) => asMessages(v).map((m) => `${k}: ${m}`));
  }
  return [String(value)];
}

function humanField(name) {
  const text = name.replace(/[._]/g, " ").trim();
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/**
 * Normalise an error body into `{status, title, message, fields}` where `fields` maps field names
 * to message arrays. `knownFields` (names of inputs on the form) decides which field errors are
 * shown next to inputs; the rest join the summary message so nothing is lost.
 */
export function describeProblem(status, body, knownFields = []) {
  const problem = body && typeof body === "object" && !Array.isArray(body) ? body : {};
  const raw = problem.errors && typeof problem.errors === "object" ? problem.errors : null;
  const fields = {};
  const leftovers = [];
  if (raw) {
    for (const [name, value] of Object.entries(raw)) {
      const messages = asMessages(value);
      if (!messages.length) continue;
      const base = name.split(".")[0];
      if (knownFields.includes(name)) fields[name] = messages;
      else if (knownFields.includes(base)) fields[base] = [...(fields[base] || []), ...messages];
      else if (name === "non_field_errors" || name === "detail") leftovers.push(...messages);
      else leftovers.push(...messages.map((m) => `${humanField(name)}: ${m}`));
    }
  }
  const stringBody = typeof body === "string" && body.length < 300 && !/^\s*[<{[]/.test(body) ? body.trim() : "";
  let message;
  if (Object.keys(fields).length) {
    message = leftovers.length ? leftovers.join(" ") : "Please correct the highlighted fields.";
  } else if (leftovers.length) {
    message = leftovers.join(" ");
  } else {
    const detail = typeof problem.detail === "string" ? problem.detail : "";
    const title = typeof problem.title === "string" ? problem.title : "";
    message = detail || title || stringBody || FALLBACK[status] || `The request failed (HTTP ${status}).`;
  }
  return {
    status,
    title: typeof problem.title === "string" ? problem.title : FALLBACK[status] || "Error",
    type: typeof problem.type === "string" ? problem.type : null,
    message,
    fields,
  };
}
