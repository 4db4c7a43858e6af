/**
 * The learning rate as a pure function of (step within the stage, plan). Nothing about it lives
 * outside the checkpoint, so a resumed stage continues the curve exactly where it stopped.
 *  - cosine: linear warmup to peak_lr, then cosine decay to min_lr at the stage's last step;
 *  - wsd (warmup–stable–decay): linear warmup, the peak held, then a linear decay to min_lr over the
 *    last decay_steps. The stable phase does not depend on the stage's length, so a stage that is
 *    cut short (or continued with more data as a new stage) was never half-decayed.
 */
import type { Schedule, TrainingPlan } from "../checkpoint/index.ts";

export type SchedulePlan = Pick<TrainingPlan, "peak_lr" | "min_lr" | "warmup_steps" | "total_steps"> & Partial<Pick<TrainingPlan, "schedule" | "decay_steps">>;

export function learningRate(stageStep: number, plan: SchedulePlan): number {
  const { peak_lr: peak, min_lr: min, warmup_steps: warmup, total_steps: total } = plan;
  if (stageStep < warmup) return (peak * (stageStep + 1)) / warmup;
  if (plan.schedule === "wsd") {
    const decay = plan.decay_steps ?? 0;
    const decayStart = Math.max(warmup, total - decay);
    if (stageStep < decayStart) return peak;
    // The first decay step is just below the peak and the last just above min_lr: no step is spent at
    // either end twice.
    const progress = Math.min(1, (stageStep - decayStart + 1) / (total - decayStart + 1));
    return peak + (min - peak) * progress;
  }
  const decaySteps = Math.max(1, total - warmup);
  const progress = Math.min(1, (stageStep - warmup) / decaySteps);
  return min + 0.5 * (peak - min) * (1 + Math.cos(Math.PI * progress));
}

/**
 * The peak learning rate of a first stage when none is given: inversely proportional to the model's
 * width (the larger a matrix, the more each step of the same size moves its outputs), pinned at
 * 2e-3 for d_model 256 by a sweep of time-budget runs on two corpora (docs/performance.md).
 */
export function defaultLearningRate(dModel: number): number {
  return (2e-3 * 256) / dModel;
}

/** Warmup when none is asked for: 5% of the stage, at most 200 steps. */
export function defaultWarmup(totalSteps: number): number {
  return Math.min(200, Math.ceil(totalSteps * 0.05));
}

/** The floor of the decay: a tenth of the peak for cosine, as in GPT-style recipes; wsd decays to a
 * hundredth, close to the linear-to-zero decay that budget-limited runs do best with. */
export function defaultMinLr(peakLr: number, schedule: Schedule = "cosine"): number {
  return schedule === "wsd" ? peakLr / 100 : peakLr / 10;
}

/** wsd: how many of the stage's steps decay. */
export function decaySteps(totalSteps: number, decayFraction: number): number {
  return Math.max(1, Math.round(totalSteps * decayFraction));
}
