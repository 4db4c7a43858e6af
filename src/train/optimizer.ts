/**
 * AdamW over the one flat parameter buffer: global gradient-norm clipping, then one kernel call per
 * run of neighbouring tensors that share a weight-decay setting (matrices decay; biases and norms do
 * not). The moments m and v are flat buffers in the same layout, saved in every checkpoint.
 */
import { adamwStep, sumSquares } from "../native.ts";
import { type Architecture, parameterCount, tensorSpecs } from "../model/layout.ts";

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

export class AdamW {
  readonly m: Float32Array;
  readonly v: Float32Array;
  private readonly runs: DecayRun[] = [];

  constructor(arch: Architecture, moments?: { m: Float32Array; v: Float32Array } | null) {
    const n = parameterCount(arch);
    this.m = moments?.m ?? new Float32Array(n);
    this.v = moments?.v ?? new Float32Array(n);
    if (this.m.length !== n || this.v.length !== n) throw new Error("AdamW: moments do not match the parameter count");
    for (const s of tensorSpecs(arch)) {
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
    // Clipping is a factor on the gradients that the AdamW kernel applies as it reads them.
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
  }
}
