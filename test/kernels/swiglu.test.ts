// tv_swiglu_forward / tv_swiglu_backward on every ISA level: against the float64 reference
// (including gates far into both tails of the sigmoid), against finite differences, backward
// overwriting dinp (also in place, dinp = inp), bit-identical results for 1 and 2 threads, and
// refused sizes.
import { describe, expect, test } from "bun:test";
import * as native from "../../src/native.ts";
import * as ref from "./reference.ts";
import { RandomData } from "./random_data.ts";

// [N, H]: H = 1, not multiples of 16 or 8, and one row.
const SHAPES: [number, number][] = [[1, 1], [1, 3], [2, 15], [3, 17], [5, 31], [4, 64], [7, 100], [64, 300]];

function inputs(N: number, H: number, seed: number): Float32Array {
  const r = new RandomData(seed);
  const inp = r.floats(N * 2 * H, -6, 6);
  // Gate edge values: zero, tiny, and far into both tails of the sigmoid.
  const edges = [0, -0, 1e-30, -1e-30, 1e-4, -1e-4, 12, -12, 50, -50, 100, -100, 1e4, -1e4];
  let e = 0;
  for (let n = 0; n < N && e < edges.length; n++)
    for (let i = 0; i < H && e < edges.length; i += 2) inp[n * 2 * H + i] = edges[e++]!;
  return inp;
}

describe("swiglu", () => {
  test("forward and backward match the float64 reference on every ISA level", () => {
    ref.forEachIsa((isa) => {
      for (const [N, H] of SHAPES) {
        const label = `${isa} N=${N} H=${H}`;
        const inp = inputs(N, H, N * 100 + H);
        const out = new Float32Array(N * H);
        native.swigluForward(out, inp, N, H);
        const want = ref.swigluForward(inp, N, H);
        ref.within(ref.worst(out, want, 1e-7, 2e-6), `${label} out`);

        const dout = new RandomData(N + H).floats(N * H);
        const dinp = new Float32Array(N * 2 * H).fill(NaN); // overwritten: the old content must not leak in
        native.swigluBackward(dinp, inp, dout, N, H);
        const g = ref.swigluBackward(inp, dout, N, H);
        ref.within(ref.worst(dinp, g, 2e-7, 2e-6), `${label} dinp`);
        // In place (dinp = inp): the same bytes.
        const inPlace = inp.slice();
        native.swigluBackward(inPlace, inPlace, dout, N, H);
        expect(ref.sameBytes(inPlace, dinp), `${label} in place`).toBe(true);
      }
    });
  });

  test("backward matches finite differences of the reference forward", () => {
    ref.forEachIsa((isa) => {
      for (const [N, H] of [[1, 5], [3, 37]] as const) {
        const r = new RandomData(H + 7);
        const inp = r.floats(N * 2 * H, -5, 5), R = r.floats(N * H);
        const dinp = new Float32Array(N * 2 * H);
        native.swigluBackward(dinp, inp, R, N, H);
        const fd = ref.finiteDiff((v) => ref.swigluForward(v, N, H), inp, R, ref.sampleIndices(N * 2 * H, 60, () => r.next()));
        ref.within(ref.worstFd(dinp, fd, 1e-5, 1e-4), `${isa} N=${N} H=${H} dinp vs finite differences`);
      }
    });
  });

  test("1 and 2 threads give identical bytes", () => {
    ref.forEachIsa(() => {
      const [N, H] = [301, 173];
      const inp = inputs(N, H, 9), dout = new RandomData(10).floats(N * H);
      const go = () => {
        const out = new Float32Array(N * H), dinp = new Float32Array(N * 2 * H).fill(1);
        native.swigluForward(out, inp, N, H);
        native.swigluBackward(dinp, inp, dout, N, H);
        return [out, dinp];
      };
      const a = ref.withThreads(1, go), b = ref.withThreads(2, go);
      expect(ref.sameBytes(a[0]!, b[0]!)).toBe(true);
      expect(ref.sameBytes(a[1]!, b[1]!)).toBe(true);
    });
  });

  test("bad sizes and missing buffers are refused", () => {
    const f = new Float32Array(8);
    expect(() => native.swigluForward(f, f, 0, 2)).toThrow(RangeError);
    expect(() => native.swigluForward(f, f, 2, 3)).toThrow(RangeError); // inp needs 12
    expect(() => native.swigluBackward(f, f, f, 1, 5)).toThrow(RangeError); // dinp needs 10
    expect(() => native.swigluBackward(f, f, f, 2, 1.5)).toThrow(RangeError);
    const S = native.nativeSymbols;
    expect(S.tv_swiglu_forward(f, f, 2, 0)).toBe(-1);
    expect(S.tv_swiglu_forward(null, f, 2, 2)).toBe(-2);
    expect(S.tv_swiglu_backward(f, f, null, 2, 2)).toBe(-2);
    expect(S.tv_swiglu_backward(f, f, f, -2, 2)).toBe(-1);
  });
});
