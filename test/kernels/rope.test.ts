// tv_rope_forward / tv_rope_backward on every ISA level: against the float64 reference (odd head
// sizes, positions from pos0 > 0, two thetas), the V block untouched, the same cos/sin floats on every
// level, a KV-cache step (T = 1 at pos0) giving the same bytes as the whole sequence, the backward as
// the transpose (finite differences) and the inverse of the forward, bit-identical results for 1 and
// 2 threads, and refused sizes.
import { describe, expect, test } from "bun:test";
import * as native from "../../src/native.ts";
import * as ref from "./reference.ts";
import { RandomData } from "./random_data.ts";

// [B, T, C, NH]: head sizes 2, 6, 10, 34 (not multiples of 16), 48, 64, 128, 1024 (the largest).
const SHAPES: [number, number, number, number][] = [
  [1, 1, 2, 1], [2, 3, 12, 2], [1, 5, 40, 4], [2, 4, 68, 2], [2, 7, 96, 2], [3, 4, 128, 2], [1, 3, 256, 2], [1, 2, 2048, 2],
];
const POS0 = [0, 5, 1000, 100_000];
const THETAS = [10_000, 500_000];

const vBlock = (qkv: Float32Array, B: number, T: number, C: number) =>
  Float32Array.from({ length: B * T * C }, (_, i) => qkv[Math.floor(i / C) * 3 * C + 2 * C + (i % C)]!);

