/**
 * Muon: the Newton–Schulz iteration on the matmul kernels against float64 (the same iteration, and
 * the singular values it should end with, from eigenvalues found by Jacobi rotations: no SVD), on
 * square, wide, tall and odd shapes at every ISA level; which tensors take Muon's step; the step's
 * size; and a model that learns with it.
 */
import { describe, expect, test } from "bun:test";
import { GPT } from "../../src/model/gpt.ts";
import { initParameters } from "../../src/model/init.ts";
import { type Architecture, tensorSpecs } from "../../src/model/layout.ts";
import { hasBf16, setThreads } from "../../src/native.ts";
import { Xoshiro128 } from "../../src/base/rng.ts";
import { isHiddenMatrix, Muon, MUON_MOMENTUM, muonScale, NS_COEFFICIENTS, NS_STEPS, orthogonalize, stackedMatrices } from "../../src/train/muon.ts";
import { AdamW, Optimizer } from "../../src/train/optimizer.ts";
import * as ref from "../kernels/reference.ts";
import { RandomData } from "../kernels/random_data.ts";

const SHAPES: [number, number][] = [[64, 64], [48, 160], [160, 48], [37, 91], [91, 37], [1, 17], [17, 1], [5, 3], [33, 33]];

/** A well-conditioned rows×cols matrix: 2·√max(rows, cols) on the diagonal plus uniform noise,
 * whose spectral norm stays below that, so every singular value is well away from 0. */
function wellConditioned(rows: number, cols: number, seed: number): Float32Array {
  const x = new RandomData(seed).floats(rows * cols);
  const alpha = 2 * Math.sqrt(Math.max(rows, cols));
  for (let i = 0; i < Math.min(rows, cols); i++) x[i * cols + i]! += alpha;
  return x;
}

/** C[r×r] = X·Xᵀ (X is r×c) in float64. */
function gram(x: ArrayLike<number>, r: number, c: number): Float64Array {
  const g = new Float64Array(r * r);
  for (let i = 0; i < r; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let k = 0; k < c; k++) s += x[i * c + k]! * x[j * c + k]!;
      g[i * r + j] = g[j * r + i] = s;
    }
  }
  return g;
}

function transpose(x: ArrayLike<number>, r: number, c: number): Float64Array {
  const t = new Float64Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) t[j * r + i] = x[i * c + j]!;
  return t;
}

/** Eigenvalues of a symmetric n×n matrix by cyclic Jacobi rotations, ascending. */
function jacobiEigenvalues(sym: Float64Array, n: number): number[] {
  const a = Float64Array.from(sym);
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p * n + q]! ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q]!;
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (a[q * n + q]! - a[p * n + p]!) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const cs = 1 / Math.sqrt(t * t + 1), sn = t * cs;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p]!, akq = a[k * n + q]!;
          a[k * n + p] = cs * akp - sn * akq;
          a[k * n + q] = sn * akp + cs * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k]!, aqk = a[q * n + k]!;
          a[p * n + k] = cs * apk - sn * aqk;
          a[q * n + k] = sn * apk + cs * aqk;
        }
      }
    }
  }
  return Array.from({ length: n }, (_, i) => a[i * n + i]!).sort((x, y) => x - y);
}

/** Singular values of an r×c matrix, ascending (from its smaller Gram matrix). */
function singularValues(x: ArrayLike<number>, r: number, c: number): number[] {
  const small = r <= c ? gram(x, r, c) : gram(transpose(x, r, c), c, r);
  return jacobiEigenvalues(small, Math.min(r, c)).map((e) => Math.sqrt(Math.max(0, e)));
}

