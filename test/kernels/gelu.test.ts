// tv_gelu_forward / tv_gelu_backward on every ISA level: against the float64 tanh-approximation
// reference (including large |x| where tanh saturates), against finite differences, backward
// overwriting dinp (also in place, dinp = dout), bit-identical results for 1 and 2 threads, and
// refused sizes.
import { describe, expect, test } from "bun:test";
import * as native from "../../src/native.ts";
import * as ref from "./reference.ts";
import { RandomData } from "./random_data.ts";

const SIZES = [1, 3, 15, 17, 31, 64, 1000, 40_003];

function inputs(N: number, seed: number): Float32Array {
  const r = new RandomData(seed);
  const x = r.floats(N, -6, 6);
  // Edge values: zero, tiny, and far into both saturated tails.
  const edges = [0, -0, 1e-30, -1e-30, 1e-4, -1e-4, 12, -12, 50, -50, 1e4, -1e4];
  for (let i = 0; i < Math.min(N, edges.length); i++) x[(i * 7) % N] = edges[i]!;
  return x;
}

describe("gelu", () => {
  test("forward and backward match the float64 reference on every ISA level", () => {
    ref.forEachIsa((isa) => {
      for (const N of SIZES) {
        const label = `${isa} N=${N}`;
        const x = inputs(N, N);
        const out = new Float32Array(N);
        native.geluForward(out, x, N);
        ref.within(ref.worst(out, ref.geluForward(x), 1e-7, 2e-6), `${label} out`);

        const r = new RandomData(N + 1);
        const dout = r.floats(N);
        const dinp = new Float32Array(N).fill(NaN); // overwritten: the old content must not leak in
        native.geluBackward(dinp, x, dout, N);
        const want = Float64Array.from(x, (v, i) => ref.geluGrad(v) * dout[i]!);
        ref.within(ref.worst(dinp, want, 2e-7, 2e-6), `${label} dinp`);
        // In place (dinp = dout), as the model calls it: the same bytes.
        const inPlace = dout.slice();
        native.geluBackward(inPlace, x, inPlace, N);
        expect(ref.sameBytes(inPlace, dinp)).toBe(true);
      }
    });
  });

  test("backward matches finite differences of the reference forward", () => {
    ref.forEachIsa((isa) => {
      const N = 200;
      const x = inputs(N, 77), R = new RandomData(78).floats(N), pick = new RandomData(79);
      const dinp = new Float32Array(N);
      native.geluBackward(dinp, x, R, N);
      const fd = ref.finiteDiff((v) => ref.geluForward(v), x, R, ref.sampleIndices(N, 60, () => pick.next()));
      ref.within(ref.worstFd(dinp, fd, 1e-5, 1e-4), `${isa} dinp vs finite differences`);
    });
  });

  test("1 and 2 threads give identical bytes", () => {
    ref.forEachIsa(() => {
      const N = 100_001;
      const x = inputs(N, 9), dout = new RandomData(10).floats(N);
      const go = () => {
        const out = new Float32Array(N), dinp = new Float32Array(N).fill(1);
        native.geluForward(out, x, N);
        native.geluBackward(dinp, x, dout, N);
        return [out, dinp];
      };
      const a = ref.withThreads(1, go), b = ref.withThreads(2, go);
      expect(ref.sameBytes(a[0]!, b[0]!)).toBe(true);
      expect(ref.sameBytes(a[1]!, b[1]!)).toBe(true);
    });
  });

  test("bad sizes and missing buffers are refused", () => {
    const f = new Float32Array(8);
    expect(() => native.geluForward(f, f, 0)).toThrow(RangeError);
    expect(() => native.geluForward(f, f, 9)).toThrow(RangeError);
    expect(() => native.geluBackward(f, f, f, -1)).toThrow(RangeError);
    expect(native.nativeSymbols.tv_gelu_forward(f, f, 0)).toBe(-1);
    expect(native.nativeSymbols.tv_gelu_backward(f, null, f, 8)).toBe(-2);
  });
});
