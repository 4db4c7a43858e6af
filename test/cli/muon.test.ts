/**
 * --optimizer muon from the command line: exact resume (k + m steps give the bytes of k + m, in fp32
 * and in bf16), the plan records it, a resume keeps it, --optimizer starts a new stage, a switch
 * starts the hidden matrices' moments afresh, and a bad value is an error naming the flag.
 */
import { afterAll, beforeAll, expect, test, setDefaultTimeout } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readCheckpoint } from "../../src/checkpoint/index.ts";
import { tensorSpecs } from "../../src/model/layout.ts";
import { hasBf16 } from "../../src/native.ts";
import { isHiddenMatrix } from "../../src/train/muon.ts";
import { resolveOptions } from "../../src/train/options.ts";
import { learnableText, runCli, tempFolder, TINY, writeText, withFlags } from "./helpers.ts";

// Each test starts CLI processes that train; a loaded machine can make that slow.
setDefaultTimeout(120_000);

const tmp = tempFolder();
const dir = tmp.dir;
let data: string;
const vocab = () => join(dir, "tok.vocab");
const common = () => ["--data", data, "--vocab", vocab(), ...TINY, "--epochs", "2", "--save-every", "7", "--precision", "fp32", "--optimizer", "muon"];
const checkpoint = (folder: string) => join(dir, folder, "model_checkpoint.bin");
const resume = (folder: string, ...more: string[]) =>
  runCli(["resume", checkpoint(folder), "--data", data, "--vocab", vocab(), "--output", join(dir, folder), "--threads", "1", ...more], dir);

/** The loss log without its wall-clock fields. */
function lossLog(folder: string): unknown[] {
  return readFileSync(join(dir, folder, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => {
    const { tokens_per_sec: _rate, elapsed_s: _clock, ...rest } = JSON.parse(l) as Record<string, unknown>;
    return rest;
  });
}

const sameFile = (a: string, b: string) => Buffer.compare(readFileSync(a), readFileSync(b)) === 0;

beforeAll(async () => {
  data = writeText(dir, "data.txt", learnableText(400));
  const r = await runCli([...common(), "--output", join(dir, "straight")], dir);
  expect(r.code).toBe(0);
});
afterAll(() => tmp.cleanup());

test("--max-steps then resume without --optimizer: the uninterrupted Muon run's bytes and loss log", async () => {
  const first = await runCli([...common(), "--output", join(dir, "steps"), "--max-steps", "23"], dir);
  expect(first.code).toBe(0);
  const second = await resume("steps");
  expect(second.code).toBe(0);
  expect(second.stdout).toContain("Continuing stage 0 at epoch 1/2, step 23/");
  expect(sameFile(checkpoint("steps"), checkpoint("straight"))).toBe(true);
  expect(lossLog("steps")).toEqual(lossLog("straight"));

  const ck = readCheckpoint(checkpoint("straight"));
  expect(ck.training!.plan.optimizer).toBe("muon");
  // Muon's momentum sits in m; the hidden matrices' v is never written.
  for (const s of tensorSpecs(ck.arch).filter(isHiddenMatrix)) {
    expect([s.name, ck.adam!.v.subarray(s.offset, s.offset + s.size).every((x) => x === 0)]).toEqual([s.name, true]);
    expect([s.name, ck.adam!.m.subarray(s.offset, s.offset + s.size).some((x) => x !== 0)]).toEqual([s.name, true]);
  }
  const losses = lossLog("straight").filter((r) => "loss" in (r as object)) as { loss: number }[];
  expect(losses.at(-1)!.loss).toBeLessThan(losses[0]!.loss * 0.6);
});

test.skipIf(!hasBf16())("--precision bf16 (Newton–Schulz products in bf16): a resume on another thread count gives the same bytes", async () => {
  const bf16 = withFlags(common(), "--precision", "bf16");
  const twoThreads = bf16.filter((a, i, all) => a !== "--threads" && all[i - 1] !== "--threads");
  expect((await runCli([...twoThreads, "--output", join(dir, "bf16-straight")], dir)).code).toBe(0);
  expect((await runCli([...bf16, "--output", join(dir, "bf16-steps"), "--max-steps", "23"], dir)).code).toBe(0);
  const resumed = await resume("bf16-steps");
  expect(resumed.code).toBe(0);
  expect(resumed.stdout).toContain("Continuing stage 0 at epoch 1/2, step 23/");
  expect(sameFile(checkpoint("bf16-steps"), checkpoint("bf16-straight"))).toBe(true);
  expect(lossLog("bf16-steps")).toEqual(lossLog("bf16-straight"));
  expect(lossLog("bf16-straight")).not.toEqual(lossLog("straight"));
});

test("a new stage keeps the checkpoint's optimizer; --optimizer on resume starts a new stage; switching to AdamW starts the hidden matrices' moments afresh", async () => {
  expect((await runCli([...common(), "--output", join(dir, "switch"), "--max-steps", "5"], dir)).code).toBe(0);
  const more = await resume("switch", "--epochs", "1", "--max-steps", "1");
  expect(more.code).toBe(0);
  expect(more.stdout).toContain("Stage 1:");
  expect(readCheckpoint(checkpoint("switch")).training!.plan.optimizer).toBe("muon");

  const again = await resume("switch", "--optimizer", "muon", "--max-steps", "1");
  expect(again.code).toBe(0);
  expect(again.stdout).toContain("Not continuing the checkpoint's interrupted stage 1: --optimizer was given.");
  expect(again.stdout).toContain("Stage 2:");
  expect(readCheckpoint(checkpoint("switch")).training!.plan.optimizer).toBe("muon");

  const toAdam = await resume("switch", "--optimizer", "adamw", "--max-steps", "1");
  expect(toAdam.code).toBe(0);
  expect(toAdam.stdout).toContain("Stage 3:");
  const ck = readCheckpoint(checkpoint("switch"));
  expect("optimizer" in ck.training!.plan).toBe(false); // absent = AdamW
  // One AdamW step from zero moments: m = 0.1·g and v = 0.05·g², so m²/v = 0.2 wherever g ≠ 0 (the
  // momentum carried over would give anything else).
  for (const s of tensorSpecs(ck.arch).filter(isHiddenMatrix)) {
    const m = ck.adam!.m.subarray(s.offset, s.offset + s.size), v = ck.adam!.v.subarray(s.offset, s.offset + s.size);
    let worst = 0;
    for (let i = 0; i < m.length; i++) if (v[i]! > 1e-30) worst = Math.max(worst, Math.abs(m[i]! ** 2 / v[i]! - 0.2));
    expect([s.name, worst < 1e-4]).toEqual([s.name, true]);
  }
});

test("a bad --optimizer is an error naming the flag; a config file's too; any case reads", async () => {
  const r = await runCli(["--data", data, "--optimizer", "sgd"], dir);
  expect(r.code).toBe(2);
  expect(r.stderr).toContain(`--optimizer "sgd": expected adamw or muon.`);
  expect(r.stderr).not.toContain("    at ");
  const file = join(dir, "bad.json");
  writeFileSync(file, JSON.stringify({ optimizer: "lion" }));
  expect(() => resolveOptions({ config: file })).toThrow(/"optimizer" "lion": expected adamw or muon/);
  expect(resolveOptions({ data: "x", optimizer: "Muon" }).values.optimizer).toBe("muon");
  expect(resolveOptions({ data: "x" }).values.optimizer).toBe("muon");
});
