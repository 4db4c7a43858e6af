/**
 * What a new user met in export, import, inspect, generate and training's output: file-system
 * failures as one-line errors naming the flag and the path, no export or import replacing a file of
 * value without --overwrite (checked before any slow work), no empty folder left by a failed run, a
 * LOPOS refusal with a way out, and numbers and counts written the way a person writes them.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { writeCheckpoint, writeLopos } from "../../src/checkpoint/index.ts";
import { MetricsLog, readMetrics } from "../../src/train/metrics.ts";
import { learnableText, runCli, tempFolder, TINY, writeText } from "../cli/helpers.ts";
import { BIN } from "./harness.ts";
import { randomParams, tinyModelFiles } from "../generate/fixtures.ts";

setDefaultTimeout(120_000);

const tmp = tempFolder("tv-words-files-");
const dir = tmp.dir;
const p = (...names: string[]) => join(dir, ...names);
let m: ReturnType<typeof tinyModelFiles>;
const cli = (...args: string[]) => runCli(args, dir);

/** One error line for the user: exit 2, no stack trace. */
function expectUserError(r: { code: number; stderr: string }, ...parts: string[]): void {
  expect(r.code).toBe(2);
  for (const s of parts) expect(r.stderr).toContain(s);
  expect(r.stderr).not.toContain("    at ");
}

/** Run the CLI under `sh -c` with a file-size limit; SIGXFSZ ignored so write(2) returns EFBIG. */
async function underFileLimit(blocks: number, args: string[]): Promise<{ code: number; stderr: string }> {
  const proc = Bun.spawn(["sh", "-c", `trap '' XFSZ; ulimit -f ${blocks}; exec "$@"`, "sh", "bun", "run", BIN, ...args], {
    cwd: dir, stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" },
  });
  const [, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stderr };
}

beforeAll(async () => {
  m = tinyModelFiles(dir);
  writeFileSync(p("a_file"), "not a folder");
  const r = await cli("export", m.checkpoint, "--vocab", m.vocab, "--out", "hf");
  expect(r.code).toBe(0);
});
afterAll(() => tmp.cleanup());

describe("file-system failures are errors that name the flag and the path", () => {
  test("import --out under a file: no stack trace, nothing written", async () => {
    const r = await cli("import", "hf", "--out", "a_file/m.bin");
    expectUserError(r, "--out a_file/m.bin", "a_file is a file, not a folder", "Give another --out");
    const deeper = await cli("import", "hf", "--out", "a_file/sub/m.bin");
    expectUserError(deeper, "--out a_file/sub/m.bin", "a_file is a file, not a folder");
    expect(readFileSync(p("a_file"), "utf8")).toBe("not a folder");
  });

  test("export --out under a file, for both formats", async () => {
    expectUserError(await cli("export", m.checkpoint, "--vocab", m.vocab, "--out", "a_file/hf"), "--out a_file/hf", "a_file is a file, not a folder");
    expectUserError(await cli("export", m.checkpoint, "--vocab", m.vocab, "--out", "a_file"), "--out a_file: exists and is not a folder");
    const bare = p("bare.bin");
    const arch = { ...m.arch, attention_bias: false, tied_embeddings: false };
    writeLopos(bare, arch, randomParams(arch, 3));
    expectUserError(await cli("export", bare, "--format", "lopos", "--out", "a_file/x.bin"), "--out a_file/x.bin", "a_file is a file, not a folder");
  });

  test("a write cut short (file-size limit): the flag is named, and the folders the run made are gone", async () => {
    const hf = await underFileLimit(20, ["export", m.checkpoint, "--vocab", m.vocab, "--out", "cut/hf"]);
    expectUserError(hf, "--out: Could not write cut/hf/", "file-size limit");
    expect(existsSync(p("cut"))).toBe(false);
    const imported = await underFileLimit(20, ["import", "hf", "--out", "cut/m.bin"]);
    expectUserError(imported, "--out: Could not write cut/m.bin", "file-size limit");
    expect(existsSync(p("cut"))).toBe(false);
    // A folder that was there before stays, without the files this run did not finish.
    mkdirSync(p("kept"));
    expectUserError(await underFileLimit(20, ["export", m.checkpoint, "--vocab", m.vocab, "--out", "kept"]), "--out: Could not write");
    expect(readdirSync(p("kept"))).toEqual([]);
  });

  test("failed inputs leave no output folder", async () => {
    expectUserError(await cli("export", m.checkpoint, "--vocab", "missing.vocab", "--out", "never/hf"), "missing.vocab");
    expectUserError(await cli("export", m.checkpoint, "--format", "lopos", "--out", "never/x.bin"), "--format lopos");
    expectUserError(await cli("import", "no_such_folder", "--out", "never/m.bin"), "no_such_folder");
    expect(existsSync(p("never"))).toBe(false);
  });
});

