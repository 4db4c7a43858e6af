// Plain float64 reference implementations of the layer kernels (csrc/isa/*.c), written the
// straightforward way (attention materializes the whole T×T score matrix), plus the comparison and
// finite-difference helpers the kernel tests share. Shapes and semantics as in csrc/train_vocab.h.
import * as native from "../../src/native.ts";
import type { RandomData } from "./random_data.ts";

type Vec = ArrayLike<number>;

// ---- comparison helpers --------------------------------------------------------------------

/** Worst |got − (base + want)| / (atol + rtol·|base + want|) over all elements; ≤ 1 passes. NaN → Infinity. */
export function worst(got: Vec, want: Vec, atol: number, rtol: number, base?: Vec): number {
  if (got.length < want.length) return Infinity;
  let w = 0;
  for (let i = 0; i < want.length; i++) {
    const target = (base ? base[i]! : 0) + want[i]!;
    const e = Math.abs(got[i]! - target) / (atol + rtol * Math.abs(target));
    if (!(e <= w)) w = Number.isNaN(e) ? Infinity : e;
  }
  return w;
}

/** Fails the running test with a label naming the case when an error ratio from worst() exceeds 1. */
export function within(err: number, label: string): void {
  if (!(err <= 1)) throw new Error(`${label}: error ${err.toPrecision(3)} × tolerance`);
}

/** Largest |x| in a vector (to scale absolute tolerances). */
export function maxAbs(x: Vec): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]!));
  return m;
}

