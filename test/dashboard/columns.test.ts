/** The page's series on one shared x: tables, the merge of their x values, validation columns aligned to training steps. */
import { expect, test } from "bun:test";
import { alignTo, combine, mergeAscending, table, type Table } from "../../src/dashboard/columns.ts";

test("a table drops points without an x and sorts by x; steps already in order are used as they are", () => {
  const xs = [1, 2, 3];
  const ys = [4, 5, null];
  const t = table(xs, [ys])!;
  expect(t[0]).toBe(xs); // no copy
  expect(table([3, null, 1, 2], [[30, 99, 10, 20]])).toEqual([[1, 2, 3], [10, 20, 30]]);
  expect(table([null, null], [[1, 2]])).toBeNull();
  expect(table([], [[]])).toBeNull();
});

test("validation at training steps becomes a sparse column; a step training never had refuses", () => {
  expect(alignTo([1, 2, 3, 4], [2, 4], [7, 8])).toEqual([null, 7, null, 8]);
  expect(alignTo([1, 2, 3, 4], [2, 2], [7, 9])).toEqual([null, 9, null, null]);
  expect(alignTo([1, 2, 3, 4], [2, 5], [7, 8])).toBeNull();
  expect(alignTo([1, 3], [2], [7])).toBeNull();
});

test("runs over the same steps sit side by side; others are merged onto the union of their x", () => {
  expect(combine([[[1, 2], [5, 6]], [[1, 2], [7, 8]]])).toEqual([[1, 2], [5, 6], [7, 8]]);
  expect(combine([[[1, 3], [5, 6]], [[2, 3, 4], [7, 8, 9]]])).toEqual([[1, 2, 3, 4], [5, null, 6, null], [null, 7, 8, 9]]);
  expect(mergeAscending([1, 1, 4], [0, 4, 9])).toEqual([0, 1, 4, 9]);
});

test("fuzz: combine equals a plain join by value for random ascending tables", () => {
  let seed = 4242;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (let round = 0; round < 300; round++) {
    const tables: Table[] = Array.from({ length: 1 + Math.floor(rand() * 4) }, () => {
      const n = Math.floor(rand() * 30);
      const xs = Array.from({ length: n }, () => Math.floor(rand() * 40)).sort((a, b) => a - b);
      const cols = Array.from({ length: 1 + Math.floor(rand() * 2) }, () => xs.map(() => (rand() < 0.1 ? null : Math.round(rand() * 100))));
      return [xs, ...cols] as Table;
    });
    const got = combine(tables);
    // The plain way: every x once, ascending; each column's value at an x is its last one there.
    const xs = [...new Set(tables.flatMap((t) => t[0]))].sort((a, b) => a - b);
    const want: (number | null)[][] = [];
    for (const [tx, ...cols] of tables) {
      for (const col of cols) {
        const at = new Map<number, number | null>();
        tx.forEach((x, i) => at.set(x, col[i] ?? null));
        want.push(xs.map((x) => (at.has(x) ? at.get(x)! : null)));
      }
    }
    const same = tables.every((t) => t[0].length === tables[0]![0].length && t[0].every((x, i) => x === tables[0]![0][i]));
    if (same && tables[0]![0].length !== new Set(tables[0]![0]).size) continue; // side by side keeps repeated x as they are
    expect(got).toEqual([xs, ...want]);
  }
});
