// tv_crossentropy_forward_backward on every ISA level: losses and logits gradient against the
// float64 reference (large and shifted logits included), finite differences of the summed loss,
// ignored rows, the overwrite and in-place (dlogits = logits) contract, NULL dlogits,
// 1 vs 2 threads, and refused targets and sizes.
import { describe, expect, test } from "bun:test";
import * as native from "../../src/native.ts";
import * as ref from "./reference.ts";
import { RandomData } from "./random_data.ts";

const SHAPES: [number, number][] = [[1, 1], [1, 2], [3, 17], [5, 31], [4, 100], [7, 257], [64, 1031], [3, 50257]];

function inputs(M: number, V: number, seed: number) {
  const r = new RandomData(seed);
  const logits = r.floats(M * V, -8, 8);
  if (M > 1) for (let i = 0; i < V; i++) logits[i]! += 60; // a shifted row: needs the max subtraction
  const targets = r.ints(M, V);
  if (M > 2) targets[2] = -1; // an ignored row
  return { r, logits, targets };
}

describe("crossentropy", () => {
  test("losses and gradient match the float64 reference on every ISA level", () => {
    ref.forEachIsa((isa) => {
      for (const [M, V] of SHAPES) {
        const label = `${isa} M=${M} V=${V}`;
        const { r, logits, targets } = inputs(M, V, M * 100 + V);
        const dloss = 1 / M;
        const losses = new Float32Array(M), dlogits = r.floats(M * V); // garbage: must be overwritten
        native.crossEntropyForwardBackward(losses, dlogits, logits, targets, M, V, dloss);
        const want = ref.crossEntropy(logits, targets, M, V, dloss);
        ref.within(ref.worst(losses, want.losses, 1e-5, 1e-5), `${label} losses`);
        ref.within(ref.worst(dlogits, want.dlogits, 1e-7 * dloss, 1e-5), `${label} dlogits`);
        if (M > 2) {
          expect(losses[2]).toBe(0);
          for (let i = 0; i < V; i++) expect(dlogits[2 * V + i]).toBe(0);
        }
      }
    });
  });

  test("in place (dlogits = logits) and NULL dlogits give the same results", () => {
    ref.forEachIsa(() => {
      for (const [M, V] of [[5, 31], [9, 1000]] as const) {
        const { logits, targets } = inputs(M, V, 3);
        const losses = new Float32Array(M), dlogits = new Float32Array(M * V);
        native.crossEntropyForwardBackward(losses, dlogits, logits, targets, M, V, 0.5);
        const inPlace = logits.slice(), losses2 = new Float32Array(M);
        native.crossEntropyForwardBackward(losses2, inPlace, inPlace, targets, M, V, 0.5);
        expect(ref.sameBytes(inPlace, dlogits)).toBe(true);
        expect(ref.sameBytes(losses2, losses)).toBe(true);
        const losses3 = new Float32Array(M);
        native.crossEntropyForwardBackward(losses3, null, logits, targets, M, V, 0.5);
        expect(ref.sameBytes(losses3, losses)).toBe(true);
      }
    });
  });

  test("the gradient matches finite differences of dloss·Σ losses", () => {
    ref.forEachIsa((isa) => {
      const [M, V] = [4, 13];
      const { r, logits, targets } = inputs(M, V, 17);
      const dloss = 0.7;
      const losses = new Float32Array(M), dlogits = new Float32Array(M * V);
      native.crossEntropyForwardBackward(losses, dlogits, logits, targets, M, V, dloss);
      const R = new Float64Array(M).fill(dloss);
      const fd = ref.finiteDiff((x) => ref.crossEntropy(x, targets, M, V, dloss).losses, logits, R,
        ref.sampleIndices(M * V, M * V, () => r.next()));
      ref.within(ref.worstFd(dlogits, fd, 1e-6, 1e-4), `${isa} dlogits vs finite differences`);
    });
  });

  test("1 and 2 threads give identical bytes", () => {
    ref.forEachIsa(() => {
      const [M, V] = [37, 4099];
      const { logits, targets } = inputs(M, V, 23);
      const go = () => {
        const losses = new Float32Array(M), dlogits = new Float32Array(M * V);
        native.crossEntropyForwardBackward(losses, dlogits, logits, targets, M, V, 1 / M);
        return [losses, dlogits];
      };
      const a = ref.withThreads(1, go), b = ref.withThreads(2, go);
      expect(ref.sameBytes(a[0]!, b[0]!)).toBe(true);
      expect(ref.sameBytes(a[1]!, b[1]!)).toBe(true);
    });
  });

  test("targets >= V and bad sizes are refused", () => {
    const f = new Float32Array(32);
    expect(() => native.crossEntropyForwardBackward(f, f, f, Int32Array.from([0, 8]), 2, 8, 1)).toThrow(/out of range/);
    expect(() => native.crossEntropyForwardBackward(f, f, f, Int32Array.from([0, 1]), 2, 0, 1)).toThrow(RangeError);
    expect(() => native.crossEntropyForwardBackward(f, f, f, Int32Array.from([0, 1]), 2, 17, 1)).toThrow(RangeError);
    expect(native.nativeSymbols.tv_crossentropy_forward_backward(f, f, f, null, 2, 8, 1)).toBe(-2);
  });
});
