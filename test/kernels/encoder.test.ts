// tv_encoder_forward / tv_encoder_backward on every ISA level: exact gathers and scatter-adds
// (repeated tokens included) against the float64 reference, finite differences, the += and
// NULL-skipping contract, 1 vs 2 threads, and refused tokens and sizes.
import { describe, expect, test } from "bun:test";
import * as native from "../../src/native.ts";
import * as ref from "./reference.ts";
import { RandomData } from "./random_data.ts";

// [B, T, C, V, maxT]
const SHAPES: [number, number, number, number, number][] = [
  [1, 1, 1, 1, 1], [2, 3, 5, 7, 4], [3, 17, 31, 11, 17], [2, 31, 16, 5, 40], [4, 64, 100, 97, 64], [8, 128, 72, 50, 130],
];

describe("encoder", () => {
  test("forward and backward match the float64 reference on every ISA level", () => {
    ref.forEachIsa((isa) => {
      for (const [B, T, C, V, maxT] of SHAPES) {
        const label = `${isa} B=${B} T=${T} C=${C} V=${V}`;
        const r = new RandomData(B * T * C + V);
        // Few distinct tokens, so many positions scatter into the same rows.
        const tokens = r.ints(B * T, V);
        const wte = r.floats(V * C), wpe = r.floats(maxT * C);
        const out = new Float32Array(B * T * C);
        native.encoderForward(out, tokens, wte, wpe, B, T, C, V, maxT);
        // One float32 add per element: exact.
        expect([label, ref.sameBytes(out, Float32Array.from(ref.encoderForward(tokens, wte, wpe, B, T, C)))]).toEqual([label, true]);

        const dout = r.floats(B * T * C);
        const baseTe = r.floats(V * C), basePe = r.floats(maxT * C);
        const dwte = baseTe.slice(), dwpe = basePe.slice();
        native.encoderBackward(dwte, dwpe, dout, tokens, B, T, C, V, maxT);
        const g = ref.encoderBackward(dout, tokens, B, T, C, V, maxT);
        const tol = 1e-6 * Math.max(B * T, 1);
        ref.within(ref.worst(dwte, g.dwte, tol, 1e-6, baseTe), `${label} dwte`);
        ref.within(ref.worst(dwpe, g.dwpe, 1e-6 * B, 1e-6, basePe), `${label} dwpe`);
      }
    });
  });

  test("backward matches finite differences of the reference forward", () => {
    const [B, T, C, V, maxT] = [2, 5, 3, 4, 6];
    const r = new RandomData(4);
    const tokens = r.ints(B * T, V), wte = r.floats(V * C), wpe = r.floats(maxT * C), R = r.floats(B * T * C);
    const dwte = new Float32Array(V * C), dwpe = new Float32Array(maxT * C);
    native.encoderBackward(dwte, dwpe, R, tokens, B, T, C, V, maxT);
    const all = (n: number) => ref.sampleIndices(n, n, () => 0);
    const fdTe = ref.finiteDiff((x) => ref.encoderForward(tokens, x, wpe, B, T, C), wte, R, all(V * C));
    const fdPe = ref.finiteDiff((x) => ref.encoderForward(tokens, wte, x, B, T, C), wpe, R, all(maxT * C));
    ref.within(ref.worstFd(dwte, fdTe, 1e-6, 1e-5), "dwte vs finite differences");
    ref.within(ref.worstFd(dwpe, fdPe, 1e-6, 1e-5), "dwpe vs finite differences");
  });

  test("NULL gradients are skipped", () => {
    const [B, T, C, V, maxT] = [2, 7, 9, 5, 8];
    const r = new RandomData(8);
    const tokens = r.ints(B * T, V), dout = r.floats(B * T * C);
    const te = new Float32Array(V * C), pe = new Float32Array(maxT * C);
    native.encoderBackward(te, pe, dout, tokens, B, T, C, V, maxT);
    const te2 = new Float32Array(V * C), pe2 = new Float32Array(maxT * C);
    native.encoderBackward(te2, null, dout, tokens, B, T, C, V, maxT);
    native.encoderBackward(null, pe2, dout, tokens, B, T, C, V, maxT);
    expect(ref.sameBytes(te, te2)).toBe(true);
    expect(ref.sameBytes(pe, pe2)).toBe(true);
    native.encoderBackward(null, null, dout, tokens, B, T, C, V, maxT);
  });

  test("1 and 2 threads give identical bytes", () => {
    ref.forEachIsa(() => {
      const [B, T, C, V, maxT] = [8, 256, 48, 37, 256];
      const r = new RandomData(21);
      const tokens = r.ints(B * T, V), wte = r.floats(V * C), wpe = r.floats(maxT * C), dout = r.floats(B * T * C);
      const go = () => {
        const out = new Float32Array(B * T * C), dwte = wte.slice(), dwpe = wpe.slice();
        native.encoderForward(out, tokens, wte, wpe, B, T, C, V, maxT);
        native.encoderBackward(dwte, dwpe, dout, tokens, B, T, C, V, maxT);
        return [out, dwte, dwpe];
      };
      const a = ref.withThreads(1, go), b = ref.withThreads(2, go);
      for (let i = 0; i < a.length; i++) expect(ref.sameBytes(a[i]!, b[i]!)).toBe(true);
    });
  });

  test("out-of-range tokens and bad sizes are refused", () => {
    const f = new Float32Array(64);
    const bad = Int32Array.from([0, 1, 4, 2]);
    expect(() => native.encoderForward(f, bad, f, f, 1, 4, 2, 4, 4)).toThrow(/out of range/);
    expect(() => native.encoderBackward(f, f, f, bad, 1, 4, 2, 4, 4)).toThrow(native.NativeError);
    expect(() => native.encoderForward(f, Int32Array.from([0, -1, 0, 0]), f, f, 1, 4, 2, 4, 4)).toThrow(native.NativeError);
    const ok = Int32Array.from([0, 1, 2, 3]);
    expect(() => native.encoderForward(f, ok, f, f, 1, 4, 2, 4, 3)).toThrow(/bad sizes/); // T > maxT
    expect(() => native.encoderForward(f, ok, f, new Float32Array(7), 1, 4, 2, 4, 4)).toThrow(RangeError); // wpe too short
    expect(native.nativeSymbols.tv_encoder_backward(f, f, null, ok, 1, 4, 2, 4, 4)).toBe(-2);
    expect(() => native.encoderForward(f, ok, f, f, 1, 0, 2, 4, 4)).toThrow(RangeError);
  });
});
