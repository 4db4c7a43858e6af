// tv_matmul_forward_rows on every ISA level: against a float64 reference for M = 1..33 with tails in
// K (after whole 32-float steps: none, under 16, over 16) and in N (W rows past whole blocks of 4),
// every row bit-identical to tv_matmul_forward on that row alone (M = 1), and 1 and 2 threads giving
// the same bytes.
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

// [K, N]: K = 1 (all tail), K with a tail under 16 and over 16 lanes, a multiple of 32, and a shape
// large enough to be split over threads; N leaves 1, 2 or 3 W rows after the blocks of 4.
const SHAPES: [number, number][] = [[1, 3], [13, 5], [57, 9], [64, 6], [67, 37], [257, 131]];
const ROWS = Array.from({ length: 33 }, (_, i) => i + 1);

describe("matmul_forward_rows", () => {
  for (const isa of native.supportedIsas()) {
    for (const [K, N] of SHAPES) {
      test(`${isa}: K=${K} N=${N}, M = 1..33, with and without bias: float64 and the one-row bytes`, () => {
        native.setIsa(isa);
        for (const M of ROWS) {
          const rand = seededUniform(M * 7919 + K * 31 + N);
          const inp = randomArray(M * K, rand, 2);
          const weight = randomArray(N * K, rand, 0.5);
          const bias = randomArray(N, rand);
          for (const b of [bias, null]) {
            const out = new Float32Array(M * N + GUARD).fill(NaN); // old content must not leak in
            out.fill(SENTINEL, M * N);
            native.matmulForwardRows(out, inp, weight, b, M, K, N);
            const label = `M=${M} bias=${b !== null}`;
            expect([label, worstError(out, inp, weight, b, M, K, N) <= 1]).toEqual([label, true]);
            expect([label, out.subarray(M * N).every((v) => v === SENTINEL)]).toEqual([label, true]);
            const one = new Float32Array(N);
            for (let m = 0; m < M; m++) {
              native.matmulForward(one, inp.subarray(m * K, (m + 1) * K), weight, b, 1, K, N);
              expect([label, m, sameBytes(one, out.subarray(m * N, (m + 1) * N))]).toEqual([label, m, true]);
            }
          }
        }
      });
    }

    test(`${isa}: 1 and 2 threads give identical bytes`, () => {
      native.setIsa(isa);
      for (const [M, K, N] of [[16, 256, 768], [32, 1024, 259], [5, 301, 517], [33, 67, 1021]] as const) {
        const rand = seededUniform(M + K + N);
        const inp = randomArray(M * K, rand);
        const weight = randomArray(N * K, rand);
        const bias = randomArray(N, rand);
        const run = (threads: number) =>
          withThreads(threads, () => {
            const out = new Float32Array(M * N);
            native.matmulForwardRows(out, inp, weight, bias, M, K, N);
            return out;
          });
        expect(sameBytes(run(1), run(2))).toBe(true);
      }
    });
  }

  test("refuses bad sizes", () => {
    const f = (n: number) => new Float32Array(n);
    expect(() => native.matmulForwardRows(f(5), f(6), f(6), null, 2, 3, 3)).toThrow();
    expect(() => native.matmulForwardRows(f(6), f(6), f(9), null, 0, 3, 3)).toThrow();
  });
});
