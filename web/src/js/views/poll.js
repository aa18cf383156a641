// One poll: details, owner controls (choices, open, close, delete) offered by `_links`, voting
// (vote, change, retract) and results that update live by polling with ETag / If-None-Match.

import { ApiError, NetworkError } from "../api.js";
import { append, h, clear, formatDate } from "../dom.js";
import { href, idFromHref, items, link, method, withQuery } from "../hal.js";
import { resultRows, reorderPlan, sortChoices } from "../results.js";
import { busy, errorSlot, failurePanel, field, messageFor, showFormError } from "../ui.js";
import { noticeBox } from "./auth.js";
import { statusBadge } from "./list.js";

export const RESULTS_INTERVAL_MS = 2000;
export const POLL_STATE_INTERVAL_MS = 15000;
const SETTLE_DELAY_MS = 500;
const SETTLE_MAX_ATTEMPTS = 20;

async function allPages(api, first, name) {
  const out = [];
  let next = first;
  let guard = 0;
  while (next && guard < 50) {
    const page = await api.get(next);
    out.push(...items(page, name));
    next = href(page, "next");
    guard += 1;
  }
  return out;
}

export async function pollView({ app, container, id }) {
  const pollHref = `${app.href("polls")}${encodeURIComponent(id)}/`;
  const state = { poll: null, choices: [], results: null, myVote: null };
  const slots = {}; // section name -> error message to show after the next render
  let timers = [];
  let generation = 0; // bumped on every render so stale refresh loops stop
  let stopped = false;
  let settleTimer = null;
  let liveFailures = 0;
  let settleAttempts = 0;
  let liveText = null;
  let resultsList = null;
  let totalText = null;
  let lastTotal = null;

  async function load() {
    const poll = await app.api.get(pollHref, { revalidate: true });
    const choicesHref = href(poll, "choices");
    const choices = choicesHref ? sortChoices(await allPages(app.api, choicesHref, "choices")) : [];
    let results = null;
    const resultsHref = href(poll, "results");
    if (poll.status !== "draft" && resultsHref) results = await app.api.get(resultsHref, { revalidate: true });
    let myVote = null;
    const votesHref = app.href("votes");
    if (app.session.signedIn && poll.status !== "draft" && votesHref) {
      const pollId = poll.id ?? id;
      const mine = items(await app.api.get(withQuery(votesHref, { poll: pollId })), "votes");
      myVote = mine.find((v) => String(v.poll) === String(pollId)) || null;
    }
    Object.assign(state, { poll, choices, results, myVote });
  }

  function choiceText(choiceId) {
    const c = state.choices.find((x) => String(x.id) === String(choiceId));
    return c ? c.text : "a choice that no longer exists";
  }

  /** Run an API action from `button`; errors appear in the section's slot, then the view reloads. */
  async function act(button, section, work, label) {
    const slot = slots[section] && slots[section].slot;
    if (slot) slot.hide();
    let failure = null;
    try {
      await busy(button, work, label);
    } catch (error) {
      failure = error;
    }
    if (failure instanceof NetworkError) {
      slot.show(failure, { retry: () => button.click() });
      return;
    }
    if (failure && !(failure instanceof ApiError)) throw failure;
    if (failure && failure.status === 401) return; // sent to the login page
    try {
      await load();
    } catch (error) {
      if (slot) slot.show(error, { retry: () => button.click() });
      return;
    }
    settleAttempts = 0;
    render({
      [section]: failure ? failure.problem.message : null,
      focusKey: button.dataset.key,
      focusSection: section,
      announce: failure ? null : "Done.",
    });
  }

  function actionButton(key, text, { className = "button", ariaLabel, onClick }) {
    return h("button", { type: "button", class: className, "data-key": key, "aria-label": ariaLabel, onclick: (e) => onClick(e.currentTarget) }, text);
  }

  function section(name, title, ...children) {
    const slot = errorSlot();
    slots[name] = { slot };
    return h("section", { class: "panel", "aria-labelledby": `${name}-heading`, id: `section-${name}` }, h("h2", { id: `${name}-heading` }, title), ...children, slot.el);
  }

  function ownerSection() {
    const { poll, choices } = state;
    const addLink = link(poll, "add_choice");
    const openLink = link(poll, "open");
    const deleteLink = link(poll, "delete");
    // Choice links come from the choice service, whose copy of the poll's state can trail the polls
    // service by an event; the poll's own status decides whether choice controls make sense.
    const editable = poll.status === "draft" && choices.some((c) => link(c, "edit") || link(c, "delete"));
    if (!addLink && !openLink && !deleteLink && !editable && !link(poll, "edit")) return null;

    const rows = choices.map((choice, index) => {
      const edit = editable && link(choice, "edit");
      const del = editable && link(choice, "delete");
      const controls = [];
      if (edit) {
        const moveHandler = (delta) => (button) =>
          act(button, "manage", async () => {
            for (const { choice: c, position } of reorderPlan(choices, index, delta)) {
              const l = link(c, "edit");
              await app.api.send(method(l, "PATCH"), l.href, { position });
            }
          }, "Moving…");
        controls.push(
          actionButton(`up-${choice.id}`, "↑", { className: "button small secondary", ariaLabel: `Move “${choice.text}” up`, onClick: moveHandler(-1) }),
          actionButton(`down-${choice.id}`, "↓", { className: "button small secondary", ariaLabel: `Move “${choice.text}” down`, onClick: moveHandler(1) }),
        );
        if (index === 0) controls[0].disabled = true;
        if (index === choices.length - 1) controls[1].disabled = true;
      }
      if (del) {
        controls.push(
          actionButton(`remove-${choice.id}`, "Remove", {
            className: "button small danger",
            ariaLabel: `Remove “${choice.text}”`,
            onClick: (button) => act(button, "manage", () => app.api.send(method(del, "DELETE"), del.href), "Removing…"),
          }),
        );
      }
      return h("li", { class: "manage-choice" }, h("span", { class: "choice-text" }, choice.text), h("span", { class: "controls" }, controls));
    });

    let addForm = null;
    if (addLink) {
      const text = field({ name: "text", label: "New choice", maxlength: 200 });
      const addButton = h("button", { type: "submit", class: "button secondary", "data-key": "add-choice" }, "Add choice");
      addForm = h(
        "form",
        {
          class: "inline-form",
          novalidate: true,
          onsubmit: async (event) => {
            event.preventDefault();
            text.setError(null);
            if (!text.input.value.trim()) {
              text.setError("Enter the text of the choice.");
              text.input.focus();
              return;
            }
            try {
              await busy(addButton, () =>
                app.api.send(method(addLink, "POST"), addLink.href, {
                  poll: poll.id ?? id,
                  text: text.input.value.trim(),
                  position: choices.length ? Math.max(...choices.map((c) => c.position ?? 0)) + 1 : 0,
                }),
              );
            } catch (error) {
              if (error instanceof ApiError) {
                const problem = error.describe(["text"]);
                text.setError(problem.fields.text || problem.message);
                text.input.focus();
              } else {
                text.setError(messageFor(error));
              }
              return;
            }
            await load();
            render({ focusKey: "add-choice-input", announce: "Choice added." });
          },
        },
        text.el,
        addButton,
      );
      text.input.dataset.key = "add-choice-input";
    }

    let editForm = null;
    const editLink = link(poll, "edit");
    if (editLink && poll.status === "draft") {
      const question = field({ name: "question", label: "Question", required: true, maxlength: 500, value: poll.question });
      const description = field({
        name: "description",
        label: "Description",
        multiline: true,
        maxlength: 5000,
        value: poll.description || "",
      });
      const editSlot = errorSlot();
      const save = h("button", { type: "submit", class: "button secondary", "data-key": "save-poll" }, "Save changes");
      editForm = h(
        "details",
        { class: "edit-poll" },
        h("summary", {}, "Edit question and description"),
        h(
          "form",
          {
            novalidate: true,
            onsubmit: async (event) => {
              event.preventDefault();
              editSlot.hide();
              try {
                await busy(save, () =>
                  app.api.send(method(editLink, "PATCH"), editLink.href, {
                    question: question.input.value.trim(),
                    description: description.input.value.trim(),
                  }),
                );
              } catch (error) {
                showFormError(error, [question, description], editSlot, { retry: () => save.click() });
                return;
              }
              await load();
              render({ focusKey: "save-poll", announce: "Changes saved." });
            },
          },
          question.el,
          description.el,
          editSlot.el,
          save,
        ),
      );
    }

    const lifecycle = [];
    if (openLink) {
      lifecycle.push(
        actionButton("open", "Open poll for voting", {
          onClick: (button) => act(button, "manage", () => app.api.send(method(openLink, "POST"), openLink.href, {}), "Opening…"),
        }),
      );
    }
    if (deleteLink) lifecycle.push(confirmButton("delete", "Delete poll", "Delete this poll for good?", "Yes, delete", async (button) => {
      try {
        await busy(button, () => app.api.send(method(deleteLink, "DELETE"), deleteLink.href), "Deleting…");
        app.flash("The poll was deleted.", "info");
        app.go("/polls?status=draft");
      } catch (error) {
        slots.manage.slot.show(error, { retry: () => button.click() });
      }
    }));

    return section(
      "manage",
      poll.status === "draft" ? "Manage this draft" : "Manage this poll",
      h("p", { class: "hint" }, "Choices can be changed while the poll is a draft. A poll needs at least two choices to open."),
      rows.length ? h("ol", { class: "manage-list" }, rows) : h("p", {}, "No choices yet."),
      addForm,
      editForm,
      lifecycle.length ? h("div", { class: "actions" }, lifecycle) : null,
    );
  }

  function confirmButton(key, text, question, yesText, onYes) {
    const wrap = h("span", { class: "confirm" });
    const first = actionButton(key, text, {
      className: "button danger",
      onClick: () => {
        clear(wrap);
        const yes = actionButton(`${key}-yes`, yesText, { className: "button danger", onClick: onYes });
        const no = actionButton(`${key}-no`, "Cancel", {
          className: "button secondary",
          onClick: () => {
            clear(wrap);
            wrap.append(first);
            first.focus();
          },
        });
        wrap.append(h("span", { class: "confirm-question" }, question), " ", yes, " ", no);
        yes.focus();
      },
    });
    wrap.append(first);
    return wrap;
  }

  function voteSection() {
    const { poll, choices, myVote } = state;
    if (poll.status !== "open") return null;
    const voteLink = link(poll, "vote");
    if (!app.session.signedIn) {
      return section("vote", "Vote", h("p", {}, h("a", { href: `#/login?next=${encodeURIComponent(`/polls/${id}`)}` }, "Log in"), " to vote."));
    }
    const change = myVote && link(myVote, "change");
    const retract = myVote && link(myVote, "retract");
    const list = h("ul", { class: "vote-list" });
    for (const choice of choices) {
      const mine = myVote && String(myVote.choice) === String(choice.id);
      let control = null;
      if (mine) control = h("span", { class: "badge mine" }, "Your vote");
      else if (myVote && change) {
        control = actionButton(`change-${choice.id}`, "Change to this", {
          className: "button secondary",
          ariaLabel: `Change my vote to “${choice.text}”`,
          onClick: (button) => act(button, "vote", () => app.api.send(method(change, "PATCH"), change.href, { choice: choice.id }), "Changing…"),
        });
      } else if (!myVote && voteLink) {
        control = actionButton(`vote-${choice.id}`, "Vote", {
          ariaLabel: `Vote for “${choice.text}”`,
          onClick: (button) =>
            act(button, "vote", () => app.api.send(method(voteLink, "POST"), voteLink.href, { poll: poll.id ?? id, choice: choice.id }), "Voting…"),
        });
      }
      list.append(h("li", { class: mine ? "vote-choice mine" : "vote-choice" }, h("span", { class: "choice-text" }, choice.text), control));
    }
    // No vote of ours and no vote link: the polls service may not have seen our retraction yet
    // (it learns of votes from events); look again shortly before saying voting is unavailable.
    const settling = ((!myVote && !voteLink) || !choices.length) && settleAttempts < SETTLE_MAX_ATTEMPTS;
    if (settling) scheduleSettle();
    const status = myVote
      ? h("p", { class: "my-vote", id: "my-vote" }, "You voted for ", h("strong", {}, choiceText(myVote.choice)), ".")
      : voteLink
        ? h("p", {}, "Choose one answer. You can change or retract your vote while the poll is open.")
        : settling
          ? h("p", {}, "Updating…")
          : h("p", {}, "Voting is not available to you on this poll.");
    const retractButton = retract
      ? actionButton("retract", "Retract my vote", {
          className: "button danger",
          onClick: (button) => act(button, "vote", () => app.api.send(method(retract, "DELETE"), retract.href), "Retracting…"),
        })
      : null;
    return section("vote", "Vote", status, list, retractButton ? h("div", { class: "actions" }, retractButton) : null);
  }

  function scheduleSettle() {
    if (settleTimer) clearTimeout(settleTimer);
    const gen = generation + 1; // the generation the current render is about to start
    settleTimer = setTimeout(async () => {
      settleTimer = null;
      settleAttempts += 1;
      if (!live(gen)) return;
      try {
        await load();
      } catch {
        /* shown on the next attempt or action */
      }
      if (live(gen)) render({});
    }, SETTLE_DELAY_MS * Math.min(settleAttempts + 1, 4));
  }

  function closeSection() {
    const closeLink = link(state.poll, "close");
    if (!closeLink) return null;
    return section(
      "close",
      "Close voting",
      h("p", { class: "hint" }, "Closing ends voting for everyone and shows the final results."),
      h(
        "div",
        { class: "actions" },
        confirmButton("close", "Close poll", "End voting now?", "Yes, close it", (button) =>
          act(button, "close", () => app.api.send(method(closeLink, "POST"), closeLink.href, {}), "Closing…"),
        ),
      ),
    );
  }

  function resultsSection() {
    const { poll, results } = state;
    if (poll.status === "draft" || !results) return null;
    // A just-opened poll's choices reach the other services by event: look again shortly.
    if (!state.choices.length && settleAttempts < SETTLE_MAX_ATTEMPTS) scheduleSettle();
    const closed = poll.status === "closed";
    resultsList = h("ol", { class: "results", id: "results" });
    totalText = h("p", { class: "total", id: "results-total" });
    liveText = h("p", { class: "visually-hidden", "aria-live": "polite", id: "results-live" });
    fillResults(false);
    return section(
      "results",
      closed ? "Final results" : "Results",
      totalText,
      resultsList,
      closed ? h("p", { class: "hint" }, "This poll is closed; these results are final.") : h("p", { class: "hint" }, "Updates automatically."),
      liveText,
    );
  }

  function fillResults(announce) {
    const { total, rows } = resultRows(state.choices, state.results);
    clear(resultsList);
    for (const row of rows) {
      const fill = h("span", { class: "bar-fill" });
      fill.style.width = `${(row.share * 100).toFixed(2)}%`;
      const mine = state.myVote && String(state.myVote.choice) === row.id;
      resultsList.append(
        h(
          "li",
          { class: mine ? "result mine" : "result", dataset: { choice: row.id } },
          h(
            "div",
            { class: "result-label" },
            h("span", { class: "choice-text" }, row.text, mine ? h("span", { class: "visually-hidden" }, " (your vote)") : null),
            h("span", { class: "count" }, `${row.votes} ${row.votes === 1 ? "vote" : "votes"} · ${row.percent}%`),
          ),
          h("span", { class: "bar-track", "aria-hidden": "true" }, fill),
        ),
      );
    }
    totalText.textContent = `${total} ${total === 1 ? "vote" : "votes"} in total`;
    if (announce && lastTotal !== null && total !== lastTotal) liveText.textContent = `Results updated: ${total} ${total === 1 ? "vote" : "votes"} in total.`;
    lastTotal = total;
  }

  function render({ focusKey: requestedFocus, focusSection, announce, ...errors } = {}) {
    const { poll } = state;
    // A re-render (live update) keeps keyboard focus on the same control when it still exists.
    const active = document.activeElement;
    const keptFocus = !requestedFocus && active && container.contains(active) ? active.dataset.key : null;
    clear(container);
    for (const key of Object.keys(slots)) delete slots[key];
    const owner = ownerSection();
    const vote = voteSection();
    const results = resultsSection();
    const close = closeSection();
    const pageSlot = errorSlot();
    pageSlot.el.id = "page-error";
    append(
    container,
      h("p", { class: "breadcrumb" }, h("a", { href: `#/polls?status=${poll.status}` }, "← All polls")),
      h("h1", { id: "poll-question" }, poll.question),
      h(
        "p",
        { class: "meta" },
        statusBadge(poll.status),
        poll.closes_at && poll.status === "open" ? ` Closes ${formatDate(poll.closes_at)}.` : "",
        poll.created_at ? ` Created ${formatDate(poll.created_at)}.` : "",
      ),
      noticeBox(app),
      pageSlot.el,
      poll.description ? h("p", { class: "description" }, poll.description) : null,
      poll.status === "closed" ? h("p", { class: "notice info", role: "status" }, "This poll is closed. Voting has ended.") : null,
      h("p", { class: "visually-hidden", role: "status", id: "action-status" }, announce || ""),
      owner,
      vote,
      results,
      close,
      !owner && !vote && !results && !close ? h("section", { class: "panel" }, h("p", {}, "This poll is a draft and has no results yet.")) : null,
    );
    for (const [name, message] of Object.entries(errors)) {
      // An action whose section is gone after the reload (e.g. a vote on a poll closed meanwhile)
      // still gets its message, at the top of the page.
      if (message) (slots[name] ? slots[name].slot : pageSlot).show(message);
    }
    if (keptFocus) {
      const again = container.querySelector(`[data-key="${CSS.escape(keptFocus)}"]`);
      if (again) again.focus();
    }
    const focusKey = requestedFocus;
    if (focusKey) {
      const target = container.querySelector(`[data-key="${CSS.escape(focusKey)}"]`);
      if (target && !target.disabled) target.focus();
      else {
        // The control is gone (e.g. "Vote" after voting): land on the section it belonged to.
        const errored = Object.keys(errors).find((k) => errors[k]);
        const area = errored || focusSection;
        const heading = area
          ? container.querySelector(`#${area}-heading`) || (errored ? pageSlot.el : container.querySelector("h1"))
          : container.querySelector("h1");
        if (heading) {
          heading.setAttribute("tabindex", "-1");
          heading.focus();
        }
      }
    }
    schedule();
  }

  function schedule() {
    for (const t of timers) clearTimeout(t);
    timers = [];
    generation += 1;
    if (stopped || state.poll.status !== "open") return;
    const gen = generation;
    timers.push(setTimeout(() => refreshResults(gen), RESULTS_INTERVAL_MS));
    timers.push(setTimeout(() => refreshPoll(gen), POLL_STATE_INTERVAL_MS));
  }

  const live = (gen) => !stopped && gen === generation;

  /** One live fetch of the results; after repeated network failures a notice with Retry appears. */
  async function fetchResults(gen) {
    try {
      const response = await app.api.request("GET", href(state.poll, "results"), { revalidate: true });
      liveFailures = 0;
      if (slots.results) slots.results.slot.hide();
      if (live(gen) && !response.notModified) {
        state.results = response.body;
        const known = new Set(state.choices.map((c) => String(c.id)));
        if ((state.results.choices || []).some((c) => !known.has(String(c.choice)))) {
          state.choices = sortChoices(await allPages(app.api, href(state.poll, "choices"), "choices"));
        }
        if (resultsList && resultsList.isConnected) fillResults(true);
      }
    } catch (error) {
      liveFailures += 1;
      if (liveFailures >= 2 && slots.results && (error instanceof NetworkError || (error.status || 0) >= 500)) {
        slots.results.slot.show(
          error instanceof NetworkError
            ? "Live updates are paused: the server cannot be reached. They resume by themselves, or retry now."
            : "Live updates are paused: the results service is not answering. They resume by themselves, or retry now.",
          { retry: () => fetchResults(generation) },
        );
      }
    }
  }

  async function refreshResults(gen) {
    if (!live(gen)) return;
    if (document.visibilityState !== "hidden") await fetchResults(gen);
    if (live(gen)) timers.push(setTimeout(() => refreshResults(gen), RESULTS_INTERVAL_MS));
  }

  async function refreshPoll(gen) {
    if (!live(gen)) return;
    try {
      const response = await app.api.request("GET", pollHref, { revalidate: true });
      if (live(gen) && !response.notModified && response.body.status !== state.poll.status) {
        await load();
        if (!live(gen)) return;
        render({ announce: `The poll is now ${state.poll.status}.` });
        return;
      }
    } catch {
      /* try again later */
    }
    if (live(gen)) timers.push(setTimeout(() => refreshPoll(gen), POLL_STATE_INTERVAL_MS));
  }

  const pollsLink = app.href("polls");
  if (!pollsLink) throw new Error("The API entry point offers no polls link.");
  try {
    await load();
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      append(container, h("h1", {}, "Poll not found"), h("p", {}, "This poll does not exist or you cannot see it. ", h("a", { href: "#/polls" }, "Back to the polls.")));
      return undefined;
    }
    if (error instanceof ApiError && error.status === 401) return undefined;
    append(container, failurePanel(error, () => window.dispatchEvent(new HashChangeEvent("hashchange"))));
    return undefined;
  }
  render();
  return () => {
    stopped = true;
    for (const t of timers) clearTimeout(t);
  };
}

export { idFromHref };
