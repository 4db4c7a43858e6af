// Plain float64 reference of the linear layer's three products (the layout of csrc/train_vocab.h):
//   out[M,N] = inp[M,K]·weight[N,K]ᵀ + bias;  dinp = dout·weight;  dweight = doutᵀ·inp;  dbias = Σ_m dout.
// Each function also returns, per output element, Σ|term| — the scale a float32 result's rounding
// error is measured against.
import { Xoshiro128 } from "../../src/base/rng.ts";

type Vec = ArrayLike<number>;

export interface Ref {
  value: Float64Array;
  absSum: Float64Array;
}

export function refForward(inp: Vec, weight: Vec, bias: Vec | null, M: number, K: number, N: number): Ref {
  const value = new Float64Array(M * N);
  const absSum = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = bias ? bias[n]! : 0;
      let a = bias ? Math.abs(bias[n]!) : 0;
      for (let k = 0; k < K; k++) {
        const t = inp[m * K + k]! * weight[n * K + k]!;
        s += t;
        a += Math.abs(t);
      }
      value[m * N + n] = s;
      absSum[m * N + n] = a;
    }
  }
  return { value, absSum };
}

/** dinp[M,K] = dout[M,N]·weight[N,K] (without any prior content). */
export function refDinp(dout: Vec, weight: Vec, M: number, K: number, N: number): Ref {
  const value = new Float64Array(M * K);
  const absSum = new Float64Array(M * K);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      const d = dout[m * N + n]!;
      for (let k = 0; k < K; k++) {
        const t = d * weight[n * K + k]!;
        value[m * K + k] += t;
        absSum[m * K + k] += Math.abs(t);
      }
    }
  }
  return { value, absSum };
}

/** dweight[N,K] = dout[M,N]ᵀ·inp[M,K]. */
export function refDweight(dout: Vec, inp: Vec, M: number, K: number, N: number): Ref {
  const value = new Float64Array(N * K);
  const absSum = new Float64Array(N * K);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      const d = dout[m * N + n]!;
      for (let k = 0; k < K; k++) {
        const t = d * inp[m * K + k]!;
        value[n * K + k] += t;
        absSum[n * K + k] += Math.abs(t);
      }
    }
  }
  return { value, absSum };
}

/** dbias[N] = Σ_m dout[m,:]. */
export function refDbias(dout: Vec, M: number, N: number): Ref {
  const value = new Float64Array(N);
  const absSum = new Float64Array(N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      value[n] += dout[m * N + n]!;
      absSum[n] += Math.abs(dout[m * N + n]!);
    }
  }
  return { value, absSum };
}

/** loss = Σ out·R with out from the float64 forward: the function finite differences are taken of. */
export function refLoss(inp: Vec, weight: Vec, bias: Vec | null, R: Vec, M: number, K: number, N: number): number {
  const out = refForward(inp, weight, bias, M, K, N).value;
  let loss = 0;
  for (let i = 0; i < M * N; i++) loss += out[i]! * R[i]!;
  return loss;
}

/** The matmul tests' seeded data: uniform in [-0.5, 0.5). */
export function seededUniform(seed: number): () => number {
  const rng = Xoshiro128.fromSeed(seed);
  return () => rng.nextFloat32() - 0.5;
}

export function randomArray(n: number, rand: () => number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rand() * scale;
  return a;
}
