// tv_residual_forward on every ISA level: exact sums (one float add per element), in-place
// aliasing, 1 vs 2 threads, refused sizes.
import { describe, expect, test } from "bun:test";
import * as native from "../../src/native.ts";
import * as ref from "./reference.ts";
import { RandomData } from "./random_data.ts";

const SIZES = [1, 3, 17, 31, 1024, 1031, 70_001];

describe("residual", () => {
  test("forward is the float32 sum and may write over either input", () => {
    ref.forEachIsa((isa) => {
      for (const N of SIZES) {
        const r = new RandomData(N);
        const a = r.floats(N), b = r.floats(N);
        const want = Float32Array.from(ref.residualForward(a, b)); // one rounding: exact in float32
        const out = new Float32Array(N);
        native.residualForward(out, a, b, N);
        expect([isa, N, ref.sameBytes(out, want)]).toEqual([isa, N, true]);
        const a2 = a.slice();
        native.residualForward(a2, a2, b, N);
        expect(ref.sameBytes(a2, want)).toBe(true);
        const b2 = b.slice();
        native.residualForward(b2, a, b2, N);
        expect(ref.sameBytes(b2, want)).toBe(true);
      }
    });
  });

  test("1 and 2 threads give identical bytes", () => {
    const N = 200_003;
    const r = new RandomData(2);
    const a = r.floats(N), b = r.floats(N);
    const go = () => {
      const out = new Float32Array(N);
      native.residualForward(out, a, b, N);
      return out;
    };
    expect(ref.sameBytes(ref.withThreads(1, go), ref.withThreads(2, go))).toBe(true);
  });

  test("bad sizes and missing buffers are refused", () => {
    const f = new Float32Array(4);
    expect(() => native.residualForward(f, f, f, 0)).toThrow(RangeError);
    expect(() => native.residualForward(f, f, f, 5)).toThrow(RangeError);
    expect(native.nativeSymbols.tv_residual_forward(f, null, f, 4)).toBe(-2);
    expect(native.nativeSymbols.tv_residual_forward(f, f, f, -3)).toBe(-1);
  });
});