export function sameBytes(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** Run fn with the pool at n threads, restoring the previous count. */
export function withThreads<T>(n: number, fn: () => T): T {
  const before = native.getThreads();
  native.setThreads(n);
  try {
    return fn();
  } finally {
    native.setThreads(before);
  }
}

/** Run fn once per ISA level this machine supports, restoring the best level afterwards. */
export function forEachIsa(fn: (isa: native.Isa) => void): void {
  const best = native.isaBest();
  try {
    for (const isa of native.supportedIsas()) {
      native.setIsa(isa);
      fn(isa);
    }
  } finally {
    native.setIsa(best);
  }
}

/**
 * Central finite differences of loss(x) = Σ f(x)·R at the given indices of x (float64 throughout).
 * h is relative to max(1, |x_i|).
 */
export function finiteDiff(f: (x: Float64Array) => Float64Array, x: Vec, R: Vec, indices: number[], h = 1e-5): Map<number, number> {
  const xs = Float64Array.from(x);
  const loss = () => {
    const out = f(xs);
    let s = 0;
    for (let i = 0; i < out.length; i++) s += out[i]! * R[i]!;
    return s;
  };
  const grads = new Map<number, number>();
  for (const i of indices) {
    const x0 = xs[i]!;
    const step = h * Math.max(1, Math.abs(x0));
    xs[i] = x0 + step;
    const up = loss();
    xs[i] = x0 - step;
    const down = loss();
    xs[i] = x0;
    grads.set(i, (up - down) / (2 * step));
  }
  return grads;
}

/** Some distinct indices in [0, n): all when n is small, else a seeded sample. */
export function sampleIndices(n: number, count: number, rand: () => number): number[] {
  if (n <= count) return Array.from({ length: n }, (_, i) => i);
  const set = new Set<number>();
  while (set.size < count) set.add(Math.floor(rand() * n));
  return [...set];
}

/** Worst |got_i − fd_i| / (atol + rtol·|fd_i|) over the finite-difference points. */
export function worstFd(got: Vec, fd: Map<number, number>, atol: number, rtol: number, base?: Vec): number {
  let w = 0;
  for (const [i, g] of fd) {
    const e = Math.abs(got[i]! - (base ? base[i]! : 0) - g) / (atol + rtol * Math.abs(g));
    if (!(e <= w)) w = Number.isNaN(e) ? Infinity : e;
  }
  return w;
}

// ---- layernorm -----------------------------------------------------------------------------

export const LN_EPS = 1e-5;

export function layernormForward(inp: Vec, weight: Vec, bias: Vec, M: number, C: number) {
  const out = new Float64Array(M * C), mean = new Float64Array(M), rstd = new Float64Array(M);
  for (let m = 0; m < M; m++) {
    let mu = 0;
    for (let i = 0; i < C; i++) mu += inp[m * C + i]!;
    mu /= C;
    let v = 0;
    for (let i = 0; i < C; i++) v += (inp[m * C + i]! - mu) ** 2;
    v /= C;
    const s = 1 / Math.sqrt(v + LN_EPS);
    for (let i = 0; i < C; i++) out[m * C + i] = (inp[m * C + i]! - mu) * s * weight[i]! + bias[i]!;
    mean[m] = mu;
    rstd[m] = s;
  }
  return { out, mean, rstd };
}

export function layernormBackward(dout: Vec, inp: Vec, weight: Vec, M: number, C: number) {
  const { mean, rstd } = layernormForward(inp, weight, new Float64Array(C), M, C);
  const dinp = new Float64Array(M * C), dweight = new Float64Array(C), dbias = new Float64Array(C);
  for (let m = 0; m < M; m++) {
    let mg = 0, mgn = 0;
    for (let i = 0; i < C; i++) {
      const n = (inp[m * C + i]! - mean[m]!) * rstd[m]!;
      const g = dout[m * C + i]! * weight[i]!;
      mg += g;
      mgn += g * n;
      dweight[i] += dout[m * C + i]! * n;
      dbias[i] += dout[m * C + i]!;
    }
    mg /= C;
    mgn /= C;
    for (let i = 0; i < C; i++) {
      const n = (inp[m * C + i]! - mean[m]!) * rstd[m]!;
      dinp[m * C + i] = rstd[m]! * (dout[m * C + i]! * weight[i]! - mg - n * mgn);
    }
  }
  return { dinp, dweight, dbias };
}

// ---- GELU (tanh approximation) ----------------------------------------------------------------

const GELU_K0 = Math.sqrt(2 / Math.PI);
const GELU_K1 = 0.044715;

export function gelu(x: number): number {
  return 0.5 * x * (1 + Math.tanh(GELU_K0 * (x + GELU_K1 * x ** 3)));
}

export function geluGrad(x: number): number {
  const th = Math.tanh(GELU_K0 * (x + GELU_K1 * x ** 3));
  return 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * GELU_K0 * (1 + 3 * GELU_K1 * x * x);
}

export function geluForward(inp: Vec): Float64Array {
  return Float64Array.from(inp, gelu);
}

// ---- RMSNorm ---------------------------------------------------------------------------------

export function rmsnormForward(inp: Vec, weight: Vec, M: number, C: number, eps: number) {
  const out = new Float64Array(M * C), rstd = new Float64Array(M);
  for (let m = 0; m < M; m++) {
    let ss = 0;
    for (let i = 0; i < C; i++) ss += inp[m * C + i]! ** 2;
    const s = 1 / Math.sqrt(ss / C + eps);
    for (let i = 0; i < C; i++) out[m * C + i] = inp[m * C + i]! * s * weight[i]!;
    rstd[m] = s;
  }
  return { out, rstd };
}

export function rmsnormBackward(dout: Vec, inp: Vec, weight: Vec, M: number, C: number, eps: number) {
  const { rstd } = rmsnormForward(inp, weight, M, C, eps);
  const dinp = new Float64Array(M * C), dweight = new Float64Array(C);
  for (let m = 0; m < M; m++) {
    const s = rstd[m]!;
    let mgn = 0;
    for (let i = 0; i < C; i++) {
      const n = inp[m * C + i]! * s;
      mgn += dout[m * C + i]! * weight[i]! * n;
      dweight[i] += dout[m * C + i]! * n;
    }
    mgn /= C;
    for (let i = 0; i < C; i++) dinp[m * C + i] = s * (dout[m * C + i]! * weight[i]! - inp[m * C + i]! * s * mgn);
  }
  return { dinp, dweight };
}

// ---- RoPE (HuggingFace rotate-half) --------------------------------------------------------------

/** qkv[B,T,3C] with the q and k blocks of row (b,t) turned to position pos0 + t; sign −1 turns back
 * (the backward). The angles, and their cos and sin, in float64. */
export function rope(qkv: Vec, B: number, T: number, C: number, NH: number, pos0: number, theta: number, sign = 1): Float64Array {
  const out = Float64Array.from(qkv);
  const hs = C / NH, half = hs / 2;
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++)
      for (let h = 0; h < 2 * NH; h++) {
        const base = (b * T + t) * 3 * C + h * hs;
        for (let i = 0; i < half; i++) {
          const a = (pos0 + t) * Math.pow(theta, (-2 * i) / hs);
          const c = Math.cos(a), s = sign * Math.sin(a);
          const x0 = qkv[base + i]!, x1 = qkv[base + half + i]!;
          out[base + i] = x0 * c - x1 * s;
          out[base + half + i] = x1 * c + x0 * s;
        }
      }
  return out;
}

