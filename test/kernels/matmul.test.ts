// tv_matmul_forward / tv_matmul_backward on every ISA level: against a float64 reference for awkward
// shapes (edge tiles, several K blocks, the small-M path), against finite differences of the forward,
// the += and NULL-skipping contract, and bit-identical results for any thread count.
import { afterAll, describe, expect, test } from "bun:test";
import * as native from "../../src/native.ts";
import { seededUniform, randomArray, type Ref, refDbias, refDinp, refDweight, refForward, refLoss } from "./ref_matmul.ts";

const GUARD = 37; // extra elements after every output, which must stay untouched
const SENTINEL = 12345.5;

function withGuard(n: number, fill: (i: number) => number = () => 0): Float32Array {
  const a = new Float32Array(n + GUARD);
  for (let i = 0; i < n; i++) a[i] = fill(i);
  a.fill(SENTINEL, n);
  return a;
}

/** Largest |got − (base + ref)| over the float32 rounding bound (depth+2)·2⁻²³·Σ|terms|; ≤ 1 passes. */
function worstError(got: Float32Array, ref: Ref, depth: number, base?: Float32Array): number {
  let worst = 0;
  const unit = (depth + 3) * 1.2e-7;
  for (let i = 0; i < ref.value.length; i++) {
    const b = base ? base[i]! : 0;
    const want = b + ref.value[i]!;
    const bound = unit * (ref.absSum[i]! + Math.abs(b)) + 1e-30;
    const err = Math.abs(got[i]! - want) / bound;
    if (!(err <= worst)) worst = Number.isNaN(err) ? Infinity : err;
  }
  return worst;
}

function guardIntact(a: Float32Array, n: number): boolean {
  for (let i = n; i < a.length; i++) if (a[i] !== SENTINEL) return false;
  return true;
}

const best = native.isaBest();
const threadsAtStart = native.getThreads();
afterAll(() => {
  native.setIsa(best);
  native.setThreads(threadsAtStart);
});

// [M, K, N]: ones and odd primes (edge tiles everywhere), M ≤ 4 (the matrix-vector path), depths past
// one K block (128 / 256), rows past one MC block, and wide outputs that split by columns; N a
// multiple of 1024 with K ≥ 512 takes dweight's packed-A path (a dout stride of 4 KiB multiples).
const SHAPES: [number, number, number][] = [
  [1, 1, 1], [1, 17, 31], [3, 5, 7], [4, 67, 3], [5, 3, 67], [7, 1, 9], [17, 31, 67], [31, 257, 17],
  [67, 127, 255], [127, 255, 31], [257, 67, 127], [6, 300, 64], [200, 129, 65], [13, 513, 130],
  [2, 1000, 100], [9, 40, 2100], [389, 520, 1024], [11, 13, 2048],
];