describe("rope", () => {
  test("forward and backward match the float64 reference on every ISA level, V untouched", () => {
    ref.forEachIsa((isa) => {
      for (const [B, T, C, NH] of SHAPES)
        for (const pos0 of POS0)
          for (const theta of THETAS) {
            const label = `${isa} B=${B} T=${T} C=${C} NH=${NH} pos0=${pos0} theta=${theta}`;
            const qkv = new RandomData(B * T * C + pos0).floats(B * T * 3 * C);
            for (const sign of [1, -1]) {
              const got = qkv.slice();
              if (sign > 0) native.ropeForward(got, B, T, C, NH, pos0, theta);
              else native.ropeBackward(got, B, T, C, NH, pos0, theta);
              ref.within(ref.worst(got, ref.rope(qkv, B, T, C, NH, pos0, theta, sign), 1e-6, 1e-5), `${label} sign=${sign}`);
              expect(ref.sameBytes(vBlock(got, B, T, C), vBlock(qkv, B, T, C)), `${label} V`).toBe(true);
            }
          }
    });
  });

  test("cos and sin are the float64 values rounded once, the same floats on every ISA level", () => {
    // q = [1…1 | 0…0] per head turns into [cos | sin] exactly (x·1 and 0·sin are exact).
    const [B, T, C, NH, pos0, theta] = [1, 9, 2 * 34, 2, 4093, 10_000];
    const hs = C / NH, half = hs / 2;
    const qkv = new Float32Array(T * 3 * C);
    for (let t = 0; t < T; t++) for (let h = 0; h < 2 * NH; h++) qkv.fill(1, t * 3 * C + h * hs, t * 3 * C + h * hs + half);
    const runs: Float32Array[] = [];
    ref.forEachIsa((isa) => {
      const got = qkv.slice();
      native.ropeForward(got, B, T, C, NH, pos0, theta);
      runs.push(got);
      for (let t = 0; t < T; t++)
        for (let i = 0; i < half; i++) {
          const a = (pos0 + t) * Math.pow(theta, (-2 * i) / hs);
          for (const [v, want] of [[got[t * 3 * C + i]!, Math.cos(a)], [got[t * 3 * C + half + i]!, Math.sin(a)]] as const) {
            // Within half a float ulp of the float64 value, i.e. its rounding (up to a tie of libms).
            const ulp = 2 ** (Math.floor(Math.log2(Math.max(Math.abs(want), 1e-30))) - 23);
            expect(Math.abs(v - want), `${isa} t=${t} i=${i}`).toBeLessThanOrEqual(0.5000001 * ulp);
          }
        }
    });
    for (const r of runs) expect(ref.sameBytes(r, runs[0]!)).toBe(true);
  });

  test("a KV-cache step (T = 1 at pos0 + t) gives the same bytes as the row within the sequence", () => {
    ref.forEachIsa((isa) => {
      const [B, T, C, NH, pos0] = [2, 40, 96, 3, 7];
      const qkv = new RandomData(3).floats(B * T * 3 * C);
      const whole = qkv.slice();
      native.ropeForward(whole, B, T, C, NH, pos0, 10_000);
      for (let b = 0; b < B; b++)
        for (let t = 0; t < T; t++) {
          const row = qkv.slice((b * T + t) * 3 * C, (b * T + t + 1) * 3 * C);
          native.ropeForward(row, 1, 1, C, NH, pos0 + t, 10_000);
          expect(ref.sameBytes(row, whole.subarray((b * T + t) * 3 * C, (b * T + t + 1) * 3 * C)), `${isa} b=${b} t=${t}`).toBe(true);
        }
    });
  });

  test("backward is the gradient (finite differences of the reference forward) and undoes the forward", () => {
    ref.forEachIsa((isa) => {
      for (const [B, T, C, NH, pos0] of [[1, 3, 12, 2, 0], [2, 5, 20, 2, 300]] as const) {
        const label = `${isa} B=${B} T=${T} C=${C} NH=${NH} pos0=${pos0}`;
        const r = new RandomData(C + T);
        const qkv = r.floats(B * T * 3 * C), R = r.floats(B * T * 3 * C);
        const grad = R.slice();
        native.ropeBackward(grad, B, T, C, NH, pos0, 10_000);
        const fd = ref.finiteDiff((x) => ref.rope(x, B, T, C, NH, pos0, 10_000), qkv, R, ref.sampleIndices(B * T * 3 * C, 60, () => r.next()));
        ref.within(ref.worstFd(grad, fd, 1e-5, 1e-4), `${label} vs finite differences`);
        const back = qkv.slice();
        native.ropeForward(back, B, T, C, NH, pos0, 10_000);
        native.ropeBackward(back, B, T, C, NH, pos0, 10_000);
        ref.within(ref.worst(back, qkv, 1e-6, 1e-5), `${label} forward then backward`);
      }
    });
  });

  test("1 and 2 threads give identical bytes", () => {
    ref.forEachIsa(() => {
      const [B, T, C, NH, pos0] = [4, 67, 96, 2, 11]; // several blocks of positions, threaded
      const qkv = new RandomData(17).floats(B * T * 3 * C);
      const go = () => {
        const f = qkv.slice(), b = qkv.slice();
        native.ropeForward(f, B, T, C, NH, pos0, 500_000);
        native.ropeBackward(b, B, T, C, NH, pos0, 500_000);
        return [f, b];
      };
      const a = ref.withThreads(1, go), b = ref.withThreads(2, go);
      expect(ref.sameBytes(a[0]!, b[0]!)).toBe(true);
      expect(ref.sameBytes(a[1]!, b[1]!)).toBe(true);
    });
  });

  test("bad sizes, positions and thetas, and missing buffers are refused", () => {
    const f = new Float32Array(2 * 3 * 2048);
    expect(() => native.ropeForward(f, 1, 1, 8, 0, 0, 1e4)).toThrow(RangeError);
    expect(() => native.ropeForward(f.subarray(0, 23), 1, 1, 8, 2, 0, 1e4)).toThrow(RangeError);
    expect(() => native.ropeBackward(f, 1, 1, 8, 2, -1, 1e4)).toThrow(RangeError);
    expect(() => native.ropeForward(f, 1, 1, 8, 2, 1.5, 1e4)).toThrow(RangeError);
    expect(() => native.ropeForward(f, 1, 1, 6, 2, 0, 1e4)).toThrow(native.NativeError); // hs = 3 is odd
    const S = native.nativeSymbols;
    expect(S.tv_rope_forward(f, 1, 1, 6, 2, 0, 1e4)).toBe(-1); // odd head size
    expect(S.tv_rope_forward(f, 1, 1, 10, 4, 0, 1e4)).toBe(-1); // C not a multiple of NH
    expect(S.tv_rope_forward(f, 1, 1, 2052, 1, 0, 1e4)).toBe(-1); // head size above 1024
    expect(S.tv_rope_forward(f, 1, 2, 2048, 2, 0, 1e4)).toBe(0); // 1024 is taken
    expect(S.tv_rope_forward(f, 0, 1, 8, 2, 0, 1e4)).toBe(-1);
    expect(S.tv_rope_backward(f, 1, 1, 8, 2, -3, 1e4)).toBe(-4);
    expect(S.tv_rope_forward(f, 1, 1, 8, 2, 0, 0)).toBe(-4);
    expect(S.tv_rope_forward(f, 1, 1, 8, 2, 0, NaN)).toBe(-4);
    expect(S.tv_rope_forward(null, 1, 1, 8, 2, 0, 1e4)).toBe(-2);
  });
});
