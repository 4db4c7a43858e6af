// tv_matmul_forward_bf16 / tv_matmul_backward_bf16: bf16 operands (fp32 rounded to nearest even),
// fp32 accumulation. Against a float64 reference computed on the bf16-rounded inputs (the fp32
// rounding bound, as for the fp32 kernels), against the unrounded fp32 inputs (loose: each operand
// is off by at most 2⁻⁸ relative, so a sum by at most ~2⁻⁷·Σ|terms|; the test allows 1e-2·Σ|terms|),
// finite differences, bit-identical results for any thread count, and the fallback: without BF16
// (or at a lower ISA level) the results are the fp32 kernels' bytes.
import { afterAll, describe, expect, test } from "bun:test";
import * as native from "../../src/native.ts";
import { seededUniform, randomArray, type Ref, refDbias, refDinp, refDweight, refForward, refLoss } from "./ref_matmul.ts";

/** fp32 → bf16 → fp32, round to nearest even (finite inputs). */
function bf16(a: Float32Array): Float32Array {
  const out = new Float32Array(a.length);
  const u = new Uint32Array(out.buffer);
  out.set(a);
  for (let i = 0; i < u.length; i++) {
    const x = u[i]!;
    u[i] = ((x + 0x7fff + ((x >>> 16) & 1)) & 0xffff0000) >>> 0;
  }
  return out;
}

/** Largest |got − (base + ref)| over unit·Σ|terms|; ≤ 1 passes. */
function worstError(got: Float32Array, ref: Ref, unit: number, base?: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < ref.value.length; i++) {
    const b = base ? base[i]! : 0;
    const bound = unit * (ref.absSum[i]! + Math.abs(b)) + 1e-30;
    const err = Math.abs(got[i]! - (b + ref.value[i]!)) / bound;
    if (!(err <= worst)) worst = Number.isNaN(err) ? Infinity : err;
  }
  return worst;
}
const fp32Unit = (depth: number): number => (depth + 3) * 1.2e-7;
const LOOSE = 1e-2;

const same = (a: Float32Array, b: Float32Array): boolean => Buffer.from(a.buffer).equals(Buffer.from(b.buffer));

const best = native.isaBest();
const threadsAtStart = native.getThreads();
afterAll(() => {
  native.setIsa(best);
  native.setThreads(threadsAtStart);
});

// [M, K, N]: ones, primes, odd depths (a bf16 pair half empty), sizes that are not multiples of
// 16/32, depths past one K block, M ≤ 4 and wide outputs.
const SHAPES: [number, number, number][] = [
  [1, 1, 1], [1, 17, 31], [3, 5, 7], [4, 67, 3], [5, 3, 67], [7, 1, 9], [17, 31, 67], [31, 257, 17],
  [67, 127, 255], [127, 255, 31], [6, 300, 64], [200, 129, 65], [13, 513, 130], [2, 1000, 100], [9, 40, 2100],
];

