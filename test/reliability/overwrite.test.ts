/**
 * The overwrite rule, as a user meets it: a checkpoint or a vocabulary is never replaced without
 * --overwrite; a resume writes next to the checkpoint it read; the hint printed after an interrupted
 * run continues that run's own model; cheap checks come before slow work; a failed run leaves no
 * empty folder behind.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { learnableText, runCli, tempFolder, TINY, withFlags, writeText } from "../cli/helpers.ts";

setDefaultTimeout(300_000);

const tmp = tempFolder("tv-overwrite-");
const dir = tmp.dir;
const p = (...names: string[]) => join(dir, ...names);
const bytes = (path: string) => readFileSync(path);

beforeAll(async () => {
  writeText(dir, "data.txt", learnableText(300));
  writeText(dir, "more.txt", learnableText(300, 7));
  // One vocabulary for every run, so the runs below spend their time only where the test looks.
  const r = await runCli(["tokenizer", "train", "--data", "data.txt", "--vocab", "tok.vocab", "--vocab-size", "300"], dir);
  expect(r.code).toBe(0);
});
afterAll(() => tmp.cleanup());

const train = (output: string, ...more: string[]) =>
  runCli(["--data", "data.txt", "--vocab", "tok.vocab", "--epochs", "1", "--output", output, ...withFlags(TINY, ...more)], dir);

test("a fresh run into a folder that holds a checkpoint stops before any work and names the ways out", async () => {
  expect((await train("a")).code).toBe(0);
  const ckpt = bytes(p("a", "model_checkpoint.bin"));
  const metrics = bytes(p("a", "metrics.jsonl"));

  const again = await runCli(["--data", "data.txt", "--vocab", "new.vocab", ...TINY, "--output", "a"], dir);
  expect(again.code).toBe(2);
  expect(again.stderr).toContain("a/model_checkpoint.bin already holds a checkpoint; it was left as it is");
  expect(again.stderr).toContain("train_vocab resume a/model_checkpoint.bin --data data.txt --vocab new.vocab");
  expect(again.stderr).toContain("give another --output");
  expect(again.stderr).toContain("--overwrite");
  expect(again.stderr).not.toContain("    at "); // no stack trace
  // Refused before the vocabulary was built, and nothing of the old run changed.
  expect(existsSync(p("new.vocab"))).toBe(false);
  expect(bytes(p("a", "model_checkpoint.bin")).equals(ckpt)).toBe(true);
  expect(bytes(p("a", "metrics.jsonl")).equals(metrics)).toBe(true);

  const replaced = await train("a", "--overwrite", "--seed", "7");
  expect(replaced.code).toBe(0);
  expect(bytes(p("a", "model_checkpoint.bin")).equals(ckpt)).toBe(false);
});

test("the hint after an interrupted run continues that run's model, and the default folder is never touched", async () => {
  // A model of value in the default folder, which the old hint would have replaced.
  mkdirSync(p("outputs", "autoregressive"), { recursive: true });
  writeFileSync(p("outputs", "autoregressive", "model_checkpoint.bin"), "a model of value");

  const stopped = await train("my run", "--max-steps", "2", "--val-fraction", "0.1");
  expect(stopped.code).toBe(0);
  // a run stopped before an epoch's end still leaves its curve, with its steps on it
  expect(readFileSync(p("my run", "loss_curve.svg"), "utf8")).not.toContain("no steps yet");
  const hint = /Continue with: (.+)$/m.exec(stopped.stdout)?.[1];
  expect(hint).toBe("train_vocab resume 'my run/model_checkpoint.bin' --data data.txt --vocab tok.vocab --val-fraction 0.1");

  // Follow it as typed (the shell's quoting undone), with the tiny model's thread count.
  const words = [...hint!.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]!).slice(1);
  const resumed = await runCli([...words, "--threads", "1", "--log-every", "1000"], dir);
  expect(resumed.code).toBe(0);
  expect(resumed.stdout).toContain("Continuing stage 0");
  expect(resumed.stdout).toContain("Checkpoint: my run/model_checkpoint.bin");
  expect(readFileSync(p("outputs", "autoregressive", "model_checkpoint.bin"), "utf8")).toBe("a model of value");
});

test("the hint keeps --val-data and --token-cache: followed, it continues the stage on the same validation text and store", async () => {
  const stopped = await train("vd", "--max-steps", "2", "--val-data", "more.txt", "--token-cache", "store");
  expect(stopped.code).toBe(0);
  const hint = /Continue with: (.+)$/m.exec(stopped.stdout)?.[1];
  expect(hint).toBe("train_vocab resume vd/model_checkpoint.bin --data data.txt --vocab tok.vocab --val-data more.txt --token-cache store");
  const resumed = await runCli([...hint!.split(" ").slice(1), "--threads", "1", "--log-every", "1000"], dir);
  expect(resumed.code).toBe(0);
  expect(resumed.stdout).toContain("Continuing stage 0");
  expect(resumed.stdout).not.toContain("tokenized");
});

test("a resume whose --output holds another checkpoint is refused; --overwrite replaces it", async () => {
  expect((await train("b")).code).toBe(0);
  expect((await train("c", "--seed", "9")).code).toBe(0);
  const other = bytes(p("c", "model_checkpoint.bin"));

  const refused = await runCli(["resume", "b/model_checkpoint.bin", "--data", "more.txt", "--vocab", "tok.vocab", "--output", "c", "--threads", "1"], dir);
  expect(refused.code).toBe(2);
  expect(refused.stderr).toContain("c/model_checkpoint.bin already holds a checkpoint");
  expect(refused.stderr).toContain("leave out --output to write next to b/model_checkpoint.bin");
  expect(bytes(p("c", "model_checkpoint.bin")).equals(other)).toBe(true);

  const bHistory = readFileSync(p("b", "metrics.jsonl"), "utf8");
  const forced = await runCli(["resume", "b/model_checkpoint.bin", "--data", "more.txt", "--vocab", "tok.vocab", "--output", "c", "--threads", "1", "--overwrite"], dir);
  expect(forced.code).toBe(0);
  expect(bytes(p("c", "model_checkpoint.bin")).equals(other)).toBe(false);
  // c's history is now b's and the new stage's, nothing of the run it replaced (whose seed made other
  // losses), and its curve was redrawn from it.
  const cHistory = readFileSync(p("c", "metrics.jsonl"), "utf8");
  expect(cHistory.startsWith(bHistory)).toBe(true);
  const steps = cHistory.trim().split("\n").map((l) => (JSON.parse(l) as { step: number }).step);
  expect(steps).toEqual([...steps].sort((x, y) => x - y));

  // Without --output the resumed stage lands next to the checkpoint it read.
  const before = bytes(p("b", "model_checkpoint.bin"));
  const inPlace = await runCli(["resume", "b/model_checkpoint.bin", "--data", "more.txt", "--vocab", "tok.vocab", "--threads", "1"], dir);
  expect(inPlace.code).toBe(0);
  expect(inPlace.stdout).toContain("Checkpoint: b/model_checkpoint.bin");
  expect(bytes(p("b", "model_checkpoint.bin")).equals(before)).toBe(false);
});

test("tokenizer train and import-hf never replace a vocabulary without --overwrite", async () => {
  const vocab = bytes(p("tok.vocab"));
  const refused = await runCli(["tokenizer", "train", "--data", "more.txt", "--vocab", "tok.vocab", "--vocab-size", "280"], dir);
  expect(refused.code).toBe(2);
  expect(refused.stderr).toContain("tok.vocab already holds a vocabulary; it was left as it is");
  expect(refused.stderr).toContain("give another --vocab");
  expect(bytes(p("tok.vocab")).equals(vocab)).toBe(true);

  expect((await runCli(["tokenizer", "export-hf", "--vocab", "tok.vocab", "--out", "tokenizer.json"], dir)).code).toBe(0);
  const again = await runCli(["tokenizer", "export-hf", "--vocab", "tok.vocab", "--out", "tokenizer.json"], dir);
  expect(again.code).toBe(2);
  expect(again.stderr).toContain("--out: tokenizer.json already holds a vocabulary");
  const imported = await runCli(["tokenizer", "import-hf", "tokenizer.json", "--vocab", "tok.vocab"], dir);
  expect(imported.code).toBe(2);
  expect(bytes(p("tok.vocab")).equals(vocab)).toBe(true);

  const forced = await runCli(["tokenizer", "train", "--data", "more.txt", "--vocab", "tok2.vocab", "--vocab-size", "280"], dir);
  expect(forced.code).toBe(0);
  const replaced = await runCli(["tokenizer", "train", "--data", "data.txt", "--vocab", "tok2.vocab", "--vocab-size", "290", "--overwrite"], dir);
  expect(replaced.code).toBe(0);
  expect(replaced.stderr).toContain("vocab_size 290");
});

test("an output path that cannot be written is refused before the vocabulary is built, leaving no folder", async () => {
  writeFileSync(p("a-file"), "x");
  const underFile = await runCli(["--data", "data.txt", "--vocab", "a-file/tok.vocab", ...TINY, "--output", "fresh/deep/out"], dir);
  expect(underFile.code).toBe(2);
  expect(underFile.stderr).toContain("--vocab a-file/tok.vocab:");
  expect(underFile.stderr).toContain("is a file");
  expect(underFile.out).not.toContain("Building vocabulary");
  expect(existsSync(p("fresh"))).toBe(false);

  mkdirSync(p("vocab-folder"));
  const folder = await runCli(["tokenizer", "train", "--data", "data.txt", "--vocab", "vocab-folder", "--vocab-size", "280"], dir);
  expect(folder.code).toBe(2);
  expect(folder.stderr).toContain("--vocab vocab-folder: a folder is in the way");

  const vocabSize = await runCli(["tokenizer", "train", "--data", "data.txt", "--vocab", "x.vocab", "--vocab-size", "abc"], dir);
  expect(vocabSize.code).toBe(2);
  expect(vocabSize.stderr).toContain("at least 258");
});

test("a batch larger than the data and a warmup longer than the stage are said, not silent, in plain words", async () => {
  const r = await train("d", "--batch-size", "5000", "--warmup-steps", "100000", "--learning-rate", "0.0003", "--schedule", "cosine");
  expect(r.code).toBe(0);
  expect(r.stdout).toContain("Stage 0: 1 epoch × 1 step (batch");
  expect(r.stdout).toContain("peak lr 0.0003, warmup 1 step, cosine to 3e-5");
  expect(r.stdout).toMatch(/Note: --batch-size 5000 is more than the \d+ training windows/);
  expect(r.stdout).toMatch(/Note: --warmup-steps 100000 is longer than this stage's 1 steps?/);
});
