/**
 * Ctrl-C and SIGTERM before the training loop: while the vocabulary is built (in C) or the data is
 * tokenized there is nothing worth saving, so the process ends at once with status 130 / 143 instead
 * of finishing that work, training a step and saving. The lock it leaves is stale and the next run
 * takes it over. (Signals during the loop save first: test/cli/resume_exact.test.ts, lock.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, linkSync, mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { Xoshiro128 } from "../../src/base/rng.ts";
import { LOCK_NAME } from "../../src/train/lock.ts";
import { learnableText, runCli, tempFolder, TINY, writeText } from "../cli/helpers.ts";
import { startCli } from "./harness.ts";

setDefaultTimeout(120_000);

const tmp = tempFolder("tv-signals-");
afterAll(() => tmp.cleanup());
const dir = tmp.dir;
const bigData = join(dir, "big");
const smallVocab = join(dir, "small.vocab");
const SMALL_FLAGS = ["--d-model", "32", "--num-heads", "2", "--num-layers", "1", "--d-ff", "64", "--max-length", "16", "--batch-size", "4", "--threads", "1"];
/** Exit within this long of the signal; the work it interrupts takes several seconds. */
const PROMPT_MS = 3000;

/** ~8 MB of varied words: many distinct ones, so counting and merging take real time. */
function variedText(bytes: number): string {
  const syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "te", "vo", "zu", "pi", "da", "fe", "go", "hu", "ji", "ba", "co", "xe", "qua", "wy"];
  const rng = Xoshiro128.fromSeed(12345);
  const next = () => rng.nextU32();
  const words: string[] = [];
  let n = 0;
  while (n < bytes) {
    let w = "";
    for (let k = 1 + (next() % 5); k > 0; k--) w += syllables[next() % syllables.length];
    w += next() % 12 === 0 ? ".\n" : " ";
    words.push(w);
    n += w.length;
  }
  return words.join("");
}

beforeAll(async () => {
  // 80 MB of data in ten documents from one file: hard links cost no disk space.
  mkdirSync(bigData);
  const first = writeText(bigData, "doc-0.txt", variedText(8e6));
  for (let i = 1; i < 10; i++) linkSync(first, join(bigData, `doc-${i}.txt`));
  const r = await runCli(["tokenizer", "train", "--data", writeText(dir, "small.txt", learnableText(200)), "--vocab", smallVocab, "--vocab-size", "300"], dir);
  expect(r.code).toBe(0);
});

/** Start a run, send `signal` once its stdout shows `when`; how it ended and how long after the signal. */
async function signalWhen(args: string[], when: RegExp, signal: NodeJS.Signals) {
  const run = startCli(args, dir);
  try {
    const deadline = Date.now() + 60_000;
    let exited = false;
    void run.done.then(() => (exited = true));
    while (!when.test(run.output()) && !exited && Date.now() < deadline) await Bun.sleep(5);
    expect(run.output()).toMatch(when);
    const sent = Date.now();
    run.proc.kill(signal);
    const ended = await Promise.race([run.proc.exited.then(() => "exited"), Bun.sleep(30_000).then(() => "still running 30 s after the signal")]);
    expect(ended).toBe("exited");
    const ms = Date.now() - sent;
    const end = await run.done;
    return { ms, code: await run.proc.exited, out: end.out };
  } finally {
    run.proc.kill("SIGKILL");
  }
}

const leftovers = (out: string) => (existsSync(out) ? readdirSync(out).filter((n) => n !== LOCK_NAME) : []);

describe("a signal while the vocabulary is built ends the run at once", () => {
  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    test(`${signal}: exit ${code}, nothing tokenized, trained or saved`, async () => {
      const out = join(dir, `vocab-${signal}`);
      const vocab = join(dir, `vocab-${signal}.vocab`);
      const r = await signalWhen(["--data", bigData, "--vocab", vocab, "--vocab-size", "20000", ...SMALL_FLAGS, "--output", out], /Building vocabulary/, signal);
      expect({ code: r.code, prompt: r.ms < PROMPT_MS }).toEqual({ code, prompt: true });
      expect(r.out).not.toContain("Data:");
      expect(existsSync(vocab)).toBe(false);
      expect(leftovers(out)).toEqual([]);
    });
  }

  test("the next run on that output folder takes the stale lock over, and leaves nothing behind", async () => {
    const out = join(dir, "vocab-SIGINT");
    expect(existsSync(join(out, LOCK_NAME))).toBe(true);
    const data = writeText(dir, "next.txt", learnableText(100));
    const r = await runCli(["--data", data, "--vocab", smallVocab, ...TINY, "--max-steps", "1", "--output", out], dir);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`Note: taking over ${join(out, LOCK_NAME)}: the run that held it`);
    expect(readdirSync(out).filter((n) => n.startsWith("."))).toEqual([]);
  });
});

describe("a signal while the data is tokenized ends the run at once", () => {
  for (const [signal, code] of [["SIGTERM", 143], ["SIGINT", 130]] as const) {
    test(`${signal}: exit ${code}, no token cache, no checkpoint`, async () => {
      const out = join(dir, `tokenize-${signal}`);
      const r = await signalWhen(["--data", bigData, "--vocab", smallVocab, ...SMALL_FLAGS, "--output", out], /Loaded vocabulary/, signal);
      expect({ code: r.code, prompt: r.ms < PROMPT_MS }).toEqual({ code, prompt: true });
      expect(r.out).not.toContain("Data:");
      expect(leftovers(out)).toEqual([]);
    });
  }
});
