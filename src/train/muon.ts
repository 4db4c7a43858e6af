/**
 * Muon for the 2-D hidden matrices of each block (attn.qkv, attn.proj, mlp.fc, mlp.proj weights):
 * Nesterov momentum, then the update direction orthogonalised by a Newton–Schulz iteration, scaled
 * by Moonshot's rule so that its RMS matches AdamW's and the same learning rate and decoupled weight
 * decay serve both. The momentum lives in AdamW's first-moment buffer at the matrix's offsets.
 * Tensors that stack several of the model's matrices (q, k and v; SwiGLU's gate and up) are
 * orthogonalised one matrix at a time, as the separate matrices they are.
 *
 * Every product runs on the matmul kernels (bf16 operands where the run's precision is bf16) and
 * every scaled sum on tv_axpby: nothing here loops over a matrix's elements.
 */
import { axpby, newtonSchulz } from "../native.ts";
import type { Precision } from "../model/gpt.ts";
import { type Architecture, fcRows, type TensorSpec } from "../model/layout.ts";

export const MUON_MOMENTUM = 0.95;
export const NS_STEPS = 5;
/** The quintic's coefficients (modded-nanogpt): fast growth of small singular values, ending in a
 * band around 1 rather than at exactly 1. */
export const NS_COEFFICIENTS = [3.4445, -4.775, 2.0315] as const;

const HIDDEN = /^h\.\d+\.(attn\.qkv|attn\.proj|mlp\.fc|mlp\.proj)\.weight$/;

/** The tensors Muon updates; everything else (embeddings, LM head, norms, biases) stays on AdamW. */
export function isHiddenMatrix(spec: TensorSpec): boolean {
  return spec.shape.length === 2 && HIDDEN.test(spec.name);
}

/**
 * How many matrices a hidden tensor stacks by rows: q, k and v in attn.qkv, SwiGLU's gate and up in a
 * Llama block's mlp.fc. One iteration over the stack would orthogonalise them against each other
 * (and give each a third or a half of the rank): separately, each gets a full-rank update.
 */
export function stackedMatrices(spec: TensorSpec, arch: Architecture): number {
  if (spec.name.endsWith(".attn.qkv.weight")) return 3;
  if (spec.name.endsWith(".mlp.fc.weight")) return fcRows(arch) / arch.d_ff;
  return 1;
}

/** Moonshot's rule: an orthogonal rows×cols matrix times this has about AdamW's update RMS (0.2). */
export function muonScale(rows: number, cols: number): number {
  return 0.2 * Math.sqrt(Math.max(rows, cols));
}

/**
 * The Newton–Schulz iteration for many matrices at once, in place (tv_newton_schulz). For rows ≤ cols
 * it is X ← aX + (bA + cA²)X with A = XXᵀ; for rows > cols the same on Xᵀ, written as
 * X ← aX + X(bA + cA²) with A = XᵀX, so no matrix is ever transposed. The products run on the matmul
 * engine (bf16 operands where the run's precision is bf16), each matrix whole on one thread: the
 * hidden matrices are too small to split across threads well.
 */
export class NewtonSchulz {
  private static readonly coefficients = Float32Array.from(NS_COEFFICIENTS);
  private readonly xs: Float32Array[];
  private readonly rows: Int32Array;
  private readonly cols: Int32Array;

  /** The matrices each run() takes, in place; claimed largest first, which balances the threads. */
  constructor(matrices: readonly { x: Float32Array; rows: number; cols: number }[], private readonly precision: Precision = "fp32") {
    const order = [...matrices].sort((p, q) => q.rows * q.cols - p.rows * p.cols);
    this.xs = order.map((m) => m.x.subarray(0, m.rows * m.cols));
    this.rows = Int32Array.from(order, (m) => m.rows);
    this.cols = Int32Array.from(order, (m) => m.cols);
  }

  /** Every matrix divided by its Frobenius norm, then iterated NS_STEPS times, in place. */
  run(): void {
    if (this.xs.length === 0) return;
    newtonSchulz(this.xs, this.rows, this.cols, NS_STEPS, NewtonSchulz.coefficients, this.precision === "bf16");
  }
}

/** One matrix x[rows·cols] orthogonalised in place. */
export function orthogonalize(x: Float32Array, rows: number, cols: number, precision: Precision = "fp32"): void {
  new NewtonSchulz([{ x, rows, cols }], precision).run();
}

/** Muon over a set of hidden matrices of the flat parameter buffer. */
export class Muon {
  private readonly ns: NewtonSchulz;
  /** The update directions of every tensor, side by side (one Newton–Schulz call takes them all). */
  private readonly u: Float32Array;
  private readonly offsets: number[];
  /** Per tensor: the matrices it stacks (stackedMatrices), each one Newton–Schulz matrix. */
  private readonly stacks: number[];

  constructor(arch: Architecture, readonly tensors: readonly TensorSpec[], precision: Precision = "fp32") {
    this.stacks = tensors.map((t) => stackedMatrices(t, arch));
    this.offsets = [];
    let total = 0;
    for (const t of tensors) {
      this.offsets.push(total);
      total += t.size;
    }
    this.u = new Float32Array(Math.max(1, total));
    this.ns = new NewtonSchulz(tensors.flatMap((t, i) => {
      const stack = this.stacks[i]!, rows = t.shape[0]! / stack, cols = t.shape[1]!, size = rows * cols;
      return Array.from({ length: stack }, (_, k) => {
        const at = this.offsets[i]! + k * size;
        return { x: this.u.subarray(at, at + size), rows, cols };
      });
    }), precision);
  }

  /**
   * One step for every matrix: buf = μ·buf + g, u = g + μ·buf (Nesterov), O = NS(u / ‖u‖_F),
   * p = p − lr·(scale·O + wd·p), with g = gradScale·grads (clipping) and `momentum` the flat
   * first-moment buffer. With `clearGrads`, the matrices' gradients are left at 0.
   */
  step(
    params: Float32Array, momentum: Float32Array, grads: Float32Array, gradScale: number, lr: number, weightDecay: number,
    clearGrads: boolean,
  ): void {
    this.tensors.forEach((t, i) => {
      const end = t.offset + t.size, n = t.size;
      const g = grads.subarray(t.offset, end), buf = momentum.subarray(t.offset, end);
      const u = this.u.subarray(this.offsets[i]!, this.offsets[i]! + n);
      axpby(buf, buf, g, n, MUON_MOMENTUM, gradScale);
      axpby(u, g, buf, n, gradScale, MUON_MOMENTUM);
      if (clearGrads) g.fill(0);
    });
    this.ns.run();
    this.tensors.forEach((t, i) => {
      const n = t.size, p = params.subarray(t.offset, t.offset + n);
      const u = this.u.subarray(this.offsets[i]!, this.offsets[i]! + n);
      const wd = t.decay ? weightDecay : 0;
      axpby(p, p, u, n, 1 - lr * wd, -lr * muonScale(t.shape[0]! / this.stacks[i]!, t.shape[1]!));
    });
  }
}