// ---- SwiGLU ----------------------------------------------------------------------------------

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/** out[N,H] = silu(gate)·up from inp[N,2H] = gate | up per row. */
export function swigluForward(inp: Vec, N: number, H: number): Float64Array {
  const out = new Float64Array(N * H);
  for (let n = 0; n < N; n++)
    for (let i = 0; i < H; i++) {
      const g = inp[n * 2 * H + i]!, u = inp[n * 2 * H + H + i]!;
      out[n * H + i] = g * sigmoid(g) * u;
    }
  return out;
}

/** dinp[N,2H] = [dgate | dup]. */
export function swigluBackward(inp: Vec, dout: Vec, N: number, H: number): Float64Array {
  const dinp = new Float64Array(N * 2 * H);
  for (let n = 0; n < N; n++)
    for (let i = 0; i < H; i++) {
      const g = inp[n * 2 * H + i]!, u = inp[n * 2 * H + H + i]!, d = dout[n * H + i]!;
      const s = sigmoid(g);
      dinp[n * 2 * H + i] = d * u * s * (1 + g * (1 - s));
      dinp[n * 2 * H + H + i] = d * g * s;
    }
  return dinp;
}

// ---- residual --------------------------------------------------------------------------------

export function residualForward(a: Vec, b: Vec): Float64Array {
  return Float64Array.from({ length: a.length }, (_, i) => a[i]! + b[i]!);
}

// ---- encoder ---------------------------------------------------------------------------------

export function encoderForward(tokens: Vec, wte: Vec, wpe: Vec, B: number, T: number, C: number): Float64Array {
  const out = new Float64Array(B * T * C);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++) {
      const tok = tokens[b * T + t]!;
      for (let i = 0; i < C; i++) out[(b * T + t) * C + i] = wte[tok * C + i]! + wpe[t * C + i]!;
    }
  return out;
}

export function encoderBackward(dout: Vec, tokens: Vec, B: number, T: number, C: number, V: number, maxT: number) {
  const dwte = new Float64Array(V * C), dwpe = new Float64Array(maxT * C);
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++) {
      const tok = tokens[b * T + t]!;
      for (let i = 0; i < C; i++) {
        dwte[tok * C + i] += dout[(b * T + t) * C + i]!;
        dwpe[t * C + i] += dout[(b * T + t) * C + i]!;
      }
    }
  return { dwte, dwpe };
}

// ---- attention (materializes the full T×T matrices) -------------------------------------------

/** qkv for B = 1 whose scores grow with the key index, so that an online softmax's running max
 * changes in nearly every block: queries ≈ 4, keys ≈ 0.3·t, values uniform. */
export function risingScoreQkv(T: number, C: number, r: RandomData): Float32Array {
  const qkv = new Float32Array(T * 3 * C);
  for (let t = 0; t < T; t++)
    for (let i = 0; i < C; i++) {
      qkv[t * 3 * C + i] = 4 + r.uniform(-0.1, 0.1);
      qkv[t * 3 * C + C + i] = t * 0.3 + r.uniform(-0.1, 0.1);
      qkv[t * 3 * C + 2 * C + i] = r.uniform();
    }
  return qkv;
}

export function attentionForward(qkv: Vec, B: number, T: number, C: number, H: number) {
  const hs = C / H, scale = 1 / Math.sqrt(hs);
  const out = new Float64Array(B * T * C), lse = new Float64Array(B * H * T);
  const P = new Float64Array(B * H * T * T); // P[b,h,i,j], zero above the diagonal
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let i = 0; i < T; i++) {
        const q = (b * T + i) * 3 * C + h * hs;
        const s = new Float64Array(i + 1);
        let mx = -Infinity;
        for (let j = 0; j <= i; j++) {
          const k = (b * T + j) * 3 * C + C + h * hs;
          let d = 0;
          for (let x = 0; x < hs; x++) d += qkv[q + x]! * qkv[k + x]!;
          s[j] = d * scale;
          mx = Math.max(mx, s[j]!);
        }
        let sum = 0;
        for (let j = 0; j <= i; j++) sum += Math.exp(s[j]! - mx);
        lse[(b * H + h) * T + i] = mx + Math.log(sum);
        const prow = ((b * H + h) * T + i) * T;
        for (let j = 0; j <= i; j++) {
          const p = Math.exp(s[j]! - mx) / sum;
          P[prow + j] = p;
          const v = (b * T + j) * 3 * C + 2 * C + h * hs;
          for (let x = 0; x < hs; x++) out[(b * T + i) * C + h * hs + x] += p * qkv[v + x]!;
        }
      }
  return { out, lse, P };
}

