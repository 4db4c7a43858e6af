/**
 * The training loop for one stage, from wherever its state says it is. Everything that decides the
 * math — data order (from seed, stage, epoch), learning rate (from the step), AdamW's step count
 * (the global step) — comes from the state, which every checkpoint saves, so a stage resumed from
 * any save point computes exactly what the uninterrupted run computed.
 */
import type { TrainingState } from "../checkpoint/index.ts";
import type { TokenWindows } from "../data/windows.ts";
import { windowOrder } from "../data/windows.ts";
import type { GPT } from "../model/gpt.ts";
import type { MetricsLog } from "./metrics.ts";
import { Optimizer } from "./optimizer.ts";
import type { TrainingProgress } from "./progress.ts";
import { Xoshiro128 } from "../base/rng.ts";
import { type BudgetPace, refitToPace } from "./budget.ts";
import { learningRate } from "./schedule.ts";
import { stageStep } from "./stage.ts";

export type SaveReason = "periodic" | "epoch" | "max-steps" | "signal" | "end";
export type StopReason = "complete" | "max-steps" | "signal";

export interface LoopParts {
  model: GPT;
  optimizer: Optimizer;
  windows: TokenWindows;
  /** Updated in place as training goes. */
  state: TrainingState;
  /** Stop after this many optimizer steps in this invocation (null: no limit). */
  maxSteps: number | null;
  /** Save every this many global steps (0: only at epoch ends, the end, and on signals). */
  saveEvery: number;
  progress: TrainingProgress;
  metrics: MetricsLog;
  save(reason: SaveReason): void;
  /** `epoch`: the epoch that ended, counted from 0 as the state counts them. */
  /** `steps`: the epoch's steps taken (fewer than steps_per_epoch when the stage ends inside it). */
  onEpochEnd(epoch: number, valLoss: number | null, steps: number): void;
  /** The signal that asked us to stop, if any (checked between steps). */
  stopRequested(): NodeJS.Signals | null;
  /** Mean validation loss now (null: nothing to validate on). */
  validate(): number | null;
  /** Also validate every this many global steps (0: only at epoch ends). */
  evalEvery: number;
  /** A stage fitted to a time budget in this run: kept on time as it goes (null: no budget). */
  pace: BudgetPace | null;
}

/** Loss or gradient norm stopped being a finite number: nothing of this step was applied. */
export class DivergedError extends Error {
  constructor(readonly step: number, readonly what: string) {
    super(`${what} at step ${step}`);
    this.name = "DivergedError";
  }
}

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

export function epochRng(seed: number, stage: number, epoch: number): Xoshiro128 {
  return Xoshiro128.derive(seed, stage, epoch, 0x0de7);
}

