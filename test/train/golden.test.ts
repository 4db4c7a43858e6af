/**
 * Behaviour and bytes pinned: a fixed short run (a vocabulary, a stage stopped by --max-steps, its
 * continuation, a second stage on other data, then greedy and seeded sampling) must give the same
 * checkpoint, loss log and text as recorded in golden.json. A refactoring must leave them alone; a change
 * that means to alter them says so and records new values with `GOLDEN_UPDATE=1 bun test test/train/golden.test.ts`.
 * The portable C level is forced, so the bytes do not depend on which SIMD unit the CPU has.
 */
import { afterAll, expect, setDefaultTimeout, test } from "bun:test";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BIN, learnableText, tempFolder, TINY, writeText } from "../cli/helpers.ts";

setDefaultTimeout(300_000);

const GOLDEN = join(import.meta.dir, "golden.json");
const tmp = tempFolder("tv-golden-");
afterAll(() => tmp.cleanup());

async function cli(args: string[]): Promise<string> {
  const proc = Bun.spawn(["bun", "run", BIN, ...args], {
    cwd: tmp.dir, stdout: "pipe", stderr: "pipe",
    env: { ...process.env, NO_COLOR: "1", TRAIN_VOCAB_ISA: "portable" },
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) throw new Error(`train_vocab ${args.join(" ")} exited ${code}:\n${stdout}${stderr}`);
  return stdout;
}

const sha256 = (data: string | Uint8Array) => createHash("sha256").update(data).digest("hex");

/** The loss log without its wall-clock fields. */
function lossLog(path: string): string {
  return readFileSync(path, "utf8").trim().split("\n").map((line) => {
    const { tokens_per_sec: _rate, elapsed_s: _clock, ...rest } = JSON.parse(line) as Record<string, unknown>;
    return JSON.stringify(rest);
  }).join("\n");
}

test("a fixed short run gives the recorded checkpoint, loss log and text", async () => {
  writeText(tmp.dir, "a.txt", learnableText(300, 3));
  writeText(tmp.dir, "b.txt", learnableText(200, 11));
  // The recipe is spelled out, so the pinned bytes follow the code, not the defaults of the day.
  const model = [...TINY.filter((a, i, all) => a !== "--vocab-size" && all[i - 1] !== "--vocab-size"), "--precision", "fp32", "--schedule", "cosine", "--arch", "gpt2", "--optimizer", "adamw"];
  await cli(["tokenizer", "train", "--data", "a.txt", "--vocab", "tok.vocab", "--vocab-size", "300"]);
  await cli(["--data", "a.txt", "--vocab", "tok.vocab", ...model, "--epochs", "2", "--output", "run", "--max-steps", "20"]);
  await cli(["resume", "run/model_checkpoint.bin", "--data", "a.txt", "--vocab", "tok.vocab", "--output", "run", "--threads", "1"]);
  await cli(["resume", "run/model_checkpoint.bin", "--data", "b.txt", "--vocab", "tok.vocab", "--output", "run", "--threads", "1", "--epochs", "1", "--learning-rate", "0.001"]);
  const generate = ["generate", "--checkpoint", "run/model_checkpoint.bin", "--vocab", "tok.vocab", "--prompt", "the cat", "--max-tokens", "24"];
  const greedy = await cli([...generate, "--temperature", "0"]);
  const sampled = await cli([...generate, "--temperature", "0.9", "--seed", "5"]);

  const seen = {
    vocab: sha256(readFileSync(join(tmp.dir, "tok.vocab"))),
    checkpoint: sha256(readFileSync(join(tmp.dir, "run", "model_checkpoint.bin"))),
    loss_log: sha256(lossLog(join(tmp.dir, "run", "metrics.jsonl"))),
    greedy: sha256(greedy),
    sampled: sha256(sampled),
  };
  if (process.env.GOLDEN_UPDATE === "1") writeFileSync(GOLDEN, JSON.stringify(seen, null, 2) + "\n");
  expect(seen).toEqual(JSON.parse(readFileSync(GOLDEN, "utf8")));
});
