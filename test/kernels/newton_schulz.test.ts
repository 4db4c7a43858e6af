// tv_newton_schulz on every ISA level: many matrices in one call give exactly the bytes of the same
// iteration made of separate tv_matmul_forward/backward (or their bf16 pair), tv_axpby and
// tv_sum_squares calls, on 1 and 2 threads; bad calls are refused. (How close the iteration comes to
// an orthogonal matrix, against float64, is test/train/muon.test.ts's.)
import { ptr } from "bun:ffi";
import { describe, expect, test } from "bun:test";
import * as native from "../../src/native.ts";
import { NS_COEFFICIENTS, NS_STEPS } from "../../src/train/muon.ts";
import * as ref from "./reference.ts";
import { RandomData } from "./random_data.ts";

// Wide, tall, square, gemv-sized (the fp32 engine's few-rows path) and edge-tile shapes.
const SHAPES: [number, number][] = [[64, 200], [200, 64], [96, 96], [5, 3], [3, 5], [40, 72], [1, 9]];
const COEFFICIENTS = Float32Array.from(NS_COEFFICIENTS);

/** The iteration as separate kernel calls: what one tv_newton_schulz call must equal, byte for byte. */
function separateCalls(x0: Float32Array, rows: number, cols: number, bf16: boolean): Float32Array {
  const [qa, qb, qc] = NS_COEFFICIENTS;
  const mmF = bf16 ? native.matmulForwardBf16 : native.matmulForward;
  const mmB = bf16 ? native.matmulBackwardBf16 : native.matmulBackward;
  const x = x0.slice(), n = rows * cols, s = Math.min(rows, cols);
  const a = new Float32Array(s * s), a2 = new Float32Array(s * s), y = new Float32Array(n);
  native.axpby(x, x, x, n, 1 / (Math.sqrt(native.sumSquares(x)) + 1e-7), 0);
  for (let k = 0; k < NS_STEPS; k++) {
    if (rows <= cols) mmF(a, x, x, null, rows, cols, rows);
    else {
      a.fill(0);
      mmB(null, a, null, x, x, x, rows, cols, cols);
    }
    mmF(a2, a, a, null, s, s, s);
    native.axpby(a2, a, a2, s * s, qb, qc);
    if (rows <= cols) mmB(y, null, null, a2, x, x, rows, cols, rows);
    else mmF(y, x, a2, null, rows, cols, cols);
    native.axpby(x, x, y, n, qa, 1);
  }
  return x;
}

describe("newton_schulz", () => {
  test("many matrices in one call: the bytes of separate kernel calls, fp32 and bf16, 1 and 2 threads, every ISA level", () => {
    const starts = SHAPES.map(([r, c], i) => new RandomData(40 + i).floats(r * c));
    ref.forEachIsa((isa) => {
      for (const bf16 of [false, true]) {
        const want = SHAPES.map(([r, c], i) => separateCalls(starts[i]!, r, c, bf16));
        for (const threads of [1, 2]) {
          const xs = starts.map((x) => x.slice());
          ref.withThreads(threads, () =>
            native.newtonSchulz(xs, Int32Array.from(SHAPES, (s) => s[0]), Int32Array.from(SHAPES, (s) => s[1]), NS_STEPS, COEFFICIENTS, bf16));
          xs.forEach((x, i) => {
            const label = `${isa} ${bf16 ? "bf16" : "fp32"} ${threads} thread(s) ${SHAPES[i]!.join("×")}`;
            expect([label, ref.sameBytes(x, want[i]!)]).toEqual([label, true]);
          });
        }
      }
    });
  }, 60_000);

  test("one matrix alone, and zero steps (the normalisation only)", () => {
    const x0 = new RandomData(3).floats(48 * 80);
    const one = x0.slice();
    native.newtonSchulz([one], Int32Array.of(48), Int32Array.of(80), NS_STEPS, COEFFICIENTS, false);
    expect(ref.sameBytes(one, separateCalls(x0, 48, 80, false))).toBe(true);
    const none = x0.slice();
    native.newtonSchulz([none], Int32Array.of(48), Int32Array.of(80), 0, COEFFICIENTS, false);
    expect(Math.sqrt(native.sumSquares(none))).toBeCloseTo(1, 5);
  });

  test("bad sizes, missing buffers and short scratch are refused", () => {
    const S = native.nativeSymbols;
    const x = new Float32Array(12), c = COEFFICIENTS;
    expect(() => native.newtonSchulz([new Float32Array(10)], Int32Array.of(4), Int32Array.of(3), NS_STEPS, c, false)).toThrow("xs[0] holds 10 elements, needs 12");
    expect(() => native.newtonSchulz([], new Int32Array(0), new Int32Array(0), NS_STEPS, c, false)).toThrow("count = 0");
    expect(() => native.newtonSchulz([x], Int32Array.of(0), Int32Array.of(12), NS_STEPS, c, false)).toThrow("rows[0] = 0");
    const table = BigUint64Array.of(BigInt(ptr(x)));
    const scratch = new Float32Array(16 * 64);
    const rows = Int32Array.of(4), cols = Int32Array.of(3);
    expect(S.tv_newton_schulz(table, rows, cols, 1, NS_STEPS, c, scratch, scratch.length, 0)).toBe(0);
    expect(S.tv_newton_schulz(table, rows, cols, 1, NS_STEPS, c, null, scratch.length, 0)).toBe(-2);
    expect(S.tv_newton_schulz(BigUint64Array.of(0n), rows, cols, 1, NS_STEPS, c, scratch, scratch.length, 0)).toBe(-2);
    expect(S.tv_newton_schulz(table, Int32Array.of(-4), cols, 1, NS_STEPS, c, scratch, scratch.length, 0)).toBe(-1);
    expect(S.tv_newton_schulz(table, rows, cols, 0, NS_STEPS, c, scratch, scratch.length, 0)).toBe(-1);
    expect(S.tv_newton_schulz(table, rows, cols, 1, -1, c, scratch, scratch.length, 0)).toBe(-1);
    expect(S.tv_newton_schulz(table, rows, cols, 1, NS_STEPS, c, scratch, 8, 0)).toBe(-1); // a thread's scratch is 2·16 + 16 floats
  });
});
