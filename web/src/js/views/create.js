// Create a poll (a draft) with its choices, and optionally open it straight away.

import { ApiError } from "../api.js";
import { append, h, clear } from "../dom.js";
import { href, idFromHref, link, method } from "../hal.js";
import { busy, errorSlot, field, showFormError } from "../ui.js";

const MAX_CHOICES = 20;

export function createView({ app, container }) {
  if (!app.session.signedIn) {
    app.flash("Log in to create a poll.", "warning");
    app.go(`/login?next=${encodeURIComponent("/polls/new")}`);
    return;
  }
  const question = field({ name: "question", label: "Question", required: true, maxlength: 500 });
  const description = field({ name: "description", label: "Description (optional)", multiline: true, maxlength: 5000 });
  const closesAt = field({
    name: "closes_at",
    label: "Closes at (optional)",
    type: "datetime-local",
    hint: "Voting ends by itself at this time (your local time).",
  });
  const choiceList = h("ol", { class: "choice-inputs" });
  const choiceFields = [];
  const openNow = h("input", { type: "checkbox", id: "open-now", name: "open_now" });
  const slot = errorSlot();
  const submit = h("button", { type: "submit", class: "button" }, "Create poll");
  const addButton = h("button", { type: "button", class: "button secondary", id: "add-choice-input" }, "Add another choice");
  let created = null; // the poll once POSTed, so a retry only adds what is missing

  function renumber() {
    choiceFields.forEach((entry, index) => {
      entry.label.textContent = `Choice ${index + 1}`;
      entry.remove.setAttribute("aria-label", `Remove choice ${index + 1}`);
      entry.remove.disabled = choiceFields.length <= 2 || entry.saved;
    });
    addButton.disabled = choiceFields.length >= MAX_CHOICES;
  }

  function addChoiceInput(focus = false) {
    const f = field({ name: `choice-${choiceFields.length}`, label: "Choice", maxlength: 200 });
    const label = f.el.querySelector("label");
    const remove = h("button", { type: "button", class: "button link danger" }, "Remove");
    const entry = { ...f, label, remove, saved: false };
    remove.addEventListener("click", () => {
      const index = choiceFields.indexOf(entry);
      choiceFields.splice(index, 1);
      row.remove();
      renumber();
      (choiceFields[Math.min(index, choiceFields.length - 1)] || entry).input.focus();
    });
    const row = h("li", { class: "choice-input" }, f.el, remove);
    choiceFields.push(entry);
    choiceList.append(row);
    renumber();
    if (focus) f.input.focus();
  }

  addButton.addEventListener("click", () => addChoiceInput(true));
  addChoiceInput();
  addChoiceInput();

  async function save() {
    const texts = choiceFields.map((c) => c.input.value.trim());
    for (const c of choiceFields) c.setError(null);
    question.setError(null);
    closesAt.setError(null);
    if (!question.input.value.trim()) {
      question.setError("Enter the question.");
      question.input.focus();
      return;
    }
    const filled = choiceFields.filter((c, i) => texts[i]);
    if (filled.length < 2) {
      const firstEmpty = choiceFields.find((c) => !c.input.value.trim());
      firstEmpty.setError("A poll needs at least two choices.");
      firstEmpty.input.focus();
      return;
    }
    if (!created) {
      try {
        const createLink = app.link("create_poll") || app.link("polls");
        const body = { question: question.input.value.trim(), description: description.input.value.trim() };
        if (closesAt.input.value) {
          const when = new Date(closesAt.input.value);
          if (Number.isNaN(when.getTime())) {
            closesAt.setError("Enter a valid date and time.");
            closesAt.input.focus();
            return;
          }
          body.closes_at = when.toISOString();
        }
        created = await app.api.send(method(createLink, "POST"), createLink.href, body);
      } catch (error) {
        showFormError(error, [question, description, closesAt], slot, { retry: () => form.requestSubmit() });
        return;
      }
      question.input.readOnly = true;
      description.input.readOnly = true;
      closesAt.input.readOnly = true;
    }
    const addLink = link(created, "add_choice");
    if (!addLink) {
      slot.show("The poll was created, but the API does not offer adding choices to it.");
      return;
    }
    for (const [index, entry] of choiceFields.entries()) {
      if (entry.saved || !entry.input.value.trim()) continue;
      try {
        await app.api.send(method(addLink, "POST"), addLink.href, {
          poll: created.id ?? idFromHref(href(created, "self")),
          text: entry.input.value.trim(),
          position: index,
        });
        entry.saved = true;
        entry.input.readOnly = true;
        renumber();
      } catch (error) {
        if (error instanceof ApiError) {
          const problem = error.describe(["text"]);
          entry.setError(problem.fields.text || problem.message);
          slot.show("The draft was saved, but this choice was not accepted. Fix it and submit again.");
          entry.input.focus();
        } else {
          slot.show(error, { retry: () => form.requestSubmit() });
        }
        return;
      }
    }
    const id = created.id ?? idFromHref(href(created, "self"));
    if (openNow.checked) {
      try {
        const fresh = await app.api.get(href(created, "self"));
        const openLink = link(fresh, "open");
        if (openLink) await app.api.send(method(openLink, "POST"), openLink.href, {});
        app.flash(openLink ? "Your poll is open for votes." : "Your poll was saved as a draft.", "info");
      } catch (error) {
        app.flash(`Your poll was saved as a draft but could not be opened: ${error.message}`, "warning");
      }
    } else {
      app.flash("Your poll was saved as a draft. Open it when it is ready.", "info");
    }
    app.go(`/polls/${encodeURIComponent(id)}`);
  }

  const form = h(
    "form",
    {
      class: "panel form",
      novalidate: true,
      onsubmit: async (event) => {
        event.preventDefault();
        slot.hide();
        await busy(submit, save, "Saving…");
      },
    },
    question.el,
    description.el,
    closesAt.el,
    h(
      "fieldset",
      { class: "choices-fieldset" },
      h("legend", {}, "Choices"),
      h("p", { class: "hint" }, `Between 2 and ${MAX_CHOICES} choices. You can reorder them on the next page while the poll is a draft.`),
      choiceList,
      addButton,
    ),
    h("div", { class: "checkbox" }, openNow, h("label", { for: "open-now" }, "Open the poll for voting right away")),
    slot.el,
    h("div", { class: "actions" }, submit, h("a", { href: "#/polls", class: "button link" }, "Cancel")),
  );
  clear(container);
  append(container, h("h1", {}, "New poll"), form);
  question.input.focus();
}
