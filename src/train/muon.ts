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
import {
  axpby, matmulBackward, matmulBackwardBf16, matmulForward, matmulForwardBf16, sumSquares,
} from "../native.ts";
import type { Precision } from "../model/gpt.ts";
import { type Architecture, fcRows, type TensorSpec } from "../model/layout.ts";

export const MUON_MOMENTUM = 0.95;
export const NS_STEPS = 5;
/** The quintic's coefficients (modded-nanogpt): fast growth of small singular values, ending in a
 * band around 1 rather than at exactly 1. */
export const NS_COEFFICIENTS = [3.4445, -4.775, 2.0315] as const;
const NORM_EPS = 1e-7;

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
 * The Newton–Schulz iteration in place, with scratch for matrices up to a size. For rows ≤ cols it
 * is X ← aX + (bA + cA²)X with A = XXᵀ; for rows > cols the same on Xᵀ, written as
 * X ← aX + X(bA + cA²) with A = XᵀX, so no matrix is ever transposed: the three products are the
 * kernels' x·Wᵀ (forward), dout·W (backward's dinp) and doutᵀ·x (backward's dweight).
 */
export class NewtonSchulz {
  private readonly y: Float32Array;
  private readonly a: Float32Array;
  private readonly a2: Float32Array;
  private readonly mmF: typeof matmulForward;
  private readonly mmB: typeof matmulBackward;

  constructor(maxElements: number, maxSide: number, precision: Precision = "fp32") {
    this.y = new Float32Array(maxElements);
    this.a = new Float32Array(maxSide * maxSide);
    this.a2 = new Float32Array(maxSide * maxSide);
    this.mmF = precision === "bf16" ? matmulForwardBf16 : matmulForward;
    this.mmB = precision === "bf16" ? matmulBackwardBf16 : matmulBackward;
  }

  /** Scratch for every matrix in `shapes`. */
  static forShapes(shapes: readonly (readonly number[])[], precision: Precision = "fp32"): NewtonSchulz {
    let elements = 1, side = 1;
    for (const [r, c] of shapes) {
      elements = Math.max(elements, r! * c!);
      side = Math.max(side, Math.min(r!, c!));
    }
    return new NewtonSchulz(elements, side, precision);
  }

  /** x[rows·cols] is divided by its Frobenius norm, then iterated NS_STEPS times, in place. */
  orthogonalize(x: Float32Array, rows: number, cols: number): void {
    const n = rows * cols, s = Math.min(rows, cols), ss = s * s;
    const [qa, qb, qc] = NS_COEFFICIENTS;
    const { y, a, a2, mmF, mmB } = this;
    axpby(x, x, x, n, 1 / (Math.sqrt(sumSquares(x.subarray(0, n))) + NORM_EPS), 0);
    for (let k = 0; k < NS_STEPS; k++) {
      if (rows <= cols) {
        mmF(a, x, x, null, rows, cols, rows); // A = X·Xᵀ
      } else {
        a.fill(0, 0, ss); // the dweight product accumulates
        mmB(null, a, null, x, x, x, rows, cols, cols); // A = Xᵀ·X
      }
      mmF(a2, a, a, null, s, s, s); // A·Aᵀ = A² (A is symmetric)
      axpby(a2, a, a2, ss, qb, qc); // B = bA + cA²
      if (rows <= cols) mmB(y, null, null, a2, x, x, rows, cols, rows); // Y = B·X
      else mmF(y, x, a2, null, rows, cols, cols); // Y = X·Bᵀ = X·B
      axpby(x, x, y, n, qa, 1); // X = aX + Y
    }
  }
}

/** Muon over a set of hidden matrices of the flat parameter buffer. */
export class Muon {
  private readonly ns: NewtonSchulz;
  private readonly u: Float32Array;
  /** Per tensor: the matrices it stacks (stackedMatrices). */
  private readonly stacks: number[];

  constructor(arch: Architecture, readonly tensors: readonly TensorSpec[], precision: Precision = "fp32") {
    this.stacks = tensors.map((t) => stackedMatrices(t, arch));
    this.ns = NewtonSchulz.forShapes(tensors.map((t, i) => [t.shape[0]! / this.stacks[i]!, t.shape[1]!]), precision);
    this.u = new Float32Array(Math.max(1, ...tensors.map((t) => t.size)));
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
    const u = this.u;
    this.tensors.forEach((t, i) => {
      const [rows, cols] = t.shape as [number, number];
      const stack = this.stacks[i]!, r = rows / stack, size = r * cols;
      const end = t.offset + t.size, n = t.size;
      const g = grads.subarray(t.offset, end), buf = momentum.subarray(t.offset, end), p = params.subarray(t.offset, end);
      axpby(buf, buf, g, n, MUON_MOMENTUM, gradScale);
      axpby(u, g, buf, n, gradScale, MUON_MOMENTUM);
      if (clearGrads) g.fill(0);
      for (let k = 0; k < stack; k++) this.ns.orthogonalize(u.subarray(k * size, (k + 1) * size), r, cols);
      const wd = t.decay ? weightDecay : 0;
      axpby(p, p, u, n, 1 - lr * wd, -lr * muonScale(r, cols));
    });
  }
}
