/**
 * Time to quality through the CLI: --schedule wsd, --time-budget, --eval-every, --val-data and
 * --precision auto, as a user meets them; exact resume holds for a wsd stage and for a stage whose
 * length a budget fixed.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { copyFileSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { readCheckpointHeader } from "../../src/checkpoint/index.ts";
import { learnableText, runCli, tempFolder, TINY, withFlags, writeText } from "./helpers.ts";

setDefaultTimeout(300_000);

const tmp = tempFolder("tv-budget-");
const dir = tmp.dir;
const p = (...names: string[]) => join(dir, ...names);
const bytes = (path: string) => readFileSync(path);

beforeAll(async () => {
  writeText(dir, "data.txt", learnableText(400));
  writeText(dir, "val.txt", learnableText(60, 99));
  expect((await runCli(["tokenizer", "train", "--data", "data.txt", "--vocab", "tok.vocab", "--vocab-size", "300"], dir)).code).toBe(0);
});
afterAll(() => tmp.cleanup());

const train = (output: string, ...more: string[]) =>
  runCli(["--data", "data.txt", "--vocab", "tok.vocab", "--output", output, ...withFlags(TINY, ...more)], dir);
const resume = (output: string, ...more: string[]) =>
  runCli(["resume", join(output, "model_checkpoint.bin"), "--data", "data.txt", "--vocab", "tok.vocab", "--threads", "1", ...more], dir);
const plan = (output: string) => readCheckpointHeader(p(output, "model_checkpoint.bin")).training!.plan;

test("--schedule wsd: the stage line says so, the plan records it, and k + m steps give the bytes of k+m", async () => {
  const straight = await train("wsd", "--schedule", "wsd", "--epochs", "2", "--decay-fraction", "0.3");
  expect(straight.code).toBe(0);
  expect(straight.stdout).toMatch(/then stable, decaying linearly over the last \d+ steps to 3e-5/);
  const pl = plan("wsd");
  expect(pl.schedule).toBe("wsd");
  expect(pl.decay_steps).toBe(Math.round(pl.total_steps * 0.3));

  expect((await train("wsd-k", "--schedule", "wsd", "--epochs", "2", "--decay-fraction", "0.3", "--max-steps", "17")).code).toBe(0);
  const rest = await resume("wsd-k");
  expect(rest.code).toBe(0);
  expect(rest.stdout).toContain("Continuing stage 0");
  expect(bytes(p("wsd-k", "model_checkpoint.bin")).equals(bytes(p("wsd", "model_checkpoint.bin")))).toBe(true);
});

test("--time-budget fixes the stage's steps before the first, records the plan, and a resumed budget stage continues it exactly", async () => {
  const r = await train("budget", "--time-budget", "4s", "--max-steps", "5", "--schedule", "wsd");
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/Time budget 4s: [\d,]+ steps? (fit |\(all of --epochs \d+: [^)]*\) )\([\d.e-]+ s a step, measured/);
  const fixed = plan("budget");
  expect(fixed.time_budget_s).toBe(4);
  // Epochs were only an upper bound: the fitted length decides them.
  expect(fixed.epochs).toBe(Math.ceil(fixed.total_steps / fixed.steps_per_epoch));
  expect(fixed.total_steps).toBeGreaterThan(5);

  // From the same checkpoint: m more steps then the rest, against the rest at once.
  mkdirSync(p("budget-a"));
  mkdirSync(p("budget-b"));
  for (const d of ["budget-a", "budget-b"]) copyFileSync(p("budget", "model_checkpoint.bin"), p(d, "model_checkpoint.bin"));
  expect((await resume("budget-a", "--max-steps", "3")).code).toBe(0);
  expect((await resume("budget-a")).code).toBe(0);
  const once = await resume("budget-b");
  expect(once.code).toBe(0);
  expect(once.stdout).not.toContain("Time budget"); // the plan is the checkpoint's, not measured again
  expect(plan("budget-b").total_steps).toBe(fixed.total_steps);
  expect(bytes(p("budget-a", "model_checkpoint.bin")).equals(bytes(p("budget-b", "model_checkpoint.bin")))).toBe(true);
});

test("a stage whose fitted length ends inside its last epoch says that epoch was partial", async () => {
  const r = await train("budget-partial", "--time-budget", "3s", "--epochs", "500");
  expect(r.code).toBe(0);
  const fixed = plan("budget-partial");
  const lastSteps = fixed.total_steps - (fixed.epochs - 1) * fixed.steps_per_epoch;
  // (the fitted length can land on an epoch's end: then there is no partial epoch to name)
  if (lastSteps < fixed.steps_per_epoch) {
    expect(r.stdout).toContain(`Epoch ${fixed.epochs}/${fixed.epochs} done (${lastSteps.toLocaleString("en-US")} of its ${fixed.steps_per_epoch.toLocaleString("en-US")} steps: the stage ends there)`);
  } else expect(r.stdout).not.toContain("the stage ends there");
  // full epochs before it are not marked (their count of epochs may be an earlier fit's)
  if (fixed.epochs > 1) expect(r.stdout).toMatch(/Epoch 1\/\d+ done: step/);
});

test("--time-budget longer than --epochs needs: the line says the epochs are the limit, and the run ends with them", async () => {
  const r = await train("budget-roomy", "--time-budget", "10m", "--epochs", "1");
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/Time budget 10m00s: [\d,]+ steps? \(all of --epochs 1: the budget has room for them, and the run ends when they do\)/);
  expect(plan("budget-roomy").epochs).toBe(1);
});

test("--eval-every and --val-data: validation records with the training clock, on the given text", async () => {
  const r = await train("evals", "--epochs", "1", "--eval-every", "5", "--val-data", "val.txt");
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/Windows: [\d,]+ for training, [\d,]+ from val\.txt for validation/);
  const lines = readFileSync(p("evals", "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, number>);
  const vals = lines.filter((l) => "val_loss" in l);
  const steps = lines.filter((l) => "loss" in l);
  expect(vals.length).toBe(Math.floor((steps.length - 1) / 5) + 1);
  expect(vals.every((v, i) => i === vals.length - 1 || v.step === 5 * (i + 1))).toBe(true);
  // each validation between epochs ends is on the console too, with the loss it recorded
  expect(r.stdout).toContain(`step 5: val loss ${vals[0]!.val_loss!.toFixed(4)}`);
  for (const l of lines) expect(l.elapsed_s).toBeGreaterThan(0);
  for (let i = 1; i < lines.length; i++) expect(lines[i]!.elapsed_s).toBeGreaterThanOrEqual(lines[i - 1]!.elapsed_s!);
});

test("--precision auto picks fp32 on a CPU without AVX512_BF16 and says why", async () => {
  const proc = Bun.spawn(["bun", "run", join(import.meta.dir, "../../bin/train-vocab.ts"), "--data", "data.txt", "--vocab", "tok.vocab", "--output", "auto", ...withFlags(TINY, "--precision", "auto", "--max-steps", "2")], {
    cwd: dir, stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1", TRAIN_VOCAB_ISA: "avx2" },
  });
  const [stdout, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
  expect(code).toBe(0);
  expect(stdout).toContain("Arithmetic: fp32 (--precision auto: this CPU has no AVX512_BF16)");
  expect(plan("auto").precision).toBe("fp32");
});

test("bad values are clear errors naming the flag", async () => {
  for (const [flag, value, says] of [
    ["--time-budget", "0", "--time-budget 0: expected a duration greater than 0"],
    ["--time-budget", "-5m", "--time-budget \"-5m\": expected a duration greater than 0"],
    ["--time-budget", "abc", "--time-budget \"abc\": expected a duration greater than 0"],
    ["--decay-fraction", "1.5", "--decay-fraction 1.5: must be at most 1"],
    ["--schedule", "linear", "--schedule \"linear\": expected cosine or wsd"],
    ["--precision", "fp16", "--precision \"fp16\": expected auto, fp32 or bf16"],
  ] as const) {
    const r = await train(`bad-${flag}-${value}`, flag, value);
    expect({ code: r.code, says: r.stderr.includes(says) ? says : r.stderr }).toEqual({ code: 2, says });
  }
});