describe("export and import never replace a file of value without --overwrite", () => {
  test("export --format hf into a folder that holds an export: refused before the checkpoint is read", async () => {
    const before = readFileSync(p("hf", "model.safetensors"));
    // A damaged checkpoint: the refusal must come first, so this error is never reached.
    const damaged = p("damaged.bin");
    writeFileSync(damaged, readFileSync(m.checkpoint).subarray(0, 1000));
    const r = await cli("export", damaged, "--vocab", m.vocab, "--out", "hf");
    expectUserError(r, "--out: hf/model.safetensors already holds a model; it was left as it is", "give another --out folder", "--overwrite");
    expect(readFileSync(p("hf", "model.safetensors")).equals(before)).toBe(true);

    mkdirSync(p("other_model"));
    const other = tinyModelFiles(p("other_model"), {}, 9);
    const replaced = await cli("export", other.checkpoint, "--vocab", other.vocab, "--out", "hf", "--overwrite");
    expect(replaced.code).toBe(0);
    expect(readFileSync(p("hf", "model.safetensors")).equals(before)).toBe(false);
    // Unrelated files do not stop an export.
    mkdirSync(p("notes"));
    writeFileSync(p("notes", "README.md"), "mine");
    expect((await cli("export", m.checkpoint, "--vocab", m.vocab, "--out", "notes")).code).toBe(0);
    expect(readFileSync(p("notes", "README.md"), "utf8")).toBe("mine");
  });

  test("export --format lopos onto an existing file", async () => {
    writeFileSync(p("precious.bin"), "precious");
    const bare = p("bare2.bin");
    const arch = { ...m.arch, attention_bias: false, tied_embeddings: false };
    writeLopos(bare, arch, randomParams(arch, 4));
    expectUserError(await cli("export", bare, "--format", "lopos", "--out", "precious.bin"), "precious.bin already holds", "--overwrite");
    expect(readFileSync(p("precious.bin"), "utf8")).toBe("precious");
    expect((await cli("export", bare, "--format", "lopos", "--out", "precious.bin", "--overwrite")).code).toBe(0);
    expect(readFileSync(p("precious.bin")).subarray(0, 5).toString()).toBe("LOPOS");
    // A new folder is made for the file, as for --format hf.
    expect((await cli("export", bare, "--format", "lopos", "--out", "made/for/it.bin")).code).toBe(0);
  });

  test("import onto an existing checkpoint or vocabulary", async () => {
    expect((await cli("import", "hf", "--out", "imp/m.bin")).code).toBe(0);
    const ckpt = readFileSync(p("imp", "m.bin"));
    const again = await cli("import", "hf", "--out", "imp/m.bin");
    expectUserError(again, "--out: imp/m.bin already holds a checkpoint; it was left as it is", "give another --out", "--overwrite");
    const vocabOnly = await cli("import", "hf", "--out", "imp/m2.bin");
    expectUserError(vocabOnly, "imp/tokenizer.vocab already holds a vocabulary", "give another --vocab-out");
    expect(existsSync(p("imp", "m2.bin"))).toBe(false);
    expect((await cli("import", "hf", "--out", "imp/m2.bin", "--vocab-out", "imp/t2.vocab")).code).toBe(0);
    expect((await cli("import", "hf", "--out", "imp/m.bin", "--overwrite")).code).toBe(0);
    expect(readFileSync(p("imp", "m.bin")).equals(ckpt)).toBe(true);
    expectUserError(await cli("import", "hf", "--out", "same.bin", "--vocab-out", "same.bin"), "--out and --vocab-out both name same.bin");
  });

  test("--overwrite is in the help of both commands", async () => {
    for (const command of ["export", "import"]) {
      const r = await cli(command, "--help");
      expect(r.stdout).toMatch(/--overwrite\s+Replace/);
    }
  });

  test("generate --dump-logits replaces an earlier dump, never another file, and checks before generating", async () => {
    const gen = (...more: string[]) => cli("generate", "--checkpoint", m.checkpoint, "--vocab", m.vocab, "--prompt", "The", "--max-tokens", "2", "--temperature", "0", ...more);
    expect((await gen("--dump-logits", "dump.st")).code).toBe(0);
    expect((await gen("--dump-logits", "dump.st")).code).toBe(0);
    writeFileSync(p("notes.txt"), "mine");
    const r = await gen("--dump-logits", "notes.txt");
    expectUserError(r, "--dump-logits: notes.txt already exists and is not a logits dump; it was left as it is");
    expect(r.stdout).toBe(""); // nothing generated
    expect(readFileSync(p("notes.txt"), "utf8")).toBe("mine");
    const missing = await gen("--dump-logits", "no_folder/dump.st");
    expectUserError(missing, "--dump-logits no_folder/dump.st: the folder no_folder does not exist");
    expect(missing.stdout).toBe("");
  });
});