/** The iteration in float64, on X/‖X‖_F, written the textbook way (rows ≤ cols, else on Xᵀ). */
function newtonSchulz64(x32: Float32Array, rows: number, cols: number): Float64Array {
  const [a, b, c] = NS_COEFFICIENTS.map((v) => Math.fround(v));
  const tall = rows > cols;
  const r = tall ? cols : rows, n = tall ? rows : cols;
  let x = tall ? transpose(x32, rows, cols) : Float64Array.from(x32);
  let norm = 0;
  for (const v of x) norm += v * v;
  norm = Math.sqrt(norm) + 1e-7;
  x = x.map((v) => v / norm);
  for (let k = 0; k < NS_STEPS; k++) {
    const A = gram(x, r, n);
    const B = new Float64Array(r * r);
    for (let i = 0; i < r; i++) {
      for (let j = 0; j < r; j++) {
        let s = 0;
        for (let l = 0; l < r; l++) s += A[i * r + l]! * A[l * r + j]!;
        B[i * r + j] = b * A[i * r + j]! + c * s;
      }
    }
    const next = new Float64Array(r * n);
    for (let i = 0; i < r; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let l = 0; l < r; l++) s += B[i * r + l]! * x[l * n + j]!;
        next[i * n + j] = a * x[i * n + j]! + s;
      }
    }
    x = next;
  }
  return tall ? transpose(x, r, n) : x;
}

/** The singular values the quintic maps σ/‖X‖_F to after NS_STEPS steps, ascending. */
function predictedSingularValues(x: Float32Array, rows: number, cols: number): number[] {
  const [a, b, c] = NS_COEFFICIENTS;
  const s = singularValues(x, rows, cols);
  const frob = Math.sqrt(s.reduce((acc, v) => acc + v * v, 0)) + 1e-7;
  return s.map((v) => {
    let y = v / frob;
    for (let k = 0; k < NS_STEPS; k++) y = a * y + b * y ** 3 + c * y ** 5;
    return y;
  }).sort((p, q) => p - q);
}

function worstAbs(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let w = 0;
  for (let i = 0; i < want.length; i++) w = Math.max(w, Math.abs(got[i]! - want[i]!));
  return Number.isNaN(w) ? Infinity : w;
}

/** ‖got − want‖_F / ‖want‖_F. */
function relativeError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let e = 0, w = 0;
  for (let i = 0; i < want.length; i++) {
    e += (got[i]! - want[i]!) ** 2;
    w += want[i]! ** 2;
  }
  return Number.isNaN(e) ? Infinity : Math.sqrt(e / w);
}

/** The quintic's band after five steps, for any start with σ/‖X‖_F in [0.002, 1]. */
const BAND: [number, number] = [0.68, 1.21];

function orthogonalized(x: Float32Array, rows: number, cols: number, precision: "fp32" | "bf16"): Float32Array {
  const out = x.slice();
  orthogonalize(out, rows, cols, precision);
  return out;
}

describe("Newton–Schulz on the matmul kernels", () => {
  test("fp32: the float64 iteration's result and singular values, every shape, every ISA level", () => {
    ref.forEachIsa((isa) => {
      SHAPES.forEach(([rows, cols], i) => {
        const label = `${isa} ${rows}×${cols}`;
        const x = wellConditioned(rows, cols, 100 + i);
        const got = orthogonalized(x, rows, cols, "fp32");
        ref.within(worstAbs(got, newtonSchulz64(x, rows, cols)) / 2e-5, `${label} elements`);
        const sv = singularValues(got, rows, cols);
        ref.within(worstAbs(sv, predictedSingularValues(x, rows, cols)) / 1e-4, `${label} singular values`);
        for (const s of sv) expect([label, s > BAND[0] && s < BAND[1]]).toEqual([label, true]);
      });
    });
  }, 30_000); // float64 references at every ISA level: seconds on a busy machine

  test("bf16 products: singular values in the band, within a few percent of the float64 iteration", () => {
    SHAPES.forEach(([rows, cols], i) => {
      const label = `${rows}×${cols}`;
      const x = wellConditioned(rows, cols, 100 + i);
      const got = orthogonalized(x, rows, cols, "bf16");
      // bf16 operands carry 8 significant bits; the quintic's steep start amplifies their rounding.
      ref.within(relativeError(got, newtonSchulz64(x, rows, cols)) / 0.08, `${label} elements`);
      for (const s of singularValues(got, rows, cols)) expect([label, s > BAND[0] - 0.05 && s < BAND[1] + 0.05]).toEqual([label, true]);
      if (!hasBf16()) expect(ref.sameBytes(got, orthogonalized(x, rows, cols, "fp32"))).toBe(true);
    });
  });

  test("the same bytes on 1 and 2 threads", () => {
    for (const [rows, cols] of [[256, 1024], [768, 256]] as const) {
      const x = wellConditioned(rows, cols, 7);
      const go = () => orthogonalized(x, rows, cols, "fp32");
      expect(ref.sameBytes(ref.withThreads(1, go), ref.withThreads(2, go))).toBe(true);
    }
  });
});

