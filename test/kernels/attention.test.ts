// tv_attention_forward / tv_attention_backward on every ISA level: against the float64 reference
// that materializes the full T×T matrices (dqkv prefilled with NaN: it is overwritten), against
// finite differences of that forward, bit-identical results for 1 and 2 threads, and refused sizes. Shapes cover T = 1,
// odd T, T across several tiles, head sizes that are not a multiple of 16, the untiled path
// for head sizes above 256, and a head too long for the backward's per-head dq accumulator.
import { describe, expect, test } from "bun:test";
import * as native from "../../src/native.ts";
import * as ref from "./reference.ts";
import { RandomData } from "./random_data.ts";

// [B, T, C, H]
const SHAPES: [number, number, number, number][] = [
  [1, 1, 4, 1], [2, 3, 6, 2], [1, 17, 34, 2], [2, 31, 12, 3], [1, 67, 64, 1], [2, 70, 96, 3],
  [1, 130, 32, 2], [1, 40, 1, 1], [1, 20, 520, 2], [1, 33, 200, 1], [1, 200, 128, 2],
  // T·hs too large for the backward's per-head dq accumulator: dq goes to dqkv block by block.
  [1, 300, 256, 1],
];

function run(qkv: Float32Array, B: number, T: number, C: number, H: number) {
  const out = new Float32Array(B * T * C), lse = new Float32Array(B * H * T);
  native.attentionForward(out, lse, qkv, B, T, C, H);
  return { out, lse };
}