describe("matmul", () => {
  for (const isa of native.supportedIsas()) {
    for (const [M, K, N] of SHAPES) {
      test(`${isa}: forward M=${M} K=${K} N=${N}, with and without bias, matches float64`, () => {
        native.setIsa(isa);
        const rand = seededUniform(M * 7919 + K * 31 + N);
        const inp = randomArray(M * K, rand, 2);
        const weight = randomArray(N * K, rand, 0.5);
        const bias = randomArray(N, rand);
        for (const b of [bias, null]) {
          const out = withGuard(M * N, () => NaN); // old content must not leak into the result
          native.matmulForward(out, inp, weight, b, M, K, N);
          expect(worstError(out, refForward(inp, weight, b, M, K, N), K)).toBeLessThanOrEqual(1);
          expect(guardIntact(out, M * N)).toBe(true);
        }
      });

      test(`${isa}: backward M=${M} K=${K} N=${N} overwrites dinp, accumulates dweight and dbias`, () => {
        native.setIsa(isa);
        const rand = seededUniform(M * 104729 + K * 17 + N * 3);
        const inp = randomArray(M * K, rand, 2);
        const weight = randomArray(N * K, rand, 0.5);
        const dout = randomArray(M * N, rand);
        const dweight0 = randomArray(N * K, rand);
        const dbias0 = randomArray(N, rand);
        const dinp = withGuard(M * K, () => NaN); // a scratch gradient: its old content must not leak in
        const dweight = withGuard(N * K, (i) => dweight0[i]!);
        const dbias = withGuard(N, (i) => dbias0[i]!);
        native.matmulBackward(dinp, dweight, dbias, dout, inp, weight, M, K, N);
        expect(worstError(dinp, refDinp(dout, weight, M, K, N), N)).toBeLessThanOrEqual(1);
        expect(worstError(dweight, refDweight(dout, inp, M, K, N), M, dweight0)).toBeLessThanOrEqual(1);
        expect(worstError(dbias, refDbias(dout, M, N), M, dbias0)).toBeLessThanOrEqual(1);
        expect(guardIntact(dinp, M * K) && guardIntact(dweight, N * K) && guardIntact(dbias, N)).toBe(true);
      });
    }

    test(`${isa}: backward agrees with finite differences of the forward (loss = Σ out·R)`, () => {
      native.setIsa(isa);
      const [M, K, N] = [9, 23, 19];
      const rand = seededUniform(4242);
      const inp = randomArray(M * K, rand, 2);
      const weight = randomArray(N * K, rand);
      const bias = randomArray(N, rand);
      const R = randomArray(M * N, rand);
      const dinp = new Float32Array(M * K);
      const dweight = new Float32Array(N * K);
      const dbias = new Float32Array(N);
      native.matmulBackward(dinp, dweight, dbias, R, inp, weight, M, K, N);
      const h = 1e-3;
      // Central differences in float64 of a function linear in each argument: exact up to rounding.
      const fd = (arr: Float32Array, i: number): number => {
        const x = Float64Array.from(arr);
        const at = (v: number): number => {
          x[i] = v;
          const args = { inp: arr === inp ? x : inp, weight: arr === weight ? x : weight, bias: arr === bias ? x : bias };
          return refLoss(args.inp, args.weight, args.bias, R, M, K, N);
        };
        const v0 = arr[i]!;
        return (at(v0 + h) - at(v0 - h)) / (2 * h);
      };
      for (let t = 0; t < 12; t++) {
        const i = Math.floor((rand() + 0.5) * M * K);
        expect(Math.abs(dinp[i]! - fd(inp, i))).toBeLessThan(1e-4);
        const j = Math.floor((rand() + 0.5) * N * K);
        expect(Math.abs(dweight[j]! - fd(weight, j))).toBeLessThan(1e-4);
        const b = Math.floor((rand() + 0.5) * N);
        expect(Math.abs(dbias[b]! - fd(bias, b))).toBeLessThan(1e-4);
      }
    });

    test(`${isa}: a NULL gradient is skipped and the others are still computed`, () => {
      native.setIsa(isa);
      const [M, K, N] = [20, 33, 18];
      const rand = seededUniform(99);
      const inp = randomArray(M * K, rand);
      const weight = randomArray(N * K, rand);
      const dout = randomArray(M * N, rand);
      const full = [new Float32Array(M * K), new Float32Array(N * K), new Float32Array(N)] as const;
      native.matmulBackward(full[0], full[1], full[2], dout, inp, weight, M, K, N);
      for (let skip = 0; skip < 3; skip++) {
        const bufs = [new Float32Array(M * K), new Float32Array(N * K), new Float32Array(N)];
        const args = bufs.map((b, i) => (i === skip ? null : b));
        native.matmulBackward(args[0]!, args[1]!, args[2]!, dout, inp, weight, M, K, N);
        for (let i = 0; i < 3; i++) {
          if (i === skip) expect(bufs[i]!.every((v) => v === 0)).toBe(true);
          else expect(Buffer.from(bufs[i]!.buffer).equals(Buffer.from(full[i]!.buffer))).toBe(true);
        }
      }
      // Only dbias: the weight and inp pointers may then be absent too.
      const dbias = new Float32Array(N);
      expect(() => native.matmulBackward(null, null, dbias, dout, inp, weight, M, K, N)).not.toThrow();
      expect(Buffer.from(dbias.buffer).equals(Buffer.from(full[2].buffer))).toBe(true);
    });

    test(`${isa}: 1, 2 and 3 threads give identical bytes`, () => {
      native.setIsa(isa);
      for (const [M, K, N] of [[203, 301, 517], [2, 700, 333], [61, 130, 2050], [300, 530, 1024]] as const) {
        const rand = seededUniform(M + K + N);
        const inp = randomArray(M * K, rand);
        const weight = randomArray(N * K, rand);
        const bias = randomArray(N, rand);
        const dout = randomArray(M * N, rand);
        const run = (threads: number): Buffer[] => {
          native.setThreads(threads);
          const out = new Float32Array(M * N);
          native.matmulForward(out, inp, weight, bias, M, K, N);
          const dinp = new Float32Array(M * K).fill(0.25);
          const dweight = new Float32Array(N * K).fill(-0.5);
          const dbias = new Float32Array(N).fill(1);
          native.matmulBackward(dinp, dweight, dbias, dout, inp, weight, M, K, N);
          return [out, dinp, dweight, dbias].map((a) => Buffer.from(a.buffer));
        };
        const one = run(1);
        for (const threads of [2, 3]) {
          const many = run(threads);
          for (let i = 0; i < one.length; i++) expect(many[i]!.equals(one[i]!)).toBe(true);
        }
      }
      native.setThreads(threadsAtStart);
    });
  }
});