test("export --format lopos of a model with attention biases says which models can, and offers --format hf", async () => {
  const r = await cli("export", m.checkpoint, "--format", "lopos", "--out", "x.bin");
  expectUserError(r, "has attention biases", "LoopOS", "--attention-bias false", "Use --format hf instead");
  expect(r.stderr).not.toContain("seed");
  expect(existsSync(p("x.bin"))).toBe(false);
});

describe("numbers and words", () => {
  test("generate: one token is '1 token'; --no-echo's help does not contradict itself", async () => {
    const r = await cli("generate", "--checkpoint", m.checkpoint, "--vocab", m.vocab, "--prompt", "The", "--max-tokens", "1", "--temperature", "0", "--ignore-end");
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/\[1 token in .* · prompt 1 token in/);
    const help = (await cli("generate", "--help")).stdout;
    const line = help.split("\n").find((l) => l.includes("--no-echo"))!;
    expect(line).toContain("Print only the new text");
    expect(line).not.toContain("(default: true)");
    expect(help).not.toContain("the seed");
  });

  test("export, inspect, generate and eval help speak of LoopOS, not of a seed", async () => {
    for (const command of ["export", "inspect", "generate", "eval"]) expect((await cli(command, "--help")).stdout).not.toMatch(/the seed|seed's|seed system/);
  });

  test("generate --prompt - reads the prompt from stdin", async () => {
    const args = ["generate", "--checkpoint", m.checkpoint, "--vocab", m.vocab, "--max-tokens", "3", "--temperature", "0"];
    const proc = Bun.spawn(["bun", "run", BIN, ...args, "--prompt", "-"], { cwd: dir, stdin: new TextEncoder().encode("The cat"), stdout: "pipe", stderr: "pipe" });
    const [stdout, , code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    expect(code).toBe(0);
    expect(stdout).toBe((await cli(...args, "--prompt", "The cat")).stdout);
  });

  test("training: epochs counted from 1 in metrics.jsonl as in the log, plain learning rates, thousands separators", async () => {
    writeText(dir, "data.txt", learnableText(300));
    const flags = TINY.map((a, i) => (TINY[i - 1] === "--learning-rate" ? "0.0003" : TINY[i - 1] === "--log-every" ? "1" : a));
    const r = await cli("--data", "data.txt", "--vocab", "train.vocab", ...flags, "--epochs", "2", "--output", "run");
    expect(r.code).toBe(0);
    const lines = r.stdout.split("\n").filter((l) => l.startsWith("step "));
    expect(lines[0]).toMatch(/^step 1 \(1\/\d+\) · epoch 1\/2 \[1\/\d+\] · loss \d+\.\d{4} · lr [\d.e-]+ · [\d,]+ tok\/s/);
    for (const l of lines) {
      const lr = /· lr ([^ ]+) ·/.exec(l)![1]!;
      expect(lr.replace(/e-\d+$/, "").replace(/^0\.0*/, "").replace(".", "").length).toBeLessThanOrEqual(4);
    }
    const records = readFileSync(p("run", "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(new Set(records.map((x) => x.epoch))).toEqual(new Set([1, 2]));
    expect(records.every((x) => x.epochs === 2)).toBe(true);
    expect(records[0].epoch).toBe(1);
    expect(records.at(-1).epoch).toBe(2);

    const inspect = await cli("inspect", "run/model_checkpoint.bin");
    expect(inspect.stdout).toContain("2 epochs done · stage complete");
    expect(inspect.stdout).toMatch(/warmup \d+ of [\d,]+ steps?, 2 epochs/);
    const resumed = await cli("resume", "run/model_checkpoint.bin", "--vocab", "train.vocab");
    expect(resumed.stdout).toMatch(/Training state: stage \d+ complete \(2 epochs\); global step [\d,]+, [\d,]+ tokens seen; peak lr 0\.0003,/);
  });

  test("inspect: an interrupted stage's epoch counted from 1", async () => {
    const arch = m.arch;
    writeCheckpoint(p("mid.bin"), {
      arch, tokenizer: null, params: randomParams(arch, 2),
      training: {
        global_step: 1, stage: 1, epoch: 0, step_in_epoch: 1, tokens_seen: 1, rng_state: "00", stage_complete: false,
        plan: {
          data_fingerprint: "d", epochs: 1, peak_lr: 0.00030000000000000003, min_lr: 0.000030000000000000004, warmup_steps: 1, total_steps: 1,
          steps_per_epoch: 1, batch_size: 1, seq_len: 6, weight_decay: 0.1, beta1: 0.9, beta2: 0.95, eps: 1e-8, grad_clip: 1, seed: 1, schedule: "cosine",
        },
      },
    });
    const r = await cli("inspect", "mid.bin");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("step 1 · stage 1 · epoch 1/1 (step 1 of 1) · tokens seen 1");
    expect(r.stdout).toContain("peak 0.0003 → min 3e-5, warmup 1 of 1 step, 1 epoch");
    const resumed = await cli("resume", "mid.bin", "--vocab", m.vocab);
    expect(resumed.stdout).toContain("interrupted at epoch 1/1, step 1/1 of the epoch; global step 1, 1 token seen; peak lr 0.0003, batch 1 × 6");
  });
});

test("metrics.jsonl from before epochs counted from 1: read as 1-based, and not shifted twice when rewritten", () => {
  const path = p("old_metrics.jsonl");
  writeFileSync(path, [
    { step: 1, stage: 1, epoch: 0, loss: 5, lr: 0.001, grad_norm: 1, tokens_per_sec: 10 },
    { step: 1, stage: 1, epoch: 0, val_loss: 5.5 },
    { step: 2, stage: 1, epoch: 1, loss: 4, lr: 0.001, grad_norm: 1, tokens_per_sec: 10 },
  ].map((r) => JSON.stringify(r)).join("\n") + "\n");
  expect(readMetrics(path).map((r) => [r.epoch, r.epochs])).toEqual([[1, null], [1, null], [2, null]]);
  const log = new MetricsLog(path);
  log.open(Infinity, false);
  log.add({ step: 3, stage: 1, epoch: 2, epochs: 2, loss: 3, lr: 0.001, grad_norm: 1, tokens_per_sec: 10 });
  log.flush();
  log.open(Infinity, false);
  expect(readMetrics(path).map((r) => r.epoch)).toEqual([1, 1, 2, 2]);
});
