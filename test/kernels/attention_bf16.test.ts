// tv_attention_forward_bf16 / tv_attention_backward_bf16: the products on bf16 operands (rounded to
// nearest even), fp32 accumulation and softmax. Against the float64 reference (every operand of a
// product is off by at most 2⁻⁹ relative, so out and dqkv by about that much of their largest
// values; the test allows 5e-3 of the largest value, a dropped key or two per block is caught), against finite differences of that reference, the rounding actually taking
// place (the bytes differ from fp32's, by an RMS error near 2⁻⁹), bit-identical results for 1 and 2
// threads, and the fallback: without BF16, or at a lower ISA level, the fp32 kernels' bytes.
import { describe, expect, test } from "bun:test";
import * as native from "../../src/native.ts";
import * as ref from "./reference.ts";
import { RandomData } from "./random_data.ts";

// [B, T, C, H]: T = 1, odd T, several tiles, head sizes 3, 8 (pairs not a multiple of 16), 17,
// 24, 32, 64, 80 and 128 (narrower tiles: 48 and 32 rows), 200 (its pairs transposed element by
// element), the untiled path (head size 260, fp32 products), whole-head items with per-head copies
// (B·H ≥ 16 on two threads) and heads too long to copy (forward and backward).
const SHAPES: [number, number, number, number][] = [
  [1, 1, 16, 2], [2, 3, 6, 2], [1, 17, 34, 2], [2, 70, 96, 3], [1, 130, 32, 2], [4, 65, 128, 4],
  [2, 100, 160, 2], [1, 130, 256, 2], [4, 64, 512, 4], [1, 33, 200, 1], [1, 9, 520, 2],
  [1, 300, 256, 1], [1, 600, 64, 1],
];
/** Within 5e-3 of the largest |value| (a bf16 rounding of each operand moves results by ~2e-3 of it). */
const close = (got: Float32Array, want: ArrayLike<number>, label: string) =>
  ref.within(ref.worst(got, want as Float64Array, 5e-3 * ref.maxAbs(want as Float64Array), 0), label);

function forward(bf16: boolean, qkv: Float32Array, B: number, T: number, C: number, H: number) {
  const out = new Float32Array(B * T * C), lse = new Float32Array(B * H * T);
  (bf16 ? native.attentionForwardBf16 : native.attentionForward)(out, lse, qkv, B, T, C, H);
  return { out, lse };
}
function backward(bf16: boolean, dout: Float32Array, qkv: Float32Array, out: Float32Array, lse: Float32Array,
  B: number, T: number, C: number, H: number): Float32Array {
  const dqkv = new Float32Array(B * T * 3 * C).fill(NaN); // overwritten: nothing old may leak in
  (bf16 ? native.attentionBackwardBf16 : native.attentionBackward)(dqkv, dout, qkv, out, lse, B, T, C, H);
  return dqkv;
}
function rmsRel(got: Float32Array, want: Float32Array): number {
  let num = 0, den = 0;
  for (let i = 0; i < want.length; i++) num += (got[i]! - want[i]!) ** 2, den += want[i]! ** 2;
  return Math.sqrt(num / den);
}