export async function trainStage(p: LoopParts): Promise<StopReason> {
  const { model, windows, state } = p;
  const plan = state.plan;
  const B = plan.batch_size, T = plan.seq_len;
  model.reserve(B, T);
  const { tokens, targets } = model.inputs;
  let stepsThisRun = 0;
  let dirty = false;
  const started = performance.now();
  let lastTick = started;
  // Shown tokens/s: the average since the first step of this run ended (the first step pays for
  // page faults and cache warm-up, and per-step rates flicker).
  let firstStepEnd = 0;
  let tokensAfterFirst = 0;
  // The optimizer clears the gradients as it reads them, so only the first step clears them itself.
  let gradsClear = false;
  // The training clock in metrics.jsonl: seconds since the process started, validation left out, so
  // curves of runs that validate more or less often compare.
  let validating = 0;
  const elapsed = () => Number((process.uptime() - validating).toFixed(3));
  const validate = () => {
    const started = process.uptime();
    const loss = p.validate();
    validating += process.uptime() - started;
    return loss;
  };

  const saveIfDirty = (reason: SaveReason) => {
    if (!dirty) return;
    p.metrics.flush();
    p.save(reason);
    dirty = false;
  };

  while (state.epoch < plan.epochs) {
    const order = windowOrder(windows.trainCount, epochRng(plan.seed, state.stage, state.epoch));
    // A stage fitted to a time budget may end inside its last epoch.
    while (state.step_in_epoch < plan.steps_per_epoch && stageStep(state) < plan.total_steps) {
      if (p.stopRequested()) {
        saveIfDirty("signal");
        return "signal";
      }
      if (p.maxSteps !== null && stepsThisRun >= p.maxSteps) {
        saveIfDirty("max-steps");
        return "max-steps";
      }
      const first = state.step_in_epoch * B;
      const batch = order.range(first, Math.min(first + B, windows.trainCount));
      const rows = batch.length;
      windows.fill(batch, tokens, targets);

      if (!gradsClear) model.zeroGrad();
      const loss = model.forward(rows, T, true);
      const step = state.global_step + 1;
      if (!Number.isFinite(loss)) throw new DivergedError(step, `the loss is ${loss}`);
      model.backward();
      const gradNorm = Optimizer.gradNorm(model.grads);
      if (!Number.isFinite(gradNorm)) throw new DivergedError(step, `the gradient norm is ${gradNorm}`);
      const sStep = stageStep(state);
      const lr = learningRate(sStep, plan);
      p.optimizer.step(model.params, model.grads, gradNorm, lr, step, plan, { clearGrads: true });
      gradsClear = true;

      state.global_step = step;
      state.step_in_epoch++;
      state.tokens_seen += rows * T;
      stepsThisRun++;
      dirty = true;

      const now = performance.now();
      const tokensPerSec = (rows * T) / Math.max(1e-9, (now - lastTick) / 1000);
      lastTick = now;
      if (stepsThisRun === 1) firstStepEnd = now;
      else tokensAfterFirst += rows * T;
      const shownRate = stepsThisRun === 1 ? tokensPerSec : tokensAfterFirst / Math.max(1e-9, (now - firstStepEnd) / 1000);
      const perStep = stepsThisRun === 1 ? (now - started) / 1000 : (now - firstStepEnd) / 1000 / (stepsThisRun - 1);
      const left = plan.total_steps - stageStep(state);
      const leftThisRun = p.maxSteps === null ? left : Math.min(left, p.maxSteps - stepsThisRun);
      // metrics.jsonl counts epochs from 1, as the log does (the state counts from 0).
      p.metrics.add({
        step, stage: state.stage, epoch: state.epoch + 1, epochs: plan.epochs, loss, lr, grad_norm: gradNorm, tokens_per_sec: Math.round(tokensPerSec),
        elapsed_s: elapsed(),
      });
      p.progress.step({
        step, stageStep: sStep + 1, stageSteps: plan.total_steps, epoch: state.epoch, epochs: plan.epochs,
        stepInEpoch: state.step_in_epoch, stepsPerEpoch: plan.steps_per_epoch, loss, lr, tokensPerSec: shownRate,
        etaSeconds: leftThisRun * perStep, budgetLeft: p.pace ? p.pace.deadline - process.uptime() : undefined,
      });
      if (p.pace && stepsThisRun % 16 === 0 && now - started >= 1000) {
        // Fitted again from the pace so far (every 16 steps, once a second has passed to average over).
        const refit = refitToPace(plan, sStep + 1, (now - started) / 1000 / stepsThisRun, p.pace.deadline - process.uptime(), p.pace);
        if (refit) state.plan = Object.assign(plan, refit);
      }
      const epochGoesOn = state.step_in_epoch < plan.steps_per_epoch && stageStep(state) < plan.total_steps;
      if (p.evalEvery > 0 && step % p.evalEvery === 0 && epochGoesOn) {
        const valLoss = validate();
        if (valLoss !== null) {
          p.metrics.add({ step, stage: state.stage, epoch: state.epoch + 1, epochs: plan.epochs, val_loss: valLoss, elapsed_s: elapsed() });
          p.progress.log(`step ${step}: val loss ${valLoss.toFixed(4)}`);
        }
      }
      if (p.saveEvery > 0 && step % p.saveEvery === 0 && epochGoesOn) saveIfDirty("periodic");
      await yieldToEventLoop(); // lets SIGINT/SIGTERM handlers run between steps
    }

    const valLoss = validate();
    if (valLoss !== null) p.metrics.add({ step: state.global_step, stage: state.stage, epoch: state.epoch + 1, epochs: plan.epochs, val_loss: valLoss, elapsed_s: elapsed() });
    const finished = state.epoch;
    const steps = state.step_in_epoch;
    state.epoch++;
    state.step_in_epoch = 0;
    if (state.epoch >= plan.epochs) state.stage_complete = true;
    dirty = true;
    saveIfDirty(state.stage_complete ? "end" : "epoch");
    p.onEpochEnd(finished, valLoss, steps);
  }
  return "complete";
}

/** Mean loss over windows [from, to) — by default the held-out ones — in batches of B; null when there are none. */
export function validationLoss(model: GPT, windows: TokenWindows, B: number, T: number, from = windows.trainCount, to = windows.count): number | null {
  if (to <= from) return null;
  const { tokens, targets } = model.inputs;
  let sum = 0, count = 0;
  const idx = new Uint32Array(B);
  for (let first = from; first < to; first += B) {
    const rows = Math.min(B, to - first);
    for (let i = 0; i < rows; i++) idx[i] = first + i;
    windows.fill(idx.subarray(0, rows), tokens, targets);
    const r = model.evaluate(rows, T);
    sum += r.sum;
    count += r.count;
  }
  return sum / count;
}
