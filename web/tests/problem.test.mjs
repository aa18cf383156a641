import assert from "node:assert/strict";
import { test } from "node:test";
import { describeProblem } from "../src/js/problem.js";

test("uses detail for a plain problem", () => {
  const p = describeProblem(409, { type: "x", title: "Conflict.", status: 409, detail: "You have already voted in this poll." });
  assert.equal(p.message, "You have already voted in this poll.");
  assert.deepEqual(p.fields, {});
});

test("maps field errors onto known inputs and keeps the rest readable", () => {
  const body = {
    title: "Invalid input.",
    detail: "username: taken",
    errors: { username: ["A user with that username already exists."], non_field_errors: ["Try again."], "extra.sub": ["bad"] },
  };
  const p = describeProblem(400, body, ["username", "password"]);
  assert.deepEqual(p.fields, { username: ["A user with that username already exists."] });
  assert.equal(p.message, "Try again. Extra sub: bad");
});

test("nested field names attach to their base input", () => {
  const p = describeProblem(400, { errors: { "text.0": ["Too long."] } }, ["text"]);
  assert.deepEqual(p.fields, { text: ["Too long."] });
  assert.equal(p.message, "Please correct the highlighted fields.");
});

test("never shows raw JSON or HTML, falls back to a sentence per status", () => {
  assert.equal(describeProblem(502, "<html>Bad gateway</html>").message, "The service is unreachable; try again.");
  assert.equal(describeProblem(500, '{"oops": 1}').message, "The server had a problem; try again.");
  assert.equal(describeProblem(418, null).message, "The request failed (HTTP 418).");
  assert.equal(describeProblem(404, { title: "Not found." }).message, "Not found.");
});