const ARCH: Architecture = { d_model: 32, num_heads: 2, num_layers: 2, d_ff: 64, vocab_size: 20, max_seq_len: 16, tied_embeddings: true, attention_bias: true };
const HYPER = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.1, grad_clip: 1 };

describe("which tensors take Muon's step", () => {
  test("the four weight matrices of every block; never embeddings, the LM head, norms or biases", () => {
    for (const arch of [ARCH, { ...ARCH, num_layers: 3, tied_embeddings: false, attention_bias: false }]) {
      const hidden = tensorSpecs(arch).filter(isHiddenMatrix).map((s) => s.name);
      const want: string[] = [];
      for (let l = 0; l < arch.num_layers; l++) want.push(...["attn.qkv", "attn.proj", "mlp.fc", "mlp.proj"].map((n) => `h.${l}.${n}.weight`));
      expect(hidden).toEqual(want);
      expect(new Optimizer(arch, null, { kind: "muon" }).muonTensors.map((s) => s.name)).toEqual(want);
      expect(new AdamW(arch).muonTensors).toEqual([]);
    }
  });

  test("one step: the rest is AdamW's step to the byte; hidden matrices get momentum in m, v untouched, an update of RMS ≈ 0.2·lr", () => {
    const n = tensorSpecs(ARCH).at(-1)!.offset + tensorSpecs(ARCH).at(-1)!.size;
    const params = initParameters(ARCH, Xoshiro128.fromSeed(5));
    const grads = new RandomData(9).floats(n, -0.01, 0.01);
    const norm = AdamW.gradNorm(grads);
    const lr = 1e-3;
    const run = (opt: Optimizer) => {
      const p = params.slice(), g = grads.slice();
      opt.step(p, g, norm, lr, 1, HYPER, { clearGrads: true });
      return { p, g };
    };
    const adam = new AdamW(ARCH), muon = new Optimizer(ARCH, null, { kind: "muon" });
    const a = run(adam), m = run(muon);
    expect(m.g.every((v) => v === 0)).toBe(true); // cleared everywhere
    const scale = norm > HYPER.grad_clip ? Math.fround(HYPER.grad_clip / norm) : 1;
    for (const s of tensorSpecs(ARCH)) {
      const at = (x: Float32Array) => x.subarray(s.offset, s.offset + s.size);
      if (!isHiddenMatrix(s)) {
        expect([s.name, ref.sameBytes(at(m.p), at(a.p)), ref.sameBytes(at(muon.m), at(adam.m)), ref.sameBytes(at(muon.v), at(adam.v))])
          .toEqual([s.name, true, true, true]);
        continue;
      }
      expect([s.name, at(muon.v).every((v) => v === 0)]).toEqual([s.name, true]);
      // The first step's momentum is the (clipped) gradient itself.
      ref.within(worstAbs(at(muon.m), Array.from(at(grads), (g) => g * scale)) / 1e-9, `${s.name} momentum`);
      const rows = s.shape[0]! / stackedMatrices(s, ARCH), cols = s.shape[1]!;
      let sq = 0;
      const p0 = at(params), p1 = at(m.p);
      for (let i = 0; i < s.size; i++) sq += ((p1[i]! - p0[i]! * (1 - lr * HYPER.weight_decay)) / lr) ** 2;
      const rms = Math.sqrt(sq / s.size);
      // Singular values of O in the quintic's band, so its RMS is √(min/(rows·cols)) times about 1.
      const unit = muonScale(rows, cols) * Math.sqrt(Math.min(rows, cols) / (rows * cols));
      expect([s.name, rms > unit * BAND[0] && rms < unit * BAND[1]]).toEqual([s.name, true]);
      expect(unit).toBeCloseTo(0.2, 10);
    }
  });

  test("q, k and v, and SwiGLU's gate and up, are matrices of their own; GPT-2's fc and the projections one each", () => {
    const llama: Architecture = { ...ARCH, attention_bias: false, block: "llama" };
    for (const [arch, fc] of [[ARCH, 1], [llama, 2]] as const) {
      const stacks = Object.fromEntries(tensorSpecs(arch).filter(isHiddenMatrix).map((s) => [s.name, stackedMatrices(s, arch)]));
      expect(stacks).toMatchObject({ "h.0.attn.qkv.weight": 3, "h.0.attn.proj.weight": 1, "h.0.mlp.fc.weight": fc, "h.1.mlp.proj.weight": 1 });
    }
  });

  test("Nesterov momentum over two steps: m = μ·g₁ + g₂, the update from g₂ + μ·m, q, k and v orthogonalised apart", () => {
    const spec = tensorSpecs(ARCH).find(isHiddenMatrix)!;
    expect(spec.name).toBe("h.0.attn.qkv.weight");
    const muon = new Muon(ARCH, [spec]);
    const rows = spec.shape[0]! / 3, cols = spec.shape[1]!;
    const n = tensorSpecs(ARCH).at(-1)!.offset + tensorSpecs(ARCH).at(-1)!.size;
    const r = new RandomData(4);
    const g1 = r.floats(n), g2 = r.floats(n);
    const params = new Float32Array(n), mom = new Float32Array(n);
    muon.step(params, mom, g1.slice(), 1, 1, 0, false);
    const before = params.slice();
    muon.step(params, mom, g2.slice(), 1, 1, 0, false);
    const at = (x: Float32Array) => x.subarray(spec.offset, spec.offset + spec.size);
    const want = Array.from(at(g1), (g, i) => MUON_MOMENTUM * g + at(g2)[i]!);
    ref.within(worstAbs(at(mom), want) / 1e-6, "momentum");
    const direction = Float32Array.from(at(g2), (g, i) => g + MUON_MOMENTUM * at(mom)[i]!);
    const size = rows * cols;
    const o = new Float32Array(spec.size);
    for (let k = 0; k < 3; k++) o.set(orthogonalized(direction.subarray(k * size, (k + 1) * size), rows, cols, "fp32"), k * size);
    const step = Array.from(at(params), (p, i) => (at(before)[i]! - p) / muonScale(rows, cols));
    ref.within(worstAbs(step, o) / 1e-5, "update");
  });
});

