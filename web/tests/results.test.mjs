import assert from "node:assert/strict";
import { test } from "node:test";
import { reorderPlan, resultRows, sortChoices } from "../src/js/results.js";

const choices = [
  { id: "a", text: "Alpha", position: 0 },
  { id: "b", text: "Beta", position: 1 },
  { id: "c", text: "Gamma", position: 2 },
];

test("percentages add up to exactly 100 (largest remainder)", () => {
  const { total, rows } = resultRows(choices, { choices: [{ choice: "a", votes: 1 }, { choice: "b", votes: 1 }, { choice: "c", votes: 1 }] });
  assert.equal(total, 3);
  assert.deepEqual(rows.map((r) => r.percent), [34, 33, 33]);
  assert.equal(rows.reduce((s, r) => s + r.percent, 0), 100);
});

test("choices missing from the results count as zero; no votes means 0 %", () => {
  const { total, rows } = resultRows(choices, { choices: [{ choice: "b", votes: 2 }] });
  assert.equal(total, 2);
  assert.deepEqual(rows.map((r) => [r.id, r.votes, r.percent]), [["a", 0, 0], ["b", 2, 100], ["c", 0, 0]]);
  const empty = resultRows(choices, { total: 0, choices: [] });
  assert.deepEqual(empty.rows.map((r) => r.percent), [0, 0, 0]);
});

test("a zero-vote choice never gets a rounding point", () => {
  const { rows } = resultRows(choices, { choices: [{ choice: "a", votes: 2 }, { choice: "b", votes: 1 }, { choice: "c", votes: 0 }] });
  assert.deepEqual(rows.map((r) => r.percent), [67, 33, 0]);
});

test("sorts by position and plans the PATCHes of a move", () => {
  const shuffled = [choices[2], choices[0], choices[1]];
  assert.deepEqual(sortChoices(shuffled).map((c) => c.id), ["a", "b", "c"]);
  const plan = reorderPlan(shuffled, 2, -1); // move Gamma up
  assert.deepEqual(plan.map((p) => [p.choice.id, p.position]), [["c", 1], ["b", 2]]);
  assert.deepEqual(reorderPlan(choices, 0, -1), []); // already first
});
