/**
 * --time-budget: the stage's step count is fixed before its first step, from step times measured
 * on the run's own model and data, so that training, validation, saves and the final decay all end
 * within the budget (counted from the process's start: startup and tokenizing are part of it). The
 * fixed plan is saved with every checkpoint, so a resumed stage continues it exactly.
 */
import type { TrainingPlan } from "../checkpoint/index.ts";
import type { TokenWindows } from "../data/windows.ts";
import type { GPT } from "../model/gpt.ts";
import { type Architecture, parameterCount } from "../model/layout.ts";
import { Optimizer } from "./optimizer.ts";
import { decaySteps, defaultWarmup } from "./schedule.ts";

/** Seconds each kind of work takes, measured (steps, validation batches) or estimated (saves). */
export interface WorkCosts {
  stepSeconds: number;
  valBatchSeconds: number;
  saveSeconds: number;
}

/** What the loop needs to keep a budget stage on time (see refitToPace). */
export interface BudgetPace {
  /** process.uptime() by which the stage must have ended. */
  deadline: number;
  /** Seconds kept back for the final validation, save and noise. */
  reserve: number;
  /** The most steps the stage may have (--epochs). */
  maxSteps: number;
  decayFraction: number;
}

export interface BudgetInputs {
  /** Seconds of the budget still left when the plan is fixed. */
  secondsLeft: number;
  /** The whole budget: a small part of it is kept back for the time's noise. */
  budgetSeconds: number;
  costs: WorkCosts;
  /** Batches in one validation pass (0 when nothing is validated). */
  valBatches: number;
  evalEvery: number;
  saveEvery: number;
  /** --warmup-steps when given; otherwise the default for the fitted length. */
  warmupSteps?: number;
  /** wsd: the share of the stage that decays. */
  decayFraction: number;
}

/** The plan with total_steps (and what depends on it) fitted to the budget; a pure function. */
export function fitPlanToBudget(plan: TrainingPlan, b: BudgetInputs): TrainingPlan {
  const val = b.valBatches * b.costs.valBatchSeconds;
  // Each step carries its share of the validations and saves that come with steps.
  const perStep =
    b.costs.stepSeconds +
    (b.evalEvery > 0 ? val / b.evalEvery : 0) +
    val / plan.steps_per_epoch +
    (b.saveEvery > 0 ? b.costs.saveSeconds / b.saveEvery : 0);
  const reserve = budgetReserve(b);
  const fits = Math.floor((b.secondsLeft - reserve) / perStep);
  const total = Math.max(1, Math.min(plan.total_steps, fits));
  const fitted: TrainingPlan = {
    ...plan,
    epochs: Math.ceil(total / plan.steps_per_epoch),
    total_steps: total,
    warmup_steps: b.warmupSteps !== undefined ? Math.min(b.warmupSteps, total) : defaultWarmup(total),
  };
  if (plan.schedule === "wsd") fitted.decay_steps = decaySteps(total, b.decayFraction);
  return fitted;
}

/** At the end: one validation and the final save, plus a margin for the machine's noise. */
export function budgetReserve(b: Pick<BudgetInputs, "valBatches" | "costs" | "budgetSeconds">): number {
  return b.valBatches * b.costs.valBatchSeconds + b.costs.saveSeconds + 0.015 * b.budgetSeconds + 0.25;
}

/**
 * A wsd stage's length fitted again to the pace the run really keeps (steps, validations and saves
 * as they came), while the learning rate is still at its peak: no step taken so far had a rate that
 * depended on the length, so the stage stays what a run with this plan from the start computes.
 * Returns null when the plan stays as it is.
 */
export function refitToPace(plan: TrainingPlan, done: number, secondsPerStep: number, secondsLeft: number, pace: BudgetPace): TrainingPlan | null {
  if (plan.schedule !== "wsd" || done < plan.warmup_steps) return null;
  if (done >= plan.total_steps - (plan.decay_steps ?? 0)) return null; // the decay has begun
  const fits = Math.floor((secondsLeft - pace.reserve) / secondsPerStep);
  const total = Math.max(done + 1, Math.min(pace.maxSteps, done + fits));
  if (total === plan.total_steps) return null;
  // The decay may not reach back over steps already taken at the peak.
  const decay = Math.min(decaySteps(total, pace.decayFraction), total - done);
  return { ...plan, total_steps: total, epochs: Math.ceil(total / plan.steps_per_epoch), decay_steps: decay };
}

/**
 * The costs on this machine, now: one warm-up step (it pays for first-touching the buffers), then
 * timed steps (forward, backward, gradient norm and the plan's optimizer update on copies, so the
 * run's own state is untouched; one, more when steps are fast, median) and one validation batch.
 * Saves are estimated from their size. A rough step time is enough: the budget is part of the run's
 * clock, and a wsd stage is fitted again to its real pace while at its peak (refitToPace).
 */
export function measureCosts(model: GPT, arch: Architecture, windows: TokenWindows, plan: TrainingPlan): WorkCosts {
  const B = plan.batch_size, T = plan.seq_len;
  model.reserve(B, T);
  const { tokens, targets } = model.inputs;
  const rows = Math.min(B, windows.trainCount);
  const idx = new Uint32Array(rows);
  for (let i = 0; i < rows; i++) idx[i] = i;
  windows.fill(idx, tokens, targets);
  const scratch = new Optimizer(arch, null, { kind: plan.optimizer ?? "adamw", precision: plan.precision ?? "fp32" });
  const params = model.params.slice();
  const step = () => {
    const started = performance.now();
    model.zeroGrad();
    model.forward(rows, T, true);
    model.backward();
    const norm = Optimizer.gradNorm(model.grads);
    scratch.step(params, model.grads, norm, 0, 1, plan, { clearGrads: true });
    return (performance.now() - started) / 1000;
  };
  step();
  // Fast steps are timed more often: their times scatter more.
  const times: number[] = [];
  const started0 = performance.now();
  while (times.length < 1 || (times.length < 30 && performance.now() - started0 < 150)) times.push(step());
  times.sort((a, b) => a - b);
  const started = performance.now();
  model.evaluate(rows, T);
  const valBatchSeconds = (performance.now() - started) / 1000;
  // Parameters and both moments, written and synced.
  const saveSeconds = 0.05 + (parameterCount(arch) * 12) / 300e6;
  return { stepSeconds: times[times.length >> 1]!, valBatchSeconds, saveSeconds };
}