describe("matmul bf16", () => {
  const bf16Level = native.hasBf16() ? native.isaCurrent() : null;

  if (bf16Level) {
    for (const [M, K, N] of SHAPES) {
      test(`forward M=${M} K=${K} N=${N}: float64 on bf16-rounded inputs (tight), on fp32 inputs (loose)`, () => {
        native.setIsa(bf16Level);
        const rand = seededUniform(M * 7919 + K * 31 + N);
        const inp = randomArray(M * K, rand, 2);
        const weight = randomArray(N * K, rand, 0.5);
        const bias = randomArray(N, rand);
        for (const b of [bias, null]) {
          const out = new Float32Array(M * N).fill(NaN);
          native.matmulForwardBf16(out, inp, weight, b, M, K, N);
          expect(worstError(out, refForward(bf16(inp), bf16(weight), b, M, K, N), fp32Unit(K))).toBeLessThanOrEqual(1);
          expect(worstError(out, refForward(inp, weight, b, M, K, N), LOOSE)).toBeLessThanOrEqual(1);
        }
      });

      test(`backward M=${M} K=${K} N=${N}: dinp overwritten, the rest accumulated; bf16-rounded reference (tight), fp32 (loose)`, () => {
        native.setIsa(bf16Level);
        const rand = seededUniform(M * 104729 + K * 17 + N * 3);
        const inp = randomArray(M * K, rand, 2);
        const weight = randomArray(N * K, rand, 0.5);
        const dout = randomArray(M * N, rand);
        const dweight0 = randomArray(N * K, rand);
        const dbias0 = randomArray(N, rand);
        const dinp = new Float32Array(M * K).fill(NaN), dweight = dweight0.slice(), dbias = dbias0.slice();
        native.matmulBackwardBf16(dinp, dweight, dbias, dout, inp, weight, M, K, N);
        const [rInp, rWeight, rDout] = [bf16(inp), bf16(weight), bf16(dout)];
        expect(worstError(dinp, refDinp(rDout, rWeight, M, K, N), fp32Unit(N))).toBeLessThanOrEqual(1);
        expect(worstError(dweight, refDweight(rDout, rInp, M, K, N), fp32Unit(M), dweight0)).toBeLessThanOrEqual(1);
        // dbias has no products: the fp32 sums of dout itself.
        expect(worstError(dbias, refDbias(dout, M, N), fp32Unit(M), dbias0)).toBeLessThanOrEqual(1);
        expect(worstError(dinp, refDinp(dout, weight, M, K, N), LOOSE)).toBeLessThanOrEqual(1);
        expect(worstError(dweight, refDweight(dout, inp, M, K, N), LOOSE, dweight0)).toBeLessThanOrEqual(1);
      });
    }

    test("the products really are bf16: the fp32 kernel misses the tight bf16 reference", () => {
      native.setIsa(bf16Level);
      const [M, K, N] = [33, 70, 45];
      const rand = seededUniform(5);
      const inp = randomArray(M * K, rand), weight = randomArray(N * K, rand);
      const ref = refForward(bf16(inp), bf16(weight), null, M, K, N);
      const fp32 = new Float32Array(M * N), half = new Float32Array(M * N);
      native.matmulForward(fp32, inp, weight, null, M, K, N);
      native.matmulForwardBf16(half, inp, weight, null, M, K, N);
      expect(worstError(fp32, ref, fp32Unit(K))).toBeGreaterThan(10);
      expect(worstError(half, ref, fp32Unit(K))).toBeLessThanOrEqual(1);
    });

    test("backward agrees with finite differences of the forward (to bf16 accuracy)", () => {
      native.setIsa(bf16Level);
      const [M, K, N] = [9, 23, 19];
      const rand = seededUniform(4242);
      const inp = randomArray(M * K, rand, 2);
      const weight = randomArray(N * K, rand);
      const bias = randomArray(N, rand);
      const R = randomArray(M * N, rand);
      const dinp = new Float32Array(M * K), dweight = new Float32Array(N * K), dbias = new Float32Array(N);
      native.matmulBackwardBf16(dinp, dweight, dbias, R, inp, weight, M, K, N);
      const h = 1e-3;
      const fd = (arr: Float32Array, i: number): number => {
        const x = Float64Array.from(arr);
        const at = (v: number): number => {
          x[i] = v;
          return refLoss(arr === inp ? x : inp, arr === weight ? x : weight, arr === bias ? x : bias, R, M, K, N);
        };
        return (at(arr[i]! + h) - at(arr[i]! - h)) / (2 * h);
      };
      // |∂loss/∂inp[m,k]| ≤ Σ_n |R|·|W| ≲ N/4; bf16 operands make it off by ~2⁻⁸ of that.
      for (let t = 0; t < 12; t++) {
        const i = Math.floor((rand() + 0.5) * M * K);
        expect(Math.abs(dinp[i]! - fd(inp, i))).toBeLessThan(0.02);
        const j = Math.floor((rand() + 0.5) * N * K);
        expect(Math.abs(dweight[j]! - fd(weight, j))).toBeLessThan(0.02);
        const b = Math.floor((rand() + 0.5) * N);
        expect(Math.abs(dbias[b]! - fd(bias, b))).toBeLessThan(1e-4);
      }
    });

    test("1, 2 and 3 threads give identical bytes", () => {
      native.setIsa(bf16Level);
      for (const [M, K, N] of [[203, 301, 517], [2, 700, 333], [61, 130, 2050]] as const) {
        const rand = seededUniform(M + K + N);
        const inp = randomArray(M * K, rand), weight = randomArray(N * K, rand);
        const bias = randomArray(N, rand), dout = randomArray(M * N, rand);
        const run = (threads: number): Float32Array[] => {
          native.setThreads(threads);
          const out = new Float32Array(M * N);
          native.matmulForwardBf16(out, inp, weight, bias, M, K, N);
          const dinp = new Float32Array(M * K).fill(0.25);
          const dweight = new Float32Array(N * K).fill(-0.5);
          const dbias = new Float32Array(N).fill(1);
          native.matmulBackwardBf16(dinp, dweight, dbias, dout, inp, weight, M, K, N);
          return [out, dinp, dweight, dbias];
        };
        const one = run(1);
        for (const threads of [2, 3]) {
          const many = run(threads);
          for (let i = 0; i < one.length; i++) expect(same(many[i]!, one[i]!)).toBe(true);
        }
      }
      native.setThreads(threadsAtStart);
    });

    test("a NULL gradient is skipped and the others are still computed", () => {
      native.setIsa(bf16Level);
      const [M, K, N] = [20, 33, 18];
      const rand = seededUniform(99);
      const inp = randomArray(M * K, rand), weight = randomArray(N * K, rand), dout = randomArray(M * N, rand);
      const full = [new Float32Array(M * K), new Float32Array(N * K), new Float32Array(N)];
      native.matmulBackwardBf16(full[0]!, full[1]!, full[2]!, dout, inp, weight, M, K, N);
      for (let skip = 0; skip < 3; skip++) {
        const bufs = [new Float32Array(M * K), new Float32Array(N * K), new Float32Array(N)];
        const args = bufs.map((b, i) => (i === skip ? null : b));
        native.matmulBackwardBf16(args[0]!, args[1]!, args[2]!, dout, inp, weight, M, K, N);
        for (let i = 0; i < 3; i++) {
          if (i === skip) expect(bufs[i]!.every((v) => v === 0)).toBe(true);
          else expect(same(bufs[i]!, full[i]!)).toBe(true);
        }
      }
    });
  }

  for (const isa of native.supportedIsas()) {
    native.setIsa(isa);
    if (native.hasBf16()) continue;
    test(`${isa}: without BF16 the bf16 entry points give the fp32 kernels' bytes`, () => {
      native.setIsa(isa);
      expect(native.hasBf16()).toBe(false);
      for (const [M, K, N] of [[3, 5, 7], [67, 127, 255], [2, 1000, 100]] as const) {
        const rand = seededUniform(M * 3 + K * 5 + N * 7);
        const inp = randomArray(M * K, rand), weight = randomArray(N * K, rand);
        const bias = randomArray(N, rand), dout = randomArray(M * N, rand);
        const a = new Float32Array(M * N), b = new Float32Array(M * N);
        native.matmulForward(a, inp, weight, bias, M, K, N);
        native.matmulForwardBf16(b, inp, weight, bias, M, K, N);
        expect(same(a, b)).toBe(true);
        const g1 = [new Float32Array(M * K).fill(1), new Float32Array(N * K).fill(2), new Float32Array(N).fill(3)];
        const g2 = g1.map((g) => g.slice());
        native.matmulBackward(g1[0]!, g1[1]!, g1[2]!, dout, inp, weight, M, K, N);
        native.matmulBackwardBf16(g2[0]!, g2[1]!, g2[2]!, dout, inp, weight, M, K, N);
        for (let i = 0; i < 3; i++) expect(same(g1[i]!, g2[i]!)).toBe(true);
      }
    });
  }
  native.setIsa(best);
});
