/** Windows over documents: the per-document held-out split, pieces and id widths, and the window order. */
import { describe, expect, test } from "bun:test";
import { Xoshiro128 } from "../../src/base/rng.ts";
import { epochOrder, ORDER_ARRAY_LIMIT, PermutationOrder, splitPoint, TokenWindows, windowOrder, type IdArray } from "../../src/data/windows.ts";

/** The split of earlier versions, over one stream: the last windows held out. */
function oldSplit(n: number, T: number, frac: number): { count: number; valCount: number } {
  const count = n > T ? Math.floor((n - 1) / T) : 0;
  const valCount = frac > 0 && count >= 2 ? Math.min(count - 1, Math.max(1, Math.round(count * frac))) : 0;
  return { count, valCount };
}

function ids(n: number, seed: number, max = 1000): Uint32Array {
  const r = Xoshiro128.fromSeed(seed);
  return Uint32Array.from({ length: n }, () => r.below(max));
}

/** Every window (train then val) as [tokens, targets] arrays. */
function allWindows(w: TokenWindows): number[][] {
  const tokens = new Int32Array(w.T), targets = new Int32Array(w.T);
  const out: number[][] = [];
  for (let i = 0; i < w.count; i++) {
    w.fill([i], tokens, targets);
    out.push([...tokens, ...targets]);
  }
  return out;
}

/** Cut an array into pieces at seeded places. */
function pieces(a: Uint32Array, seed: number): IdArray[] {
  const r = Xoshiro128.fromSeed(seed);
  const out: IdArray[] = [];
  for (let at = 0; at < a.length;) {
    const len = 1 + r.below(Math.max(1, Math.min(40, a.length - at)));
    out.push(a.subarray(at, at + len));
    at += len;
  }
  return out;
}

describe("the held-out split", () => {
  test("one document: exactly the windows and split of the whole-stream rule of earlier versions", () => {
    for (const [n, T, frac] of [[101, 10, 0.2], [1000, 16, 0.05], [33, 16, 0.5], [17, 16, 0.05], [5000, 7, 0.1], [400, 16, 0], [64, 16, 0.3]] as const) {
      const a = ids(n, n + T);
      const old = oldSplit(n, T, frac);
      const w = new TokenWindows(a, T, frac);
      expect([w.count, w.valCount]).toEqual([old.count, old.valCount]);
      // Window i is ids[i·T … i·T+T], whichever side it falls on.
      const got = allWindows(w);
      got.forEach((win, i) => expect(win).toEqual([...a.subarray(i * T, i * T + T), ...a.subarray(i * T + 1, i * T + T + 1)]));
    }
  });

  test("too little data for one window is the clear error it always was", () => {
    expect(() => new TokenWindows(ids(10, 1), 10, 0)).toThrow(/--data holds 10 tokens, too few for one window of --max-length 10/);
    expect(() => new TokenWindows({ documents: [[ids(3, 1)], [ids(4, 2)]], endOfText: 999 }, 10, 0.1)).toThrow(/too few for one window/);
  });

  test("documents joined by end-of-text with no held-out share: the old single stream, window for window", () => {
    const docs = [ids(50, 1), ids(0, 2), ids(73, 3), ids(5, 4)];
    const joined = Uint32Array.from([...docs[0]!, 999, 999, ...docs[2]!, 999, ...docs[3]!]);
    const one = new TokenWindows(joined, 8, 0);
    const many = new TokenWindows({ documents: docs.map((d) => [d]), endOfText: 999 }, 8, 0);
    expect(allWindows(many)).toEqual(allWindows(one));
  });

  test("adding documents never moves ids between training and validation", () => {
    const T = 8, frac = 0.1;
    const docs = [ids(500, 1), ids(12, 2), ids(90, 3), ids(3, 4), ids(2000, 5)];
    const valStream = (w: TokenWindows) => allWindows(w).slice(w.trainCount).map((win) => win.slice(0, T));
    const before = new TokenWindows({ documents: docs.slice(0, 3).map((d) => [d]), endOfText: 999 }, T, frac);
    const after = new TokenWindows({ documents: docs.map((d) => [d]), endOfText: 999 }, T, frac);
    // Documents added at the end: the held-out windows before are the first ones after, unchanged.
    expect(valStream(after).slice(0, before.valCount)).toEqual(valStream(before));
    // Each document's split depends on its own length only.
    for (const d of docs) {
      const s = splitPoint(d.length, T, frac);
      expect(s).toBeGreaterThanOrEqual(0);
      expect(s).toBeLessThanOrEqual(d.length);
    }
    expect(before.valCount).toBeGreaterThan(0);
  });

  test("a document in pieces, or in 2-byte ids, gives the same windows as one 4-byte array", () => {
    const docs = [ids(300, 7), ids(41, 8), ids(9, 9)];
    const whole = new TokenWindows({ documents: docs.map((d) => [d]), endOfText: 999 }, 10, 0.2);
    const cut = new TokenWindows({ documents: docs.map((d, i) => pieces(d, i)), endOfText: 999 }, 10, 0.2);
    const narrow = new TokenWindows({ documents: docs.map((d, i) => pieces(d, 10 + i).map((p) => Uint16Array.from(p))), endOfText: 999 }, 10, 0.2);
    const want = allWindows(whole);
    expect(want.length).toBeGreaterThan(20);
    expect(allWindows(cut)).toEqual(want);
    expect(allWindows(narrow)).toEqual(want);
  });
});

