// tv_axpby on every ISA level: a·x + b·y against float64 (one product may be fused, so a few ulp of
// the terms), in-place aliasing, 1 vs 2 threads, refused sizes.
import { describe, expect, test } from "bun:test";
import * as native from "../../src/native.ts";
import * as ref from "./reference.ts";
import { RandomData } from "./random_data.ts";

const SIZES = [1, 3, 17, 31, 1024, 1031, 70_001];
const COEFFS: [number, number][] = [[0.95, 1], [3.4445, -4.775], [1 - 1e-5, -2e-4], [0.5, 0]];

/** float64 a·x + b·y, and the size of the terms (the scale of float32 rounding). */
function reference(x: Float32Array, y: Float32Array, a: number, b: number) {
  const fa = Math.fround(a), fb = Math.fround(b);
  const want = new Float64Array(x.length), terms = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    want[i] = fa * x[i]! + fb * y[i]!;
    terms[i] = Math.abs(fa * x[i]!) + Math.abs(fb * y[i]!);
  }
  return { want, terms };
}

function check(got: Float32Array, want: Float64Array, terms: Float64Array, label: string): void {
  let w = 0;
  for (let i = 0; i < want.length; i++) w = Math.max(w, Math.abs(got[i]! - want[i]!) / (1e-30 + 3 * 2 ** -24 * terms[i]!));
  ref.within(w, label);
}

describe("axpby", () => {
  test("a·x + b·y matches float64 and may write over either input", () => {
    ref.forEachIsa((isa) => {
      for (const N of SIZES) {
        for (const [a, b] of COEFFS) {
          const r = new RandomData(N);
          const x = r.floats(N), y = r.floats(N, -5, 5);
          const { want, terms } = reference(x, y, a, b);
          const out = new Float32Array(N);
          native.axpby(out, x, y, N, a, b);
          check(out, want, terms, `${isa} N=${N} a=${a} b=${b}`);
          const x2 = x.slice();
          native.axpby(x2, x2, y, N, a, b);
          expect(ref.sameBytes(x2, out)).toBe(true);
          const y2 = y.slice();
          native.axpby(y2, x, y2, N, a, b);
          expect(ref.sameBytes(y2, out)).toBe(true);
        }
      }
    });
  });

  test("1 and 2 threads give identical bytes", () => {
    const N = 200_003;
    const r = new RandomData(2);
    const x = r.floats(N), y = r.floats(N);
    const go = () => {
      const out = new Float32Array(N);
      native.axpby(out, x, y, N, 0.95, -1.5);
      return out;
    };
    expect(ref.sameBytes(ref.withThreads(1, go), ref.withThreads(2, go))).toBe(true);
  });

  test("bad sizes and missing buffers are refused", () => {
    const f = new Float32Array(4);
    expect(() => native.axpby(f, f, f, 0, 1, 1)).toThrow(RangeError);
    expect(() => native.axpby(f, f, f, 5, 1, 1)).toThrow(RangeError);
    expect(native.nativeSymbols.tv_axpby(f, null, f, 4, 1, 1)).toBe(-2);
    expect(native.nativeSymbols.tv_axpby(f, f, f, -3, 1, 1)).toBe(-1);
  });
});
