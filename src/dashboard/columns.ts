/**
 * The page's series on one shared x, as uPlot draws them: a table is [x, ...columns] with x ascending
 * and null where a column has no value. Pure functions (no DOM), so they are tested apart from the page.
 */

export type Column = (number | null)[];
export type Table = [number[], ...Column[]];

/** x and y columns as a table: points without an x (old logs have no time) dropped, x ascending. */
export function table(xs: (number | null)[], ys: Column[]): Table | null {
  let clean = xs.length > 0;
  for (let i = 0; clean && i < xs.length; i++) if (xs[i] == null || (i > 0 && xs[i]! < xs[i - 1]!)) clean = false;
  // The usual case, a run's steps in order: the columns as they are, no copy.
  if (clean) return [xs as number[], ...ys];
  const idx: number[] = [];
  for (let i = 0; i < xs.length; i++) if (xs[i] != null) idx.push(i);
  if (idx.length === 0) return null;
  idx.sort((a, b) => xs[a]! - xs[b]! || a - b);
  return [idx.map((i) => xs[i]!), ...ys.map((y) => idx.map((i) => y[i] ?? null))];
}

/**
 * Tables on one x: side by side when they have the same x values (runs over the same steps), else on
 * the union of their x values (a merge, and a walk per column), null where a table has no point. A
 * table with one x twice keeps its later value there.
 */
export function combine(tables: Table[]): Table {
  if (tables.length === 1) return tables[0]!;
  const first = tables[0]![0];
  const same = tables.every(([tx]) => {
    if (tx.length !== first.length) return false;
    for (let i = 0; i < tx.length; i++) if (tx[i] !== first[i]) return false;
    return true;
  });
  if (same) return [first, ...tables.flatMap((t) => t.slice(1) as Column[])];
  let x = first;
  for (const [tx] of tables.slice(1)) x = mergeAscending(x, tx);
  const out: Column[] = [];
  for (const [tx, ...cols] of tables) {
    for (const col of cols) {
      const aligned: Column = new Array(x.length).fill(null);
      for (let i = 0, j = 0; i < tx.length; i++) {
        while (x[j]! < tx[i]!) j++;
        aligned[j] = col[i] ?? null;
      }
      out.push(aligned);
    }
  }
  return [x, ...out];
}

/** The union of two ascending arrays, ascending, each value once. */
export function mergeAscending(a: number[], b: number[]): number[] {
  const out: number[] = [];
  let i = 0, j = 0;
  while (i < a.length || j < b.length) {
    const v = j >= b.length || (i < a.length && a[i]! <= b[j]!) ? a[i]! : b[j]!;
    if (out.length === 0 || out[out.length - 1] !== v) out.push(v);
    if (i < a.length && a[i] === v) i++;
    else j++;
  }
  return out;
}

/** `ys` at `xs` as a column over `onto` (both ascending), null between; null when some x is not in `onto`. */
export function alignTo(onto: number[], xs: number[], ys: Column): Column | null {
  const out: Column = new Array(onto.length).fill(null);
  let j = 0;
  for (let i = 0; i < xs.length; i++) {
    while (j < onto.length && onto[j]! < xs[i]!) j++;
    if (j === onto.length || onto[j] !== xs[i]) return null;
    // A later line at the same x (validation after a resume) wins, as it would on a re-read.
    out[j] = ys[i] ?? null;
  }
  return out;
}
