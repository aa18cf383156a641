import assert from "node:assert/strict";
import { test } from "node:test";
import { expand, href, idFromHref, items, link, method, withQuery } from "../src/js/hal.js";

const poll = {
  id: "p1",
  _links: {
    self: { href: "/api/v3/polls/p1/" },
    open: { href: "/api/v3/polls/p1/open/", method: "POST" },
    actions: { close: { href: "/api/v3/polls/p1/close/", method: "post" } },
    many: [{ href: "/first/" }, { href: "/second/" }],
  },
};

test("reads links, action links and their methods", () => {
  assert.equal(href(poll, "self"), "/api/v3/polls/p1/");
  assert.equal(method(link(poll, "open")), "POST");
  assert.equal(method(link(poll, "close")), "POST"); // nested under "actions", method upper-cased
  assert.equal(method(link(poll, "self"), "GET"), "GET");
  assert.equal(href(poll, "many"), "/first/");
  assert.equal(link(poll, "vote"), null); // not offered -> no control
  assert.equal(link({}, "self"), null);
});

test("finds embedded collection items", () => {
  assert.deepEqual(items({ _embedded: { polls: [1, 2] } }, "polls"), [1, 2]);
  assert.deepEqual(items({ _embedded: { other: [3] } }, "polls"), [3]);
  assert.deepEqual(items({ results: [4] }), [4]);
  assert.deepEqual(items(null), []);
});

test("expands templates and sets query parameters on relative hrefs", () => {
  assert.equal(expand("/api/v3/results/{poll}/", { poll: "a b" }), "/api/v3/results/a%20b/");
  assert.equal(withQuery("/api/v3/polls/", { status: "open", search: "" }), "/api/v3/polls/?status=open");
  assert.equal(withQuery("/api/v3/polls/?cursor=x", { search: "tea & cake" }), "/api/v3/polls/?cursor=x&search=tea+%26+cake");
  assert.equal(idFromHref("/api/v3/polls/1234/"), "1234");
});