describe("attention bf16", () => {
  const bf16Level = native.hasBf16() ? native.isaCurrent() : null;

  if (bf16Level) {
    test("forward and backward match the float64 reference within bf16 rounding", () => {
      for (const [B, T, C, H] of SHAPES) {
        const label = `B=${B} T=${T} C=${C} H=${H}`;
        const r = new RandomData(B * 7919 + T * 31 + C);
        const qkv = r.floats(B * T * 3 * C, -1.5, 1.5), dout = r.floats(B * T * C);
        const { out, lse } = forward(true, qkv, B, T, C, H);
        const want = ref.attentionForward(qkv, B, T, C, H);
        close(out, want.out, `${label} out`);
        ref.within(ref.worst(lse, want.lse, 1e-2, 1e-3), `${label} lse`);
        const dqkv = backward(true, dout, qkv, out, lse, B, T, C, H);
        close(dqkv, ref.attentionBackward(dout, qkv, B, T, C, H), `${label} dqkv`);
      }
    });

    test("the operands are rounded: bytes differ from fp32 by an RMS error near 2⁻⁹", () => {
      const [B, T, C, H] = [2, 150, 128, 2];
      const r = new RandomData(5);
      const qkv = r.floats(B * T * 3 * C, -1.5, 1.5), dout = r.floats(B * T * C);
      const f32 = forward(false, qkv, B, T, C, H), b16 = forward(true, qkv, B, T, C, H);
      const eOut = rmsRel(b16.out, f32.out);
      expect(eOut).toBeGreaterThan(2e-4);
      expect(eOut).toBeLessThan(6e-3);
      const g32 = backward(false, dout, qkv, f32.out, f32.lse, B, T, C, H);
      const g16 = backward(true, dout, qkv, f32.out, f32.lse, B, T, C, H);
      const eGrad = rmsRel(g16, g32);
      expect(eGrad).toBeGreaterThan(2e-4);
      expect(eGrad).toBeLessThan(6e-3);
    });

    test("backward matches finite differences of the reference forward (loss = Σ out·R)", () => {
      for (const [B, T, C, H] of [[1, 5, 6, 2], [2, 19, 32, 2], [1, 70, 16, 1]] as const) {
        const label = `B=${B} T=${T} C=${C} H=${H}`;
        const r = new RandomData(T * 13 + C);
        const qkv = r.floats(B * T * 3 * C, -1, 1), R = r.floats(B * T * C);
        const { out, lse } = forward(true, qkv, B, T, C, H);
        const dqkv = backward(true, R, qkv, out, lse, B, T, C, H);
        const fd = ref.finiteDiff((x) => ref.attentionForward(x, B, T, C, H).out, qkv, R,
          ref.sampleIndices(B * T * 3 * C, 40, () => r.next()));
        ref.within(ref.worstFd(dqkv, fd, 1e-2, 2e-2), `${label} dqkv vs finite differences`);
      }
    });

    test("a large score range stays finite (the online softmax rescales)", () => {
      const [B, T, C, H] = [1, 100, 32, 2];
      const r = new RandomData(3);
      const qkv = ref.risingScoreQkv(T, C, r);
      const { out, lse } = forward(true, qkv, B, T, C, H);
      const want = ref.attentionForward(qkv, B, T, C, H);
      ref.within(ref.worst(out, want.out, 1e-2, 1e-2), "out");
      ref.within(ref.worst(lse, want.lse, 1e-2, 1e-2), "lse");
      const dout = r.floats(B * T * C);
      const dqkv = backward(true, dout, qkv, out, lse, B, T, C, H);
      const g = ref.attentionBackward(dout, qkv, B, T, C, H);
      ref.within(ref.worst(dqkv, g, 2e-2 * (1 + ref.maxAbs(g)), 2e-2), "dqkv");
    });

    test("whole-head items on one thread, with and without the per-head copies", () => {
      for (const [B, T, C, H] of [[2, 70, 96, 4], [1, 170, 1600, 8]] as const) {
        const label = `B=${B} T=${T} C=${C} H=${H}`;
        const r = new RandomData(T * 7 + C);
        const qkv = r.floats(B * T * 3 * C, -1, 1), dout = r.floats(B * T * C);
        const got = ref.withThreads(1, () => {
          const { out, lse } = forward(true, qkv, B, T, C, H);
          return { out, lse, dqkv: backward(true, dout, qkv, out, lse, B, T, C, H) };
        });
        close(got.out, ref.attentionForward(qkv, B, T, C, H).out, `${label} out`);
        close(got.dqkv, ref.attentionBackward(dout, qkv, B, T, C, H), `${label} dqkv`);
      }
    });

    test("1 and 2 threads give identical bytes", () => {
      for (const [B, T, C, H] of [[2, 150, 64, 4], [1, 97, 40, 1], [8, 64, 64, 2]] as const) {
        const r = new RandomData(11);
        const qkv = r.floats(B * T * 3 * C), dout = r.floats(B * T * C);
        const go = () => {
          const { out, lse } = forward(true, qkv, B, T, C, H);
          return [out, lse, backward(true, dout, qkv, out, lse, B, T, C, H)];
        };
        const a = ref.withThreads(1, go), b = ref.withThreads(2, go);
        for (let i = 0; i < a.length; i++) expect(ref.sameBytes(a[i]!, b[i]!)).toBe(true);
      }
    });
  } else {
    test.skip("bf16 products (this CPU has no AVX512_BF16: only the fp32 fallback below runs)", () => {});
  }

  test("without BF16 (other ISA levels, or a CPU without it) the bytes are the fp32 kernels'", () => {
    ref.forEachIsa((isa) => {
      if (native.hasBf16()) return; // the level with BF16 rounds (tested above)
      const [B, T, C, H] = [2, 70, 96, 3];
      const r = new RandomData(17);
      const qkv = r.floats(B * T * 3 * C), dout = r.floats(B * T * C);
      const a = forward(false, qkv, B, T, C, H), b = forward(true, qkv, B, T, C, H);
      expect(ref.sameBytes(a.out, b.out), isa).toBe(true);
      expect(ref.sameBytes(a.lse, b.lse), isa).toBe(true);
      const ga = backward(false, dout, qkv, a.out, a.lse, B, T, C, H);
      const gb = backward(true, dout, qkv, a.out, a.lse, B, T, C, H);
      expect(ref.sameBytes(ga, gb), isa).toBe(true);
    });
  });

  test("bad sizes are refused", () => {
    const f = new Float32Array(1024);
    expect(() => native.attentionForwardBf16(f, f, f, 1, 4, 8, 3)).toThrow(native.NativeError);
    expect(() => native.attentionForwardBf16(f, f, f, 2, 64, 8, 2)).toThrow(RangeError);
    expect(() => native.attentionBackwardBf16(f, f, f, f, f, 1, 4, 9, 2)).toThrow(/bad sizes/);
    expect(native.nativeSymbols.tv_attention_backward_bf16(f, f, null, f, f, 1, 4, 8, 2)).toBe(-2);
    expect(native.nativeSymbols.tv_attention_forward_bf16(f, null, f, 1, 4, 8, 2)).toBe(-2);
  });
});
