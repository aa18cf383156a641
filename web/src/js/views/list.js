// Browse polls: open / closed / my drafts, search, and "load more" following `_links.next`.

import { append, h, formatDate } from "../dom.js";
import { href, idFromHref, items, withQuery } from "../hal.js";
import { resultRows, sortChoices } from "../results.js";
import { busy, errorSlot } from "../ui.js";
import { noticeBox } from "./auth.js";

export const PAGE_SIZE = 10;

const TABS = [
  { status: "open", label: "Open", empty: "No open polls right now." },
  { status: "closed", label: "Closed", empty: "No closed polls yet." },
  { status: "draft", label: "My drafts", empty: "You have no drafts.", signedIn: true },
];

export function statusBadge(status) {
  return h("span", { class: `badge status-${status}` }, status === "draft" ? "Draft" : status === "open" ? "Open" : "Closed");
}

function pollCard(app, poll) {
  const id = poll.id ?? idFromHref(href(poll, "self"));
  const headingId = `poll-${id}`;
  const card = h(
    "li",
    { class: "poll-card", "aria-labelledby": headingId },
    h("h3", { id: headingId }, h("a", { href: `#/polls/${encodeURIComponent(id)}` }, poll.question)),
    h("p", { class: "meta" }, statusBadge(poll.status), " ", poll.created_at ? `Created ${formatDate(poll.created_at)}` : ""),
    poll.description ? h("p", { class: "description" }, poll.description.length > 200 ? `${poll.description.slice(0, 200)}…` : poll.description) : null,
  );
  if (poll.status === "closed") finalResults(app, poll, card);
  return card;
}

/** A closed poll's final results inside its card (best effort: the card stays useful without them). */
async function finalResults(app, poll, card) {
  const resultsHref = href(poll, "results");
  const choicesHref = href(poll, "choices");
  if (!resultsHref || !choicesHref) return;
  try {
    const [results, choices] = await Promise.all([app.api.get(resultsHref), app.api.get(withQuery(choicesHref, { page_size: 20 }))]);
    const { total, rows } = resultRows(sortChoices(items(choices, "choices")), results);
    const list = h("ul", { class: "final-results", "aria-label": `Final results: ${total} ${total === 1 ? "vote" : "votes"}` });
    for (const row of rows) {
      const fill = h("span", { class: "bar-fill" });
      fill.style.width = `${(row.share * 100).toFixed(2)}%`;
      list.append(
        h(
          "li",
          {},
          h("span", { class: "result-label" }, h("span", { class: "choice-text" }, row.text), h("span", { class: "count" }, `${row.votes} · ${row.percent}%`)),
          h("span", { class: "bar-track", "aria-hidden": "true" }, fill),
        ),
      );
    }
    card.append(h("p", { class: "final-total" }, `Final results: ${total} ${total === 1 ? "vote" : "votes"}`), list);
  } catch {
    card.append(h("p", { class: "hint" }, "Final results are not available right now; open the poll to see them."));
  }
}

export async function listView({ app, container, params }) {
  const signedIn = app.session.signedIn;
  const tabs = TABS.filter((t) => !t.signedIn || signedIn);
  const status = tabs.some((t) => t.status === params.get("status")) ? params.get("status") : "open";
  const tab = tabs.find((t) => t.status === status);
  const query = (params.get("q") || "").trim();

  const searchInput = h("input", { id: "search", type: "search", name: "q", autocomplete: "off", maxlength: 200 });
  searchInput.value = query;
  const searchForm = h(
    "form",
    {
      class: "search",
      role: "search",
      onsubmit: (event) => {
        event.preventDefault();
        const q = searchInput.value.trim();
        app.go(`/polls?status=${status}${q ? `&q=${encodeURIComponent(q)}` : ""}`);
      },
    },
    h("label", { for: "search" }, "Search polls"),
    h("div", { class: "search-row" }, searchInput, h("button", { type: "submit", class: "button" }, "Search")),
  );

  const tabList = h(
    "ul",
    { class: "tabs", "aria-label": "Poll status" },
    tabs.map((t) =>
      h(
        "li",
        {},
        h(
          "a",
          { href: `#/polls?status=${t.status}${query ? `&q=${encodeURIComponent(query)}` : ""}`, "aria-current": t.status === status ? "page" : null },
          t.label,
        ),
      ),
    ),
  );

  const list = h("ul", { class: "poll-list" });
  const summary = h("p", { class: "summary", role: "status" });
  const moreSlot = errorSlot();
  const more = h("button", { type: "button", class: "button secondary", hidden: true }, "Load more polls");
  let nextHref = null;
  let shown = 0;

  function addPage(page) {
    const pagePolls = items(page, "polls");
    for (const poll of pagePolls) list.append(pollCard(app, poll));
    shown += pagePolls.length;
    nextHref = href(page, "next");
    more.hidden = !nextHref;
    const total = typeof page.count === "number" ? page.count : null;
    if (shown === 0) summary.textContent = query ? `No polls match “${query}”.` : tab.empty;
    else summary.textContent = `Showing ${shown}${total !== null ? ` of ${total}` : ""} ${status === "draft" ? "drafts" : `${status} polls`}${query ? ` matching “${query}”` : ""}.`;
  }

  more.addEventListener("click", async () => {
    moreSlot.hide();
    try {
      const page = await busy(more, () => app.api.get(nextHref), "Loading…");
      const before = list.children.length;
      addPage(page);
      const firstNew = list.children[before];
      if (firstNew) firstNew.querySelector("a").focus();
    } catch (error) {
      moreSlot.show(error, { retry: () => more.click() });
    }
  });

  const pollsHref = app.href("polls");
  const owner = status === "draft" && app.me && app.me.id !== undefined ? app.me.id : null;
  const firstPage = await app.api.get(withQuery(pollsHref, { status, search: query || null, owner, page_size: PAGE_SIZE }));

  append(
    container,
    h("div", { class: "page-head" }, h("h1", {}, "Polls"), signedIn ? h("a", { class: "button", href: "#/polls/new" }, "New poll") : null),
    noticeBox(app),
    searchForm,
    h("nav", { "aria-label": "Poll status" }, tabList),
    summary,
    list,
    moreSlot.el,
    h("div", { class: "actions" }, more),
  );
  addPage(firstPage);
}
