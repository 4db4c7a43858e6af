/** The warmup–stable–decay schedule and the time-budget plan, as pure functions (costs injected). */
import { expect, test } from "bun:test";
import type { TrainingPlan } from "../../src/checkpoint/index.ts";
import { fitPlanToBudget } from "../../src/train/budget.ts";
import { durationSeconds } from "../../src/train/options.ts";
import { decaySteps, defaultMinLr, learningRate } from "../../src/train/schedule.ts";

const wsd = { peak_lr: 1e-3, min_lr: 1e-5, warmup_steps: 10, total_steps: 110, schedule: "wsd" as const, decay_steps: 20 };

test("wsd: linear warmup, the peak held, then a linear decay over the last decay_steps that ends just above min_lr", () => {
  expect(learningRate(0, wsd)).toBeCloseTo(1e-4, 12);
  expect(learningRate(9, wsd)).toBeCloseTo(1e-3, 12);
  for (let s = 10; s < 90; s++) expect(learningRate(s, wsd)).toBe(1e-3);
  // 20 decay steps from step 90: the first is 1/21 of the way down, the last 20/21.
  expect(learningRate(90, wsd)).toBeCloseTo(1e-3 + (1e-5 - 1e-3) / 21, 12);
  expect(learningRate(109, wsd)).toBeCloseTo(1e-3 + ((1e-5 - 1e-3) * 20) / 21, 12);
  for (let s = 91; s < 110; s++) expect(learningRate(s, wsd)).toBeLessThan(learningRate(s - 1, wsd));
  expect(learningRate(109, wsd)).toBeGreaterThan(1e-5);
  // The stable part does not depend on the stage's length: a longer stage only moves the decay.
  const longer = { ...wsd, total_steps: 1000 };
  for (let s = 0; s < 90; s++) expect(learningRate(s, longer)).toBe(learningRate(s, wsd));
  // Warmup longer than the stable part: the decay starts after the warmup.
  const short = { ...wsd, total_steps: 15, decay_steps: 10 };
  expect(learningRate(9, short)).toBeCloseTo(1e-3, 12);
  expect(learningRate(10, short)).toBeLessThan(1e-3);
});

test("wsd decays to a hundredth of the peak, cosine to a tenth; decay steps are a share of the stage, at least 1", () => {
  expect(defaultMinLr(0.004, "wsd")).toBeCloseTo(4e-5, 15);
  expect(defaultMinLr(0.004, "cosine")).toBeCloseTo(4e-4, 15);
  expect(decaySteps(1000, 0.2)).toBe(200);
  expect(decaySteps(3, 0.2)).toBe(1);
});

test("durations: seconds, s, m, h; nothing else, and nothing not above 0", () => {
  expect(durationSeconds("90s")).toBe(90);
  expect(durationSeconds("30m")).toBe(1800);
  expect(durationSeconds("2h")).toBe(7200);
  expect(durationSeconds("1.5h")).toBe(5400);
  expect(durationSeconds("45")).toBe(45);
  expect(durationSeconds(12.5)).toBe(12.5);
  for (const bad of ["0", "-5m", "abc", "5 days", "", "0s", "1e400"]) expect(durationSeconds(bad)).toBeNull();
  expect(durationSeconds(0)).toBeNull();
  expect(durationSeconds(Number.POSITIVE_INFINITY)).toBeNull();
});

const plan: TrainingPlan = {
  data_fingerprint: "x", epochs: 1000, peak_lr: 4e-3, min_lr: 4e-5, warmup_steps: 200, total_steps: 100_000,
  steps_per_epoch: 100, batch_size: 8, seq_len: 256, weight_decay: 0.1, beta1: 0.9, beta2: 0.95, eps: 1e-8,
  grad_clip: 1, seed: 1, schedule: "wsd", decay_steps: 20_000, time_budget_s: 120,
};
const costs = { stepSeconds: 0.1, valBatchSeconds: 0.02, saveSeconds: 0.05 };

test("a budget fixes the step count from the measured costs, keeping back the final validation, save and a margin", () => {
  const fitted = fitPlanToBudget(plan, {
    secondsLeft: 118, budgetSeconds: 120, costs, valBatches: 10, evalEvery: 0, saveEvery: 0, decayFraction: 0.2,
  });
  // Per step: 0.1 s + one validation (0.2 s) per 100-step epoch; kept back: 0.2 + 0.05 + 1.8 + 0.25 s.
  const expected = Math.floor((118 - (0.2 + 0.05 + 0.015 * 120 + 0.25)) / (0.1 + 0.2 / 100));
  expect(fitted.total_steps).toBe(expected);
  expect(fitted.epochs).toBe(Math.ceil(expected / 100));
  expect(fitted.decay_steps).toBe(Math.round(expected * 0.2));
  expect(fitted.warmup_steps).toBe(Math.min(200, Math.ceil(expected * 0.05)));
  // Everything that was not about the length stays.
  expect({ ...fitted, total_steps: 0, epochs: 0, decay_steps: 0, warmup_steps: 0 }).toEqual({ ...plan, total_steps: 0, epochs: 0, decay_steps: 0, warmup_steps: 0 });
  // The work it plans fits: steps, their validations, and what was kept back.
  expect(expected * 0.102 + 0.2 + 0.05).toBeLessThan(118);
});

test("a budget counts periodic validations and saves, keeps a given warmup, never exceeds --epochs, and trains at least one step", () => {
  const base = { secondsLeft: 118, budgetSeconds: 120, costs, valBatches: 10, decayFraction: 0.2 };
  const plain = fitPlanToBudget(plan, { ...base, evalEvery: 0, saveEvery: 0 });
  const busy = fitPlanToBudget(plan, { ...base, evalEvery: 50, saveEvery: 10 });
  expect(busy.total_steps).toBeLessThan(plain.total_steps);
  expect(fitPlanToBudget(plan, { ...base, evalEvery: 0, saveEvery: 0, warmupSteps: 30 }).warmup_steps).toBe(30);
  const capped = fitPlanToBudget({ ...plan, total_steps: 300, epochs: 3 }, { ...base, evalEvery: 0, saveEvery: 0 });
  expect(capped.total_steps).toBe(300);
  expect(capped.epochs).toBe(3);
  const tiny = fitPlanToBudget(plan, { ...base, secondsLeft: 0.5, evalEvery: 0, saveEvery: 0 });
  expect(tiny.total_steps).toBe(1);
  const cosine = fitPlanToBudget({ ...plan, schedule: "cosine", decay_steps: undefined }, { ...base, evalEvery: 0, saveEvery: 0 });
  expect(cosine.decay_steps).toBeUndefined();
});
