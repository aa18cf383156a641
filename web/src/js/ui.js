// Shared pieces of UI: error messages next to what caused them, the retry panel, form fields.

import { ApiError, NetworkError } from "./api.js";
import { h, clear, uid } from "./dom.js";

/** An empty alert slot to place next to a control; `show(error)` fills it, `hide()` empties it. */
export function errorSlot() {
  const el = h("div", { class: "error-slot", role: "alert", "aria-live": "assertive", hidden: true });
  return {
    el,
    show(errorOrText, { retry } = {}) {
      clear(el);
      const text = typeof errorOrText === "string" ? errorOrText : messageFor(errorOrText);
      el.append(h("p", { class: "error-text" }, text));
      // Retrying helps with the network, never with an answer the API gave (ApiError).
      if (retry && (errorOrText instanceof NetworkError || typeof errorOrText === "string")) {
        el.append(h("button", { type: "button", class: "button secondary retry", onclick: retry }, "Retry"));
      }
      el.hidden = false;
    },
    hide() {
      clear(el);
      el.hidden = true;
    },
  };
}

/** A readable sentence for any error the client can meet. */
export function messageFor(error) {
  if (error instanceof ApiError || error instanceof NetworkError) return error.message;
  console.error(error); // a bug in the page: keep the details for developers, show a sentence
  return "Something went wrong in the page. Reload it and try again.";
}

/** A full-panel failure with a retry button (used when a whole view cannot load). */
export function failurePanel(error, retry) {
  const isNetwork = error instanceof NetworkError;
  return h(
    "section",
    { class: "panel failure", role: "alert" },
    h("h2", {}, isNetwork ? "Can't reach the server" : "This page could not be loaded"),
    h("p", {}, messageFor(error)),
    retry ? h("button", { type: "button", class: "button", onclick: retry }, "Retry") : null,
  );
}

/** A labelled input with its own error slot; `setError(messages)` marks it invalid. */
export function field({ name, label, type = "text", value = "", required = false, maxlength, autocomplete, hint, multiline }) {
  const id = uid(`f-${name}`);
  const errorId = `${id}-error`;
  const hintId = hint ? `${id}-hint` : null;
  const attrs = { id, name, required, autocomplete, maxlength, "aria-describedby": [hintId, errorId].filter(Boolean).join(" ") };
  const input = multiline ? h("textarea", { ...attrs, rows: 3 }) : h("input", { ...attrs, type });
  input.value = value;
  const error = h("p", { id: errorId, class: "field-error", hidden: true });
  const wrapper = h(
    "div",
    { class: "field" },
    h("label", { for: id }, label),
    hint ? h("p", { id: hintId, class: "hint" }, hint) : null,
    input,
    error,
  );
  return {
    el: wrapper,
    input,
    name,
    setError(messages) {
      const list = Array.isArray(messages) ? messages : messages ? [messages] : [];
      error.textContent = list.join(" ");
      error.hidden = list.length === 0;
      if (list.length) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
    },
  };
}

/**
 * Show `error` on a form: field errors next to their inputs, the rest in `slot`. Focuses the
 * first invalid input (or the slot) so keyboard and screen-reader users land on the problem.
 */
export function showFormError(error, fields, slot, { retry } = {}) {
  const names = fields.map((f) => f.name);
  for (const f of fields) f.setError(null);
  if (error instanceof ApiError) {
    const problem = error.describe(names);
    let firstInvalid = null;
    for (const f of fields) {
      if (problem.fields[f.name]) {
        f.setError(problem.fields[f.name]);
        firstInvalid = firstInvalid || f.input;
      }
    }
    slot.show(problem.message);
    if (firstInvalid) firstInvalid.focus();
    return;
  }
  slot.show(error, { retry });
}

/** Disable a button while `work` runs, showing a busy label. */
export async function busy(button, work, label = "Working…") {
  const original = button.textContent;
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  button.textContent = label;
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
    if (button.isConnected) button.textContent = original;
  }
}
