// tv_pack_panels and tv_matmul_forward_panels (decoding's product) on every ISA level: the panel layout
// element by element (zeros past N), the product against a float64 reference for M = 1..33 with N off
// the 16-wide panels and every tile shape (one row against 8 panels, up to 8 rows against 3, the
// leftovers), every row bit-identical to a one-row call, and 1 and 2 threads giving the same bytes.
import { afterAll, describe, expect, test } from "bun:test";
import * as native from "../../src/native.ts";
import { randomArray, refForward, seededUniform } from "./ref_matmul.ts";
import { sameBytes, withThreads } from "./reference.ts";

const GUARD = 37;
const SENTINEL = 12345.5;

const best = native.isaBest();
afterAll(() => native.setIsa(best));

/** Largest |got − ref| over the float32 rounding bound (K+3)·2⁻²³·Σ|terms|; ≤ 1 passes. */
function worstError(got: Float32Array, inp: Float32Array, weight: Float32Array, bias: Float32Array | null, M: number, K: number, N: number): number {
  const ref = refForward(inp, weight, bias, M, K, N);
  let worst = 0;
  for (let i = 0; i < M * N; i++) {
    const err = Math.abs(got[i]! - ref.value[i]!) / ((K + 3) * 1.2e-7 * ref.absSum[i]! + 1e-30);
    if (!(err <= worst)) worst = Number.isNaN(err) ? Infinity : err;
  }
  return worst;
}

function packed(weight: Float32Array, N: number, K: number): Float32Array {
  const p = new Float32Array(native.panelsLength(N, K)).fill(NaN); // every float must be written
  native.packPanels(p, weight, N, K);
  return p;
}

// [K, N]: K = 1, odd depths, a deep one; N of 1 (one partial panel), 15, 17, 48 (3 panels), 129 (8
// panels and a leftover), 200 and 1021 (many groups, split over threads).
const SHAPES: [number, number][] = [[1, 1], [13, 17], [57, 15], [64, 48], [67, 129], [257, 200], [96, 1021]];
const ROWS = Array.from({ length: 33 }, (_, i) => i + 1);

describe("matmul_forward_panels", () => {
  test("pack_panels: P[(j·K + k)·16 + i] = W[16j + i][k], zeros past N, the same floats on every level", () => {
    for (const isa of native.supportedIsas()) {
      native.setIsa(isa);
      for (const [K, N] of SHAPES) {
        const w = randomArray(N * K, seededUniform(K * 13 + N));
        const p = packed(w, N, K);
        let ok = true;
        for (let j = 0; j < Math.ceil(N / 16); j++)
          for (let k = 0; k < K; k++)
            for (let i = 0; i < 16; i++) {
              const n = 16 * j + i;
              const want = n < N ? w[n * K + k]! : 0;
              if (!Object.is(p[(j * K + k) * 16 + i], want)) ok = false;
            }
        expect([isa, K, N, ok]).toEqual([isa, K, N, true]);
      }
    }
  });

  for (const isa of native.supportedIsas()) {
    for (const [K, N] of SHAPES) {
      test(`${isa}: K=${K} N=${N}, M = 1..33, with and without bias: float64 and the one-row bytes`, () => {
        native.setIsa(isa);
        for (const M of ROWS) {
          const rand = seededUniform(M * 7919 + K * 31 + N);
          const inp = randomArray(M * K, rand, 2);
          const weight = randomArray(N * K, rand, 0.5);
          const bias = randomArray(N, rand);
          const panels = packed(weight, N, K);
          for (const b of [bias, null]) {
            const out = new Float32Array(M * N + GUARD).fill(NaN); // old content must not leak in
            out.fill(SENTINEL, M * N);
            native.matmulForwardPanels(out, inp, panels, b, M, K, N);
            const label = `M=${M} bias=${b !== null}`;
            expect([label, worstError(out, inp, weight, b, M, K, N) <= 1]).toEqual([label, true]);
            expect([label, out.subarray(M * N).every((v) => v === SENTINEL)]).toEqual([label, true]);
            const one = new Float32Array(N);
            for (let m = 0; m < M; m++) {
              native.matmulForwardPanels(one, inp.subarray(m * K, (m + 1) * K), panels, b, 1, K, N);
              expect([label, m, sameBytes(one, out.subarray(m * N, (m + 1) * N))]).toEqual([label, m, true]);
            }
          }
        }
      });
    }

    test(`${isa}: 1 and 2 threads give identical bytes`, () => {
      native.setIsa(isa);
      for (const [M, K, N] of [[1, 256, 768], [16, 256, 768], [32, 1024, 259], [5, 301, 517], [33, 67, 1021]] as const) {
        const rand = seededUniform(M + K + N);
        const inp = randomArray(M * K, rand);
        const panels = packed(randomArray(N * K, rand), N, K);
        const bias = randomArray(N, rand);
        const run = (threads: number) =>
          withThreads(threads, () => {
            const out = new Float32Array(M * N);
            native.matmulForwardPanels(out, inp, panels, bias, M, K, N);
            return out;
          });
        expect(sameBytes(run(1), run(2))).toBe(true);
      }
    });
  }

  test("refuses bad sizes", () => {
    const f = (n: number) => new Float32Array(n);
    expect(() => native.packPanels(f(16 * 3 - 1), f(9), 3, 3)).toThrow(/out holds 47/);
    expect(() => native.packPanels(f(48), f(8), 3, 3)).toThrow(/weight holds 8/);
    expect(() => native.matmulForwardPanels(f(6), f(6), f(47), null, 2, 3, 3)).toThrow(/panels holds 47/);
    expect(() => native.matmulForwardPanels(f(5), f(6), f(48), null, 2, 3, 3)).toThrow(/out holds 5/);
    expect(() => native.matmulForwardPanels(f(6), f(6), f(48), null, 0, 3, 3)).toThrow(/M = 0/);
  });
});
