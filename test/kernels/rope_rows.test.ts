// tv_rope_table / tv_rope_forward_rows (batched decode: one row per sequence, each at its own
// position) on every ISA level: the table is the float64 cos and sin rounded once, each turned row
// matches the float64 reference and has the bytes tv_rope_forward gives that row alone, the V block
// and the rows' padding are untouched, and bad positions or sizes are refused.
import { describe, expect, test } from "bun:test";
import * as native from "../../src/native.ts";
import * as ref from "./reference.ts";
import { RandomData } from "./random_data.ts";

// [C, NH]: head sizes 2, 10, 34 (not multiples of 16), 64, 1024 (the largest).
const SHAPES: [number, number][] = [[2, 1], [20, 2], [68, 2], [256, 4], [2048, 2]];
const THETAS = [10_000, 500_000];

describe("rope_forward_rows", () => {
  test("the table is the float64 cos and sin rounded once, the same floats on every ISA level", () => {
    const [P, hs, theta] = [300, 34, 10_000];
    const half = hs / 2;
    const tables: Float32Array[] = [];
    ref.forEachIsa(() => {
      const cos = new Float32Array(P * half), sin = new Float32Array(P * half);
      native.ropeTable(cos, sin, P, hs, theta);
      for (let p = 0; p < P; p++)
        for (let i = 0; i < half; i++) {
          const a = p * Math.pow(theta, (-2 * i) / hs);
          for (const [v, want] of [[cos[p * half + i]!, Math.cos(a)], [sin[p * half + i]!, Math.sin(a)]] as const) {
            // Within half a float ulp of the float64 value, i.e. its rounding (up to a tie of libms).
            const ulp = 2 ** (Math.floor(Math.log2(Math.max(Math.abs(want), 1e-30))) - 23);
            expect(Math.abs(v - want), `p=${p} i=${i}`).toBeLessThanOrEqual(0.5000001 * ulp);
          }
        }
      tables.push(cos, sin);
    });
    for (let i = 2; i < tables.length; i++) expect(ref.sameBytes(tables[i]!, tables[i % 2]!)).toBe(true);
  });

  test("each row: the float64 reference and the bytes of tv_rope_forward on that row alone, V and padding untouched", () => {
    ref.forEachIsa((isa) => {
      for (const [C, NH] of SHAPES)
        for (const theta of THETAS) {
          const hs = C / NH, half = hs / 2, P = 1200;
          const cos = new Float32Array(P * half), sin = new Float32Array(P * half);
          native.ropeTable(cos, sin, P, hs, theta);
          // Rows 3C + 5 apart (padding between them); positions first, last, repeated and unordered.
          const positions = Int32Array.of(0, P - 1, 17, 17, 1000, 1, 640);
          const B = positions.length, stride = 3 * C + 5;
          const qkv = new RandomData(C * 31 + theta).floats(B * stride);
          const got = qkv.slice();
          native.ropeForwardRows(got, cos, sin, positions, P, B, stride, C, NH);
          for (let b = 0; b < B; b++) {
            const label = `${isa} C=${C} NH=${NH} theta=${theta} row ${b} at ${positions[b]}`;
            const row = qkv.slice(b * stride, b * stride + 3 * C);
            ref.within(ref.worst(got.subarray(b * stride, b * stride + 3 * C), ref.rope(row, 1, 1, C, NH, positions[b]!, theta), 1e-6, 1e-5), label);
            const one = row.slice();
            native.ropeForward(one, 1, 1, C, NH, positions[b]!, theta);
            expect([label, ref.sameBytes(got.subarray(b * stride, b * stride + 3 * C), one)]).toEqual([label, true]);
            // V block and padding as they were.
            const rest = (a: Float32Array) => a.subarray(b * stride + 2 * C, (b + 1) * stride);
            expect([label, ref.sameBytes(rest(got), rest(qkv))]).toEqual([label, true]);
          }
        }
    });
  });

  test("refuses a position outside the table and bad sizes", () => {
    const [C, NH, P] = [8, 2, 4];
    const cos = new Float32Array(P * 2), sin = new Float32Array(P * 2), qkv = new Float32Array(2 * 3 * C);
    native.ropeTable(cos, sin, P, C / NH, 10_000);
    expect(() => native.ropeForwardRows(qkv, cos, sin, Int32Array.of(0, P), P, 2, 3 * C, C, NH)).toThrow();
    expect(() => native.ropeForwardRows(qkv, cos, sin, Int32Array.of(0, -1), P, 2, 3 * C, C, NH)).toThrow();
    // A head size that is odd, a query stride shorter than q and k, a table of zero positions.
    expect(() => native.ropeForwardRows(qkv, cos, sin, Int32Array.of(0, 1), P, 2, 3 * C, C, 8)).toThrow();
    expect(() => native.ropeForwardRows(qkv, cos, sin, Int32Array.of(0, 1), P, 2, 2 * C - 1, C, NH)).toThrow();
    expect(() => native.ropeTable(cos, sin, 0, 4, 10_000)).toThrow();
    expect(() => native.ropeTable(cos, sin, P, 3, 10_000)).toThrow();
    expect(() => native.ropeTable(cos, sin, P, 4, 0)).toThrow();
  });
});
