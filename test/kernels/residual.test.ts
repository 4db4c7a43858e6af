// tv_residual_forward / tv_residual_backward on every ISA level: exact sums (one float add per
// element), in-place aliasing, the += and NULL-skipping contract, 1 vs 2 threads, refused sizes.
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

  test("backward adds dout to both gradients and skips NULL ones", () => {
    ref.forEachIsa(() => {
      for (const N of SIZES) {
        const r = new RandomData(N + 5);
        const dout = r.floats(N), baseA = r.floats(N), baseB = r.floats(N);
        const want = (base: Float32Array) => Float32Array.from(base, (v, i) => v + dout[i]!);
        const da = baseA.slice(), db = baseB.slice();
        native.residualBackward(da, db, dout, N);
        expect(ref.sameBytes(da, want(baseA))).toBe(true);
        expect(ref.sameBytes(db, want(baseB))).toBe(true);
        const da2 = baseA.slice();
        native.residualBackward(da2, null, dout, N);
        expect(ref.sameBytes(da2, want(baseA))).toBe(true);
        const db2 = baseB.slice();
        native.residualBackward(null, db2, dout, N);
        expect(ref.sameBytes(db2, want(baseB))).toBe(true);
        native.residualBackward(null, null, dout, N); // nothing to do, not an error
      }
    });
  });

  test("the gradient matches finite differences of the reference forward", () => {
    const N = 40;
    const r = new RandomData(1);
    const a = r.floats(N), b = r.floats(N), R = r.floats(N);
    const da = new Float32Array(N), db = new Float32Array(N);
    native.residualBackward(da, db, R, N);
    const idx = ref.sampleIndices(N, N, () => 0);
    ref.within(ref.worstFd(da, ref.finiteDiff((x) => ref.residualForward(x, b), a, R, idx), 1e-7, 1e-6), "da");
    ref.within(ref.worstFd(db, ref.finiteDiff((x) => ref.residualForward(a, x), b, R, idx), 1e-7, 1e-6), "db");
  });

  test("1 and 2 threads give identical bytes", () => {
    const N = 200_003;
    const r = new RandomData(2);
    const a = r.floats(N), b = r.floats(N), dout = r.floats(N);
    const go = () => {
      const out = new Float32Array(N), da = a.slice(), db = b.slice();
      native.residualForward(out, a, b, N);
      native.residualBackward(da, db, dout, N);
      return [out, da, db];
    };
    const x = ref.withThreads(1, go), y = ref.withThreads(2, go);
    for (let i = 0; i < x.length; i++) expect(ref.sameBytes(x[i]!, y[i]!)).toBe(true);
  });

  test("bad sizes and missing buffers are refused", () => {
    const f = new Float32Array(4);
    expect(() => native.residualForward(f, f, f, 0)).toThrow(RangeError);
    expect(() => native.residualForward(f, f, f, 5)).toThrow(RangeError);
    expect(() => native.residualBackward(f, f, f, 5)).toThrow(RangeError);
    expect(native.nativeSymbols.tv_residual_forward(f, null, f, 4)).toBe(-2);
    expect(native.nativeSymbols.tv_residual_backward(f, f, null, 4)).toBe(-2);
    expect(native.nativeSymbols.tv_residual_backward(f, f, f, -3)).toBe(-1);
  });
});