export function attentionBackward(dout: Vec, qkv: Vec, B: number, T: number, C: number, H: number): Float64Array {
  const hs = C / H, scale = 1 / Math.sqrt(hs);
  const { P } = attentionForward(qkv, B, T, C, H);
  const dqkv = new Float64Array(B * T * 3 * C);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let i = 0; i < T; i++) {
        const prow = ((b * H + h) * T + i) * T;
        const g = (b * T + i) * C + h * hs;
        // dP[i,j] = dout[i]·v[j];  dS = P∘(dP − Σ_j P·dP)
        const dP = new Float64Array(i + 1);
        let rowsum = 0;
        for (let j = 0; j <= i; j++) {
          const v = (b * T + j) * 3 * C + 2 * C + h * hs;
          let d = 0;
          for (let x = 0; x < hs; x++) d += dout[g + x]! * qkv[v + x]!;
          dP[j] = d;
          rowsum += P[prow + j]! * d;
        }
        const q = (b * T + i) * 3 * C + h * hs;
        for (let j = 0; j <= i; j++) {
          const p = P[prow + j]!;
          const dS = p * (dP[j]! - rowsum) * scale;
          const k = (b * T + j) * 3 * C + C + h * hs;
          const v = k + C;
          for (let x = 0; x < hs; x++) {
            dqkv[q + x] += dS * qkv[k + x]!;
            dqkv[k + x] += dS * qkv[q + x]!;
            dqkv[v + x] += p * dout[g + x]!;
          }
        }
      }
  return dqkv;
}

// ---- cross-entropy ---------------------------------------------------------------------------

export function crossEntropy(logits: Vec, targets: Vec, M: number, V: number, dloss: number) {
  const losses = new Float64Array(M), dlogits = new Float64Array(M * V);
  for (let m = 0; m < M; m++) {
    const t = targets[m]!;
    if (t < 0) continue;
    let mx = -Infinity;
    for (let i = 0; i < V; i++) mx = Math.max(mx, logits[m * V + i]!);
    let sum = 0;
    for (let i = 0; i < V; i++) sum += Math.exp(logits[m * V + i]! - mx);
    losses[m] = mx + Math.log(sum) - logits[m * V + t]!;
    for (let i = 0; i < V; i++) dlogits[m * V + i] = (Math.exp(logits[m * V + i]! - mx) / sum - (i === t ? 1 : 0)) * dloss;
  }
  return { losses, dlogits };
}

// ---- optimizer -------------------------------------------------------------------------------

export interface AdamW {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/** One AdamW step in float64; returns new params, m, v. */
export function adamwStep(params: Vec, m: Vec, v: Vec, grads: Vec, h: AdamW, t: number) {
  const n = params.length;
  const p2 = new Float64Array(n), m2 = new Float64Array(n), v2 = new Float64Array(n);
  const bc1 = 1 - h.beta1 ** t, bc2 = 1 - h.beta2 ** t;
  for (let i = 0; i < n; i++) {
    const g = grads[i]!;
    m2[i] = h.beta1 * m[i]! + (1 - h.beta1) * g;
    v2[i] = h.beta2 * v[i]! + (1 - h.beta2) * g * g;
    const update = m2[i]! / bc1 / (Math.sqrt(v2[i]! / bc2) + h.eps);
    p2[i] = params[i]! - h.lr * (update + h.weightDecay * params[i]!);
  }
  return { params: p2, m: m2, v: v2 };
}

export function sumSquares(x: Vec): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i]! * x[i]!;
  return s;
}

/** One new query per head against a KV cache of T positions ([T, C] keys and values): causal softmax
 * attention in float64, as tv_attention_decode computes it. */
export function referenceDecode(q: Float32Array, k: Float32Array, v: Float32Array, T: number, C: number, H: number): Float64Array {
  const hs = C / H;
  const out = new Float64Array(C);
  for (let h = 0; h < H; h++) {
    const scores = new Float64Array(T);
    let max = -Infinity;
    for (let t = 0; t < T; t++) {
      let s = 0;
      for (let i = 0; i < hs; i++) s += q[h * hs + i]! * k[t * C + h * hs + i]!;
      scores[t] = s / Math.sqrt(hs);
      max = Math.max(max, scores[t]!);
    }
    let denom = 0;
    for (let t = 0; t < T; t++) denom += Math.exp(scores[t]! - max);
    for (let t = 0; t < T; t++) {
      const w = Math.exp(scores[t]! - max) / denom;
      for (let i = 0; i < hs; i++) out[h * hs + i] += w * v[t * C + h * hs + i]!;
    }
  }
  return out;
}
