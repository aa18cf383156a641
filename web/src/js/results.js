// Pure result arithmetic: bars with counts and percentages that add up to 100.

/**
 * Combine choices and a results document into rows `{id, text, votes, percent}` in choice order.
 * Percentages are whole numbers using the largest-remainder method, so they sum to exactly 100
 * whenever there is at least one vote (and are all 0 otherwise).
 */
export function resultRows(choices, results) {
  const counts = new Map();
  for (const entry of (results && results.choices) || []) {
    const id = String(entry.choice ?? entry.id);
    counts.set(id, Number(entry.votes) || 0);
  }
  const rows = choices.map((c) => ({ id: String(c.id), text: c.text, votes: counts.get(String(c.id)) ?? 0 }));
  const total = rows.reduce((sum, row) => sum + row.votes, 0);
  if (total === 0) return { total: 0, rows: rows.map((r) => ({ ...r, percent: 0, share: 0 })) };
  const exact = rows.map((r) => (r.votes * 100) / total);
  const floors = exact.map(Math.floor);
  let remaining = 100 - floors.reduce((a, b) => a + b, 0);
  const order = exact
    .map((value, index) => ({ index, remainder: value - floors[index] }))
    .sort((a, b) => b.remainder - a.remainder || a.index - b.index);
  for (const { index } of order) {
    if (remaining <= 0) break;
    if (exact[index] - floors[index] > 0) {
      floors[index] += 1;
      remaining -= 1;
    }
  }
  return {
    total,
    rows: rows.map((r, i) => ({ ...r, percent: floors[i], share: r.votes / total })),
  };
}

/** Choices sorted by position then text, the order the API and the UI agree on. */
export function sortChoices(choices) {
  return [...choices].sort((a, b) => (a.position ?? 0) - (b.position ?? 0) || String(a.text).localeCompare(b.text));
}

/**
 * The PATCHes needed to move the choice at `index` by `delta` (-1 up, +1 down): positions are
 * renumbered 0..n-1 in the new order and only choices whose position changes are returned.
 */
export function reorderPlan(choices, index, delta) {
  const ordered = sortChoices(choices);
  const target = index + delta;
  if (target < 0 || target >= ordered.length) return [];
  const moved = [...ordered];
  [moved[index], moved[target]] = [moved[target], moved[index]];
  return moved
    .map((choice, position) => ({ choice, position }))
    .filter(({ choice, position }) => choice.position !== position);
}
