/**
 * Exact resume: a run stopped by --max-steps, by SIGTERM or by SIGINT and then resumed ends with the
 * same checkpoint bytes (weights, AdamW moments, training state) and the same loss log as the run
 * that was never stopped.
 */
import { afterAll, beforeAll, expect, test, setDefaultTimeout } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { hasBf16 } from "../../src/native.ts";
import { learnableText, runCli, runCliAndSignal, tempFolder, TINY, withFlags, writeText } from "./helpers.ts";

// Each test starts CLI processes that train; a loaded machine can make that slow.
setDefaultTimeout(120_000);

const tmp = tempFolder();
const dir = tmp.dir;
let data: string;
const vocab = () => join(dir, "tok.vocab");
const common = () => ["--data", data, "--vocab", vocab(), ...TINY, "--epochs", "2", "--save-every", "7", "--precision", "fp32"];

/** The loss log without its wall-clock fields. */
function lossLog(folder: string): unknown[] {
  return readFileSync(join(dir, folder, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => {
    const { tokens_per_sec: _rate, elapsed_s: _clock, ...rest } = JSON.parse(l) as Record<string, unknown>;
    return rest;
  });
}

beforeAll(async () => {
  data = writeText(dir, "data.txt", learnableText(400));
  const r = await runCli([...common(), "--output", join(dir, "straight")], dir);
  expect(r.code).toBe(0);
});
afterAll(() => tmp.cleanup());

test("--max-steps then resume: same checkpoint bytes and loss log as the uninterrupted run", async () => {
  const out = join(dir, "steps");
  const first = await runCli([...common(), "--output", out, "--max-steps", "23"], dir);
  expect(first.code).toBe(0);
  expect(first.stdout).toContain("Stopped after --max-steps 23");
  const second = await runCli(["resume", join(out, "model_checkpoint.bin"), "--data", data, "--vocab", vocab(), "--output", out, "--threads", "1"], dir);
  expect(second.code).toBe(0);
  expect(second.stdout).toContain("Continuing stage 0 at epoch 1/2, step 23/");
  expect(Buffer.compare(readFileSync(join(out, "model_checkpoint.bin")), readFileSync(join(dir, "straight", "model_checkpoint.bin")))).toBe(0);
  expect(lossLog("steps")).toEqual(lossLog("straight"));
});

for (const [signal, code] of [["SIGTERM", 143], ["SIGINT", 130]] as const) {
  test(`${signal} finishes the step, saves, exits ${code}; resuming gives the uninterrupted run's bytes`, async () => {
    const out = join(dir, signal);
    // Two threads here: the results must not depend on the thread count either.
    const args = [...withFlags(common(), "--log-every", "1").filter((a, i, all) => a !== "--threads" && all[i - 1] !== "--threads"), "--output", out];
    const stopped = await runCliAndSignal(args, dir, /step 10 /, signal); // early: the run has ~150 steps
    expect(stopped.code).toBe(code);
    expect(stopped.stdout).toContain(`Interrupted by ${signal}: saved`);
    const resumed = await runCli(["--resume", join(out, "model_checkpoint.bin"), "--data", data, "--vocab", vocab(), "--output", out], dir);
    expect(resumed.code).toBe(0);
    expect(Buffer.compare(readFileSync(join(out, "model_checkpoint.bin")), readFileSync(join(dir, "straight", "model_checkpoint.bin")))).toBe(0);
    expect(lossLog(signal)).toEqual(lossLog("straight"));
  });
}

test("--precision bf16 (bf16 matmul and attention products where the CPU has them): a resume on another thread count gives the same bytes", async () => {
  const bf16 = withFlags(common(), "--precision", "bf16");
  const twoThreads = bf16.filter((a, i, all) => a !== "--threads" && all[i - 1] !== "--threads");
  const straight = join(dir, "bf16-straight"), out = join(dir, "bf16-steps");
  expect((await runCli([...twoThreads, "--output", straight], dir)).code).toBe(0);
  expect((await runCli([...bf16, "--output", out, "--max-steps", "23"], dir)).code).toBe(0);
  const resumed = await runCli(["resume", join(out, "model_checkpoint.bin"), "--data", data, "--vocab", vocab(), "--output", out, "--threads", "1"], dir);
  expect(resumed.code).toBe(0);
  expect(Buffer.compare(readFileSync(join(out, "model_checkpoint.bin")), readFileSync(join(straight, "model_checkpoint.bin")))).toBe(0);
  expect(lossLog("bf16-steps")).toEqual(lossLog("bf16-straight"));
  // and, where the CPU has BF16, it did not silently train in fp32
  if (hasBf16()) expect(lossLog("bf16-straight")).not.toEqual(lossLog("straight"));
});

test("a crash (SIGKILL) after a periodic save: resume continues from that save and still ends bit-identical", async () => {
  const out = join(dir, "killed");
  const args = [...withFlags(common(), "--log-every", "1"), "--output", out];
  const killed = await runCliAndSignal(args, dir, /step 10 /, "SIGKILL");
  expect(killed.code).not.toBe(0);
  const resumed = await runCli(["resume", join(out, "model_checkpoint.bin"), "--data", data, "--vocab", vocab(), "--output", out, "--threads", "1"], dir);
  expect(resumed.code).toBe(0);
  const at = /Continuing stage 0 at epoch \d\/2, step (\d+)\//.exec(resumed.stdout);
  expect(Number(at?.[1]) % 7).toBe(0); // the last multiple of --save-every 7
  expect(Buffer.compare(readFileSync(join(out, "model_checkpoint.bin")), readFileSync(join(dir, "straight", "model_checkpoint.bin")))).toBe(0);
  expect(lossLog("killed")).toEqual(lossLog("straight"));
});
