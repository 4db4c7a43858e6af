/**
 * Which stage a run trains, and its plan. LoopOS's rules, made exact:
 *  - a checkpoint whose stage was interrupted, given the same data and no new --epochs,
 *    --learning-rate or --optimizer (nor another batch size, sequence length, seed or optimizer setting), CONTINUES that stage: same
 *    plan, same position, so the result is bit-identical to a run that was never stopped;
 *  - anything else starts a NEW stage: --epochs more epochs on --data, at --learning-rate (default:
 *    the previous stage's peak), with the optimizer's moments carried over.
 */
import type { Precision, StageRecord, TrainingPlan, TrainingState } from "../checkpoint/index.ts";
import type { OptionName, TrainOptions } from "./options.ts";
import { decaySteps, defaultLearningRate, defaultMinLr, defaultWarmup } from "./schedule.ts";

/** A time-budget stage without --epochs: the step count the budget can at most fix. */
const UNBOUNDED_STEPS = 10_000_000;

/** AdamW's betas and epsilon: fixed (GPT-2 / nanoGPT values), recorded in every plan. */
export const ADAM_BETA1 = 0.9;
export const ADAM_BETA2 = 0.95;
export const ADAM_EPS = 1e-8;

export interface StageDecision {
  state: TrainingState;
  continued: boolean;
  /** Why a checkpoint's interrupted stage was not continued (null when it was, or nothing to continue). */
  notContinuedBecause: string | null;
}

export interface StageShape {
  batchSize: number;
  seqLen: number;
}

/** Batch size and sequence length for this run: given, else the previous plan's, else the defaults. */
export function stageShape(o: TrainOptions, given: Set<OptionName>, previous: TrainingState | null): StageShape {
  return {
    batchSize: given.has("batchSize") || !previous ? o.batchSize : previous.plan.batch_size,
    seqLen: given.has("maxLength") || !previous ? o.maxLength : previous.plan.seq_len,
  };
}

export function decideStage(args: {
  previous: TrainingState | null;
  options: TrainOptions;
  given: Set<OptionName>;
  dataFingerprint: string;
  stepsPerEpoch: number;
  shape: StageShape;
  rngState: string;
  /** --precision with auto resolved for this CPU. */
  precision: Precision;
  /** The model's width, for the default learning rate of a first stage. */
  dModel: number;
}): StageDecision {
  const { previous: prev, options: o, given, dataFingerprint, stepsPerEpoch, shape, precision } = args;
  let notContinuedBecause: string | null = null;
  if (prev && !prev.stage_complete) {
    const reasons: string[] = [];
    if (prev.plan.data_fingerprint !== dataFingerprint) reasons.push("--data is not the data it was training on");
    if (given.has("epochs")) reasons.push("--epochs was given");
    if (given.has("learningRate")) reasons.push("--learning-rate was given");
    if (given.has("optimizer")) reasons.push("--optimizer was given");
    if (shape.batchSize !== prev.plan.batch_size) reasons.push("--batch-size differs");
    if (shape.seqLen !== prev.plan.seq_len) reasons.push("--max-length differs");
    if (given.has("seed") && o.seed !== prev.plan.seed) reasons.push("--seed differs");
    if (given.has("weightDecay") && o.weightDecay !== prev.plan.weight_decay) reasons.push("--weight-decay differs");
    if (given.has("gradClip") && o.gradClip !== prev.plan.grad_clip) reasons.push("--grad-clip differs");
    if (given.has("warmupSteps") && o.warmupSteps !== prev.plan.warmup_steps) reasons.push("--warmup-steps differs");
    if (given.has("precision") && o.precision !== "auto" && precision !== (prev.plan.precision ?? "fp32")) reasons.push("--precision differs");
    if (given.has("schedule") && o.schedule !== prev.plan.schedule) reasons.push("--schedule differs");
    if (given.has("decayFraction")) reasons.push("--decay-fraction was given");
    if (given.has("timeBudget")) reasons.push("--time-budget was given");
    if (reasons.length === 0 && stepsPerEpoch !== prev.plan.steps_per_epoch) reasons.push("--val-fraction splits the data differently");
    if (reasons.length === 0) return { state: structuredClone(prev), continued: true, notContinuedBecause: null };
    notContinuedBecause = reasons.join(", ");
  }

  const peak = given.has("learningRate") ? o.learningRate! : prev ? prev.plan.peak_lr : defaultLearningRate(args.dModel);
  // With a time budget, epochs are only an upper bound (none given: as good as none) until the
  // budget fixes the step count (src/train/budget.ts).
  const budget = given.has("timeBudget") ? o.timeBudget : undefined;
  const epochs = budget !== undefined && !given.has("epochs") ? Math.max(1, Math.ceil(UNBOUNDED_STEPS / stepsPerEpoch)) : o.epochs;
  const total = epochs * stepsPerEpoch;
  const schedule = given.has("schedule") || !prev ? o.schedule : prev.plan.schedule;
  const keep = <K extends OptionName, V>(name: K, value: V, previous: V | undefined): V =>
    given.has(name) || previous === undefined ? value : previous;
  const optimizer = keep("optimizer", o.optimizer, prev ? (prev.plan.optimizer ?? "adamw") : undefined);
  const plan: TrainingPlan = {
    data_fingerprint: dataFingerprint,
    epochs,
    peak_lr: peak,
    min_lr: defaultMinLr(peak, schedule),
    warmup_steps: given.has("warmupSteps") ? Math.min(o.warmupSteps!, total) : defaultWarmup(total),
    total_steps: total,
    steps_per_epoch: stepsPerEpoch,
    batch_size: shape.batchSize,
    seq_len: shape.seqLen,
    weight_decay: keep("weightDecay", o.weightDecay, prev?.plan.weight_decay),
    beta1: ADAM_BETA1,
    beta2: ADAM_BETA2,
    eps: ADAM_EPS,
    grad_clip: keep("gradClip", o.gradClip, prev?.plan.grad_clip),
    seed: keep("seed", o.seed, prev?.plan.seed),
    schedule,
    // Keys only where they apply, so a cosine plan reads (and hashes) as it always did.
    ...(schedule === "wsd" ? { decay_steps: decaySteps(total, o.decayFraction) } : {}),
    ...(budget !== undefined ? { time_budget_s: budget } : {}),
    precision: keep("precision", precision, prev?.plan.precision),
    // Absent means AdamW, so an AdamW plan reads (and hashes) as it always did.
    ...(optimizer === "muon" ? { optimizer } : {}),
  };
  const stage = prev ? prev.stage + 1 : 0;
  const history: StageRecord[] = [...(prev?.history ?? []), { stage, data_fingerprint: dataFingerprint, epochs, peak_lr: peak }];
  const state: TrainingState = {
    global_step: prev?.global_step ?? 0,
    stage,
    epoch: 0,
    step_in_epoch: 0,
    tokens_seen: prev?.tokens_seen ?? 0,
    rng_state: prev?.rng_state ?? args.rngState,
    stage_complete: false,
    plan,
    history,
  };
  return { state, continued: false, notContinuedBecause };
}

/** Steps within the current stage already done. */
export function stageStep(state: TrainingState): number {
  return state.epoch * state.plan.steps_per_epoch + state.step_in_epoch;
}