describe("the window order", () => {
  test("up to the limit, the Fisher–Yates order of earlier versions", () => {
    for (const n of [1, 2, 17, 1000]) {
      const o = windowOrder(n, Xoshiro128.derive(3, n));
      expect(Array.from(o.range(0, n))).toEqual(Array.from(epochOrder(n, Xoshiro128.derive(3, n))));
    }
  });

  test("the permutation is a bijection of 0 … n−1 for every n, seeded, and differs between epochs", () => {
    for (let n = 1; n <= 300; n++) {
      const p = new PermutationOrder(n, Xoshiro128.derive(1, n));
      const seen = new Uint8Array(n);
      for (let i = 0; i < n; i++) seen[p.at(i)]++;
      expect(seen.every((c) => c === 1)).toBe(true);
    }
    const n = ORDER_ARRAY_LIMIT + 12345;
    const o = windowOrder(n, Xoshiro128.derive(7, 0));
    expect(o).toBeInstanceOf(PermutationOrder);
    const seen = new Uint8Array(n);
    for (let first = 0; first < n; first += 4096) for (const w of o.range(first, Math.min(n, first + 4096))) seen[w]++;
    expect(seen.every((c) => c === 1)).toBe(true);
    const again = windowOrder(n, Xoshiro128.derive(7, 0));
    const other = windowOrder(n, Xoshiro128.derive(7, 1));
    expect(Array.from(again.range(1000, 1100))).toEqual(Array.from(o.range(1000, 1100)));
    expect(Array.from(other.range(1000, 1100))).not.toEqual(Array.from(o.range(1000, 1100)));
  });

  test("the permutation shuffles: neighbours scatter and no position is favoured", () => {
    const n = 100_000;
    const p = new PermutationOrder(n, Xoshiro128.derive(11, 0));
    let fixed = 0, adjacent = 0;
    const buckets = new Array(10).fill(0);
    for (let i = 0; i < n; i++) {
      const w = p.at(i);
      if (w === i) fixed++;
      if (i > 0 && Math.abs(w - p.at(i - 1)) === 1) adjacent++;
      if (i < n / 10) buckets[Math.floor((w * 10) / n)]++;
    }
    // A random permutation has about one fixed point and two adjacent pairs; the first tenth of the
    // epoch draws about a tenth of it from each tenth of the data.
    expect(fixed).toBeLessThan(10);
    expect(adjacent).toBeLessThan(20);
    for (const b of buckets) expect(Math.abs(b - n / 100)).toBeLessThan(n / 100 / 5);
  });
});
