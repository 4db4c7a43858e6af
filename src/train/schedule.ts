/**
 * The learning rate as a pure function of (step within the stage, plan): linear warmup to peak_lr,
 * then cosine decay to min_lr at the stage's last step. Nothing about it lives outside the
 * checkpoint, so a resumed stage continues the curve exactly where it stopped.
 */
import type { TrainingPlan } from "../checkpoint/index.ts";

export function learningRate(stageStep: number, plan: Pick<TrainingPlan, "peak_lr" | "min_lr" | "warmup_steps" | "total_steps">): number {
  const { peak_lr: peak, min_lr: min, warmup_steps: warmup, total_steps: total } = plan;
  if (stageStep < warmup) return (peak * (stageStep + 1)) / warmup;
  const decaySteps = Math.max(1, total - warmup);
  const progress = Math.min(1, (stageStep - warmup) / decaySteps);
  return min + 0.5 * (peak - min) * (1 + Math.cos(Math.PI * progress));
}

/** Warmup when none is asked for: 5% of the stage, at most 200 steps. */
export function defaultWarmup(totalSteps: number): number {
  return Math.min(200, Math.ceil(totalSteps * 0.05));
}

/** The floor of the cosine: a tenth of the peak, as in GPT-style recipes. */
export function defaultMinLr(peakLr: number): number {
  return peakLr / 10;
}
