/** LoopOS's resume rules and messages, word for word, and what we add: fingerprints, stages, damage. */
import { afterAll, beforeAll, expect, test, setDefaultTimeout } from "bun:test";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readCheckpoint } from "../../src/checkpoint/index.ts";
import { learnableText, runCli, tempFolder, TINY, writeText } from "./helpers.ts";

// Each test starts CLI processes that train; a loaded machine can make that slow.
setDefaultTimeout(120_000);

const tmp = tempFolder();
const dir = tmp.dir;
let data: string;
const vocab = () => join(dir, "tok.vocab");
const ckpt = () => join(dir, "run", "model_checkpoint.bin");

beforeAll(async () => {
  data = writeText(dir, "data.txt", learnableText(200));
  const r = await runCli(["--data", data, "--vocab", vocab(), ...TINY, "--epochs", "1", "--output", join(dir, "run")], dir);
  expect(r.code).toBe(0);
});
afterAll(() => tmp.cleanup());

test("a missing checkpoint: `Checkpoint file not found: <path>`, exit 2", async () => {
  for (const args of [["resume", "nowhere/model.bin"], ["--resume", "nowhere/model.bin"], ["train-vocab", "--resume", "nowhere/model.bin"]]) {
    const r = await runCli([...args, "--vocab", vocab()], dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("Checkpoint file not found: nowhere/model.bin");
  }
});

test("a missing vocabulary on resume: `Cannot resume: vocabulary file not found: <path>`, after the architecture block, naming the one beside the checkpoint", async () => {
  const r = await runCli(["resume", ckpt(), "--vocab", "missing.vocab"], dir);
  expect(r.code).toBe(2);
  expect(r.stderr).toContain("Cannot resume: vocabulary file not found: missing.vocab");
  expect(r.stderr).toContain(`pass --vocab ${vocab()} if it is the one`);
  expect(r.stdout).toContain("Loaded architecture from checkpoint:\n  d_model:    32\n  num_heads:  2\n  num_layers: 2\n  d_ff:       64\n  vocab_size: 300\n");
});

test("a vocabulary of another size: `Vocabulary size mismatch! Checkpoint expects X but vocab file has Y`", async () => {
  const other = join(dir, "small.vocab");
  const t = await runCli(["tokenizer", "train", "--data", data, "--vocab", other, "--vocab-size", "280"], dir);
  expect(t.code).toBe(0);
  const r = await runCli(["resume", ckpt(), "--vocab", other, "--data", data], dir);
  expect(r.code).toBe(2);
  expect(r.stderr).toContain("Vocabulary size mismatch! Checkpoint expects 300 but vocab file has 280");
});

test("a vocabulary of the right size but another fingerprint is refused, and the message says so", async () => {
  const words = ["<pad>", "<unk>", "<bos>", "<eos>", "<|user|>", "<|assistant|>"];
  for (let i = words.length; i < 300; i++) words.push(`w${i}`);
  const looposVocab = join(dir, "loopos300.vocab");
  writeFileSync(looposVocab, `# Tokenizer Vocabulary\n# Format: token_id word frequency\nvocab_size=300\nnext_id=300\ntotal_tokens=0\n---\n${words.map((w, i) => `${i}\t${w}`).join("\n")}\n`);
  const r = await runCli(["resume", ckpt(), "--vocab", looposVocab, "--data", data], dir);
  expect(r.code).toBe(2);
  expect(r.stderr).toContain("has the right size (300) but is not the vocabulary the checkpoint was trained with");
});

test("architecture flags on resume are named in a warning as ignored; without --data nothing is written", async () => {
  const before = readdirSync(dir).sort();
  const r = await runCli(["--resume", ckpt(), "--vocab", vocab(), "--d-model", "64", "--num-layers", "3", "--vocab-size", "500"], dir);
  expect(r.code).toBe(0);
  expect(r.stderr).toContain("Warning: --d-model, --num-layers, --vocab-size ignored with --resume");
  expect(r.stdout).toContain("  d_model:    32");
  expect(r.stdout).toContain("Training state: stage 0 complete (1 epoch)");
  expect(r.stdout).toContain("No training data provided - model loaded but not trained");
  expect(readdirSync(dir).sort()).toEqual(before); // no outputs/ folder, nothing new
});

test("load without training with --output elsewhere writes a verified copy", async () => {
  const r = await runCli(["resume", ckpt(), "--vocab", vocab(), "--output", join(dir, "copy")], dir);
  expect(r.code).toBe(0);
  const a = readCheckpoint(ckpt());
  const b = readCheckpoint(join(dir, "copy", "model_checkpoint.bin"));
  expect(b.params).toEqual(a.params);
  expect(b.training).toEqual(a.training);
});

test("--epochs or --learning-rate on resume start a new stage with the optimizer state carried over", async () => {
  const out = join(dir, "stage1");
  const r = await runCli(["resume", ckpt(), "--data", data, "--vocab", vocab(), "--epochs", "1", "--learning-rate", "0.001", "--output", out, "--threads", "1"], dir);
  expect(r.code).toBe(0);
  expect(r.stdout).toContain("Stage 1: 1 epoch × ");
  expect(r.stdout).toContain("optimizer state carried over");
  const before = readCheckpoint(ckpt());
  const after = readCheckpoint(join(out, "model_checkpoint.bin"));
  expect(after.training!.stage).toBe(1);
  expect(after.training!.plan.peak_lr).toBe(0.001);
  expect(after.training!.global_step).toBe(2 * before.training!.global_step);
  expect(after.training!.history!.map((h) => h.stage)).toEqual([0, 1]);
  // the input checkpoint was not touched
  expect(readCheckpoint(ckpt()).training).toEqual(before.training);
});

test("damaged checkpoints give clear errors, not stacks", async () => {
  const bytes = readFileSync(ckpt());
  const truncated = join(dir, "truncated.bin");
  writeFileSync(truncated, bytes.subarray(0, bytes.length - 100));
  const flipped = join(dir, "flipped.bin");
  const copy = Buffer.from(bytes);
  copy[copy.length - 8]! ^= 0x40;
  writeFileSync(flipped, copy);
  const text = join(dir, "notes.bin");
  writeFileSync(text, "# just some notes\n");
  for (const [file, message] of [[truncated, "Cannot read checkpoint"], [flipped, "checksum mismatch"], [text, "Cannot read checkpoint"]] as const) {
    const r = await runCli(["resume", file, "--vocab", vocab()], dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
    expect(r.stderr).not.toContain("    at ");
  }
  expect(existsSync(ckpt())).toBe(true);
});

test("a run that diverges stops at once, keeps the last good checkpoint, suggests a lower learning rate, exits non-zero", async () => {
  const out = join(dir, "diverge");
  mkdirSync(out);
  const good = join(out, "model_checkpoint.bin");
  copyFileSync(ckpt(), good);
  const before = readFileSync(good);
  const r = await runCli(["resume", good, "--data", data, "--vocab", vocab(), "--learning-rate", "1e30", "--output", out, "--threads", "1"], dir);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(/Training stopped at step \d+: the (loss|gradient norm) is (NaN|Infinity|-Infinity) \(not finite\)/);
  expect(r.stderr).toContain(`Nothing was saved in this run; ${good} is unchanged.`);
  expect(r.stderr).toContain("Try a lower --learning-rate (now 1e30; e.g. 1e29)");
  expect(Buffer.compare(readFileSync(good), before)).toBe(0);
});

test("a run that runs away before it diverges: the last checkpoint's loss is given against the best, with the advice", async () => {
  const out = join(dir, "runaway");
  const r = await runCli(["--data", data, "--vocab", vocab(), ...TINY.map((a) => (a === "0.003" ? "100" : a)), "--save-every", "1", "--epochs", "20", "--output", out], dir);
  expect(r.code).toBe(2);
  expect(r.stderr).toMatch(/The last checkpoint saved is .*model_checkpoint\.bin \(step \d+, loss [\d.e+]+; the loss had been [\d.]+ at step \d+, so it was already running away/);
});