test("loss goes down with Muon on learns.test.ts's sequence", () => {
  setThreads(1);
  const arch: Architecture = { d_model: 32, num_heads: 2, num_layers: 2, d_ff: 64, vocab_size: 20, max_seq_len: 16, tied_embeddings: true, attention_bias: true };
  const model = new GPT(arch, initParameters(arch, Xoshiro128.fromSeed(3)));
  const opt = new Optimizer(arch, null, { kind: "muon" });
  const B = 4, T = 16;
  model.reserve(B, T);
  const { tokens, targets } = model.inputs;
  const cycle = [3, 1, 4, 1, 5, 9, 2];
  const losses: number[] = [];
  for (let step = 1; step <= 150; step++) {
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) {
        tokens[b * T + t] = cycle[(b + step + t) % 7]!;
        targets[b * T + t] = cycle[(b + step + t + 1) % 7]!;
      }
    }
    model.zeroGrad();
    losses.push(model.forward(B, T, true));
    model.backward();
    opt.step(model.params, model.grads, AdamW.gradNorm(model.grads), 3e-3, step, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.01, grad_clip: 1 });
  }
  expect(losses[0]!).toBeGreaterThan(Math.log(20) * 0.8);
  expect(losses[losses.length - 1]!).toBeLessThan(0.3);
});
