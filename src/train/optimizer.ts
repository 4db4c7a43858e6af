/**
 * The optimizer over the one flat parameter buffer: global gradient-norm clipping, then AdamW with
 * one kernel call per run of neighbouring tensors that share a weight-decay setting (matrices decay;
 * biases and norms do not). With Muon, the blocks' hidden matrices take Muon's step instead (muon.ts)
 * and keep its momentum where AdamW keeps m (their v stays 0), so a checkpoint holds the same two
 * flat buffers, in the same layout, whichever optimizer trained it.
 */
import { adamwStep, sumSquares } from "../native.ts";
import type { Precision } from "../model/gpt.ts";
import { type Architecture, parameterCount, type TensorSpec, tensorSpecs } from "../model/layout.ts";
import { isHiddenMatrix, Muon } from "./muon.ts";

interface DecayRun {
  start: number;
  end: number;
  decay: boolean;
}

export interface OptimizerHyper {
  beta1: number;
  beta2: number;
  eps: number;
  weight_decay: number;
  grad_clip: number;
}

export type OptimizerKind = "adamw" | "muon";

export interface OptimizerOptions {
  /** adamw: AdamW everywhere; muon: Muon for the blocks' hidden matrices, AdamW for the rest. */
  kind?: OptimizerKind;
  /** Muon's Newton–Schulz products run in the model's precision. */
  precision?: Precision;
}

export class Optimizer {
  readonly m: Float32Array;
  readonly v: Float32Array;
  readonly kind: OptimizerKind;
  private readonly runs: DecayRun[] = [];
  private readonly muon: Muon | null;
  private readonly hidden: TensorSpec[];

  constructor(arch: Architecture, moments?: { m: Float32Array; v: Float32Array } | null, options: OptimizerOptions = {}) {
    const n = parameterCount(arch);
    this.m = moments?.m ?? new Float32Array(n);
    this.v = moments?.v ?? new Float32Array(n);
    if (this.m.length !== n || this.v.length !== n) throw new Error("Optimizer: moments do not match the parameter count");
    this.kind = options.kind ?? "adamw";
    const specs = tensorSpecs(arch);
    this.hidden = specs.filter(isHiddenMatrix);
    this.muon = this.kind === "muon" ? new Muon(arch, this.hidden, options.precision ?? "fp32") : null;
    for (const s of specs) {
      if (this.muon && isHiddenMatrix(s)) continue;
      const last = this.runs[this.runs.length - 1];
      if (last && last.decay === s.decay && last.end === s.offset) last.end = s.offset + s.size;
      else this.runs.push({ start: s.offset, end: s.offset + s.size, decay: s.decay });
    }
  }

  /** √Σg² over every gradient (double precision, thread-count independent). */
  static gradNorm(grads: Float32Array): number {
    return Math.sqrt(sumSquares(grads));
  }

  /**
   * Update `params` with `grads` clipped to norm `grad_clip` (0 = off) given their norm (the kernel
   * scales each gradient as it reads it). `grads` is left as it was, or with `clearGrads` set to 0
   * as it is read, ready for the next backward to accumulate into.
   * `t` is the step count for bias correction (1 for the first step the moments see).
   */
  step(
    params: Float32Array, grads: Float32Array, gradNorm: number, lr: number, t: number, h: OptimizerHyper,
    options: { clearGrads?: boolean } = {},
  ): void {
    // Clipping is a factor on the gradients that the kernels apply as they read them.
    const gradScale = h.grad_clip > 0 && gradNorm > h.grad_clip ? Math.fround(h.grad_clip / gradNorm) : 1;
    for (const r of this.runs) {
      adamwStep(
        params.subarray(r.start, r.end), this.m.subarray(r.start, r.end), this.v.subarray(r.start, r.end),
        grads.subarray(r.start, r.end),
        {
          lr, beta1: h.beta1, beta2: h.beta2, eps: h.eps, weightDecay: r.decay ? h.weight_decay : 0, gradScale,
          clearGrads: options.clearGrads ?? false,
        },
        t,
      );
    }
    this.muon?.step(params, this.m, grads, gradScale, lr, h.weight_decay, options.clearGrads ?? false);
  }

  /** The tensors Muon updates (none with AdamW). */
  get muonTensors(): readonly TensorSpec[] {
    return this.muon ? this.muon.tensors : [];
  }

  /** Zero both moments of the hidden matrices: a stage that changes the optimizer starts them afresh
   * (m there is AdamW's first moment or Muon's momentum, which differ in scale). */
  restartHiddenMoments(): void {
    for (const s of this.hidden) {
      this.m.fill(0, s.offset, s.offset + s.size);
      this.v.fill(0, s.offset, s.offset + s.size);
    }
  }
}

/** AdamW on every tensor. */
export class AdamW extends Optimizer {
  constructor(arch: Architecture, moments?: { m: Float32Array; v: Float32Array } | null) {
    super(arch, moments, { kind: "adamw" });
  }
}