describe("attention", () => {
  test("forward and backward match the float64 reference on every ISA level", () => {
    ref.forEachIsa((isa) => {
      for (const [B, T, C, H] of SHAPES) {
        const label = `${isa} B=${B} T=${T} C=${C} H=${H}`;
        const r = new RandomData(B * 7919 + T * 31 + C);
        const qkv = r.floats(B * T * 3 * C, -1.5, 1.5);
        const { out, lse } = run(qkv, B, T, C, H);
        const want = ref.attentionForward(qkv, B, T, C, H);
        ref.within(ref.worst(out, want.out, 2e-6, 1e-4), `${label} out`);
        ref.within(ref.worst(lse, want.lse, 2e-6, 1e-5), `${label} lse`);

        const dout = r.floats(B * T * C);
        const dqkv = new Float32Array(B * T * 3 * C).fill(NaN); // overwritten: nothing old may leak in
        native.attentionBackward(dqkv, dout, qkv, out, lse, B, T, C, H);
        const g = ref.attentionBackward(dout, qkv, B, T, C, H);
        ref.within(ref.worst(dqkv, g, 2e-5 * (1 + ref.maxAbs(g)), 2e-4), `${label} dqkv`);
      }
    });
  });

  test("backward matches finite differences of the reference forward (loss = Σ out·R)", () => {
    ref.forEachIsa((isa) => {
      for (const [B, T, C, H] of [[1, 5, 6, 2], [2, 19, 12, 3], [1, 70, 16, 1]] as const) {
        const label = `${isa} B=${B} T=${T} C=${C} H=${H}`;
        const r = new RandomData(T * 13 + C);
        const qkv = r.floats(B * T * 3 * C, -1, 1);
        const R = r.floats(B * T * C);
        const { out, lse } = run(qkv, B, T, C, H);
        const dqkv = new Float32Array(B * T * 3 * C);
        native.attentionBackward(dqkv, R, qkv, out, lse, B, T, C, H);
        const fd = ref.finiteDiff((x) => ref.attentionForward(x, B, T, C, H).out, qkv, R,
          ref.sampleIndices(B * T * 3 * C, 40, () => r.next()));
        ref.within(ref.worstFd(dqkv, fd, 1e-4, 1e-3), `${label} dqkv vs finite differences`);
      }
    });
  });

  test("a large score range stays finite (the online softmax rescales)", () => {
    ref.forEachIsa((isa) => {
      const [B, T, C, H] = [1, 100, 16, 2];
      const r = new RandomData(3);
      const qkv = ref.risingScoreQkv(T, C, r);
      const { out, lse } = run(qkv, B, T, C, H);
      const want = ref.attentionForward(qkv, B, T, C, H);
      ref.within(ref.worst(out, want.out, 1e-5, 1e-4), `${isa} out`);
      ref.within(ref.worst(lse, want.lse, 1e-5, 1e-5), `${isa} lse`);
      const dout = r.floats(B * T * C), dqkv = new Float32Array(B * T * 3 * C);
      native.attentionBackward(dqkv, dout, qkv, out, lse, B, T, C, H);
      const g = ref.attentionBackward(dout, qkv, B, T, C, H);
      ref.within(ref.worst(dqkv, g, 1e-4 * (1 + ref.maxAbs(g)), 1e-3), `${isa} dqkv`);
    });
  });

  test("whole-head work items (at least 8 heads per thread), with and without the per-head copies", () => {
    // One thread, so that 8 (b, h) pairs already take the whole-head path: (2, 70, 96, 4) copies its
    // heads (head size 24, not a multiple of 16); (1, 170, 1600, 8) has heads too large to copy.
    ref.forEachIsa((isa) => {
      for (const [B, T, C, H] of [[2, 70, 96, 4], [1, 170, 1600, 8]] as const) {
        const label = `${isa} B=${B} T=${T} C=${C} H=${H}`;
        const r = new RandomData(T * 7 + C);
        const qkv = r.floats(B * T * 3 * C, -1, 1), dout = r.floats(B * T * C);
        const got = ref.withThreads(1, () => {
          const { out, lse } = run(qkv, B, T, C, H);
          const dqkv = new Float32Array(B * T * 3 * C).fill(NaN);
          native.attentionBackward(dqkv, dout, qkv, out, lse, B, T, C, H);
          return { out, lse, dqkv };
        });
        const want = ref.attentionForward(qkv, B, T, C, H);
        ref.within(ref.worst(got.out, want.out, 2e-6, 1e-4), `${label} out`);
        ref.within(ref.worst(got.lse, want.lse, 2e-6, 1e-5), `${label} lse`);
        const g = ref.attentionBackward(dout, qkv, B, T, C, H);
        ref.within(ref.worst(got.dqkv, g, 2e-5 * (1 + ref.maxAbs(g)), 2e-4), `${label} dqkv`);
      }
    });
  });

  test("1 and 2 threads give identical bytes", () => {
    ref.forEachIsa(() => {
      for (const [B, T, C, H] of [[2, 150, 64, 4], [1, 97, 40, 1], [1, 9, 600, 2]] as const) {
        const r = new RandomData(11);
        const qkv = r.floats(B * T * 3 * C), dout = r.floats(B * T * C);
        const go = () => {
          const { out, lse } = run(qkv, B, T, C, H);
          const dqkv = new Float32Array(B * T * 3 * C).fill(0.5);
          native.attentionBackward(dqkv, dout, qkv, out, lse, B, T, C, H);
          return [out, lse, dqkv];
        };
        const a = ref.withThreads(1, go), b = ref.withThreads(2, go);
        for (let i = 0; i < a.length; i++) expect(ref.sameBytes(a[i]!, b[i]!)).toBe(true);
      }
    });
  });

  test("bad sizes are refused", () => {
    const f = new Float32Array(1024);
    expect(() => native.attentionForward(f, f, f, 1, 4, 8, 3)).toThrow(native.NativeError);
    expect(() => native.attentionForward(f, f, f, 0, 4, 8, 2)).toThrow(RangeError);
    expect(() => native.attentionForward(f, f, f, 2, 64, 8, 2)).toThrow(RangeError);
    expect(() => native.attentionBackward(f, f, f, f, f, 1, 4, 9, 2)).toThrow(/bad sizes/);
    expect(native.nativeSymbols.tv_attention_backward(f, f, null, f, f, 1, 4, 8, 2)).toBe(-2);
  });
});
