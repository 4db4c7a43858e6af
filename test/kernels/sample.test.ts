// tv_argmax and tv_top_k_candidates (the sampler's passes over the logits) on every ISA level against
// the plain loops they replace: lengths below, at and past a vector, ties, ±0, infinities, NaNs
// anywhere, few distinct values, margins that take no neighbour, some or all; bad sizes refused.
import { describe, expect, test } from "bun:test";
import * as native from "../../src/native.ts";
import { RandomData } from "./random_data.ts";
import * as ref from "./reference.ts";

/** The reference arg-max: the first strict maximum of a scan from index 0. */
function plainArgmax(x: Float32Array, n: number): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (x[i]! > x[best]!) best = i;
  return best;
}

/** The reference k-th largest: a min-heap of the first k, each later value above the root replacing it. */
function plainKth(x: Float32Array, n: number, k: number): number {
  const heap = Array.from(x.subarray(0, k));
  const sift = (i: number) => {
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let w = i;
      if (l < k && heap[l]! < heap[w]!) w = l;
      if (r < k && heap[r]! < heap[w]!) w = r;
      if (w === i) return;
      [heap[i], heap[w]] = [heap[w]!, heap[i]!];
      i = w;
    }
  };
  for (let i = (k >> 1) - 1; i >= 0; i--) sift(i);
  for (let i = k; i < n; i++) if (x[i]! > heap[0]!) (heap[0] = x[i]!), sift(0);
  return heap[0]!;
}

function cases(): { label: string; x: Float32Array }[] {
  const r = new RandomData(7);
  const out: { label: string; x: Float32Array }[] = [];
  for (const n of [1, 2, 15, 16, 17, 31, 33, 100, 257, 8192, 8199]) {
    out.push({ label: `uniform n=${n}`, x: r.floats(n, -8, 8) });
    // Few distinct values: ties everywhere, the first of them must win.
    out.push({ label: `ties n=${n}`, x: Float32Array.from({ length: n }, () => Math.floor(r.uniform(0, 4))) });
    const signed = Float32Array.from({ length: n }, (_, i) => (i % 3 === 0 ? -0 : i % 3 === 1 ? 0 : -1));
    out.push({ label: `±0 n=${n}`, x: signed });
    const inf = r.floats(n);
    inf[Math.floor(n / 2)] = Infinity;
    if (n > 3) inf[n - 1] = Infinity;
    out.push({ label: `+inf n=${n}`, x: inf });
    out.push({ label: `-inf n=${n}`, x: new Float32Array(n).fill(-Infinity) });
    for (const at of [0, 1, Math.floor(n / 2), n - 1]) {
      const nan = r.floats(n);
      nan[at] = NaN;
      if (n > 20) nan[17] = NaN;
      out.push({ label: `NaN at ${at} n=${n}`, x: nan });
    }
    out.push({ label: `all NaN n=${n}`, x: new Float32Array(n).fill(NaN) });
    // Rising values: every value passes the heap's root, and the largest sit in the last group.
    out.push({ label: `rising n=${n}`, x: Float32Array.from({ length: n }, (_, i) => i * 0.25 - 7) });
  }
  return out;
}

describe("sampling passes", () => {
  test("argmax: the plain scan's index on every ISA level, for every prefix length asked", () => {
    ref.forEachIsa((isa) => {
      for (const { label, x } of cases())
        for (const n of new Set([x.length, Math.max(1, x.length - 1), Math.min(x.length, 16)])) {
          expect([isa, label, n, native.argmax(x, n)]).toEqual([isa, label, n, plainArgmax(x, n)]);
        }
    });
  });

  test("top_k_candidates: the heap's k-th largest and every index within the margin, ascending", () => {
    ref.forEachIsa((isa) => {
      for (const { label, x } of cases()) {
        const n = x.length;
        const hasNaN = x.some((v) => Number.isNaN(v));
        const ids = new Int32Array(n), heap = new Float32Array(n);
        for (const k of new Set([1, Math.min(2, n), Math.min(40, n), Math.min(128, n), Math.min(129, n), n])) {
          const kth = plainKth(x, n, k);
          for (const margin of [0, 1e-5, 0.5, 1e30]) {
            const got = native.topKCandidates(ids, heap, x, n, k, margin);
            const floor = kth - margin;
            const want: number[] = [];
            for (let i = 0; i < n; i++) if (x[i]! >= floor) want.push(i);
            const tag = `${isa} ${label} k=${k} margin=${margin}`;
            // Without NaNs the k-th largest value (a zero of either sign: the gathered heap may meet the
            // zeros in another order); with them, the full heap's very answer.
            const same = Number.isNaN(kth) ? Number.isNaN(got.kth) : hasNaN ? Object.is(got.kth, kth) : got.kth === kth;
            expect([tag, same]).toEqual([tag, true]);
            expect([tag, Array.from(ids.subarray(0, got.count))]).toEqual([tag, want]);
          }
        }
      }
    });
  });

  test("a margin that lands between two floats: the comparison is made in double, not in float", () => {
    // kth = 1 (k = 1) and floor = 1 − margin just above the float f = -0x1.93e594p+99, which rounding
    // floor to float would give: 16 values of f (a whole vector, so the vector path decides) must
    // stay out, and only x[0] = 1 is in.
    const f = -0x193e594 * 2 ** (99 - 24), margin = 0x193e5939a08cea * 2 ** (99 - 52); // -0x1.93e594p+99, 0x1.93e5939a08ceap+99
    const x = new Float32Array(33).fill(f);
    x[0] = 1;
    expect(Math.fround(f)).toBe(f);
    expect(1 - margin).toBeGreaterThan(f);
    expect(Math.fround(1 - margin)).toBe(f);
    ref.forEachIsa((isa) => {
      const ids = new Int32Array(x.length), heap = new Float32Array(1);
      const got = native.topKCandidates(ids, heap, x, x.length, 1, margin);
      expect([isa, got.kth, Array.from(ids.subarray(0, got.count))]).toEqual([isa, 1, [0]]);
    });
  });

  test("bad sizes are refused before any pointer crosses", () => {
    const x = new Float32Array(8), ids = new Int32Array(8), heap = new Float32Array(8);
    expect(() => native.argmax(x, 0)).toThrow(/n = 0/);
    expect(() => native.argmax(x, 9)).toThrow(/within 1..8/);
    expect(() => native.topKCandidates(ids, heap, x, 8, 9, 0)).toThrow(/k = 9/);
    expect(() => native.topKCandidates(ids, heap, x, 8, 0, 0)).toThrow(/k = 0/);
    expect(() => native.topKCandidates(new Int32Array(4), heap, x, 8, 2, 0)).toThrow(/ids holds 4/);
    expect(() => native.topKCandidates(ids, new Float32Array(1), x, 8, 2, 0)).toThrow(/heap holds 1/);
    expect(() => native.topKCandidates(ids, heap, x, 8, 2, -1)).toThrow(/bad sizes/);
  });
});
