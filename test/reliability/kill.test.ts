/**
 * Crash safety: real training runs (a tiny model, a save after every step) are killed with SIGKILL
 * at seeded random moments, many times, some of them while a checkpoint is being written. After
 * every kill the checkpoint on disk must load and verify, the dead run's lock must not block the
 * next run, and resuming must finish the run with exactly the bytes of a run that was never killed.
 *
 * KILL_SEED and KILL_COUNT override the random seed and the number of kills (e.g. for a longer soak).
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { readCheckpoint } from "../../src/checkpoint/index.ts";
import { LOCK_NAME } from "../../src/train/lock.ts";
import { learnableText, runCli, tempFolder, TINY, withFlags, writeText } from "../cli/helpers.ts";
import { rng, startCli } from "./harness.ts";

setDefaultTimeout(600_000);

const SEED = Number(process.env.KILL_SEED ?? 20261129);
const KILLS = Number(process.env.KILL_COUNT ?? 60);
/** Per chunk of an atomic write in "during a save" kills: long enough to be caught in the act. */
const WRITE_DELAY_MS = "15";
const CHECKPOINT = "model_checkpoint.bin";
const TEMP_CHECKPOINT = /^\.model_checkpoint\.bin\.\d+\.[a-z0-9]+\.tmp$/;

const tmp = tempFolder("tv-kill-");
const dir = tmp.dir;
let data: string;
const vocab = () => join(dir, "tok.vocab");
const flags = () => [...withFlags(TINY, "--log-every", "1"), "--epochs", "2", "--save-every", "1"];

function lossLog(folder: string): unknown[] {
  return readFileSync(join(folder, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => {
    const { tokens_per_sec: _rate, elapsed_s: _wallClock, ...rest } = JSON.parse(l) as Record<string, unknown>;
    return rest;
  });
}

beforeAll(async () => {
  data = writeText(dir, "data.txt", learnableText(300));
  const r = await runCli(["--data", data, "--vocab", vocab(), ...flags(), "--output", join(dir, "straight")], dir);
  expect(r.code).toBe(0);
});
afterAll(() => tmp.cleanup());

/** Kill when a checkpoint temp file shows up in `out` (after skipping `skip` of them), or give up. */
async function killDuringSave(run: ReturnType<typeof startCli>, out: string, skip: number): Promise<boolean> {
  const seen = new Set<string>();
  let exited = false;
  void run.done.then(() => (exited = true));
  const deadline = Date.now() + 20_000;
  while (!exited && Date.now() < deadline) {
    let names: string[] = [];
    try {
      names = readdirSync(out);
    } catch {
      // not created yet
    }
    const temp = names.find((n) => TEMP_CHECKPOINT.test(n));
    if (temp && !seen.has(temp)) {
      seen.add(temp);
      if (seen.size > skip) {
        run.proc.kill("SIGKILL");
        await run.done;
        // Caught in the act if its temp file is still there (the rename had not happened).
        return existsSync(join(out, temp));
      }
    }
    await Bun.sleep(1);
  }
  return false;
}

test(`SIGKILL at ${KILLS} seeded random moments (some mid-save): every checkpoint verifies, every resume finishes bit-identical`, async () => {
  const r = rng(SEED);
  const reference = readFileSync(join(dir, "straight", CHECKPOINT));
  const referenceLog = lossLog(join(dir, "straight"));
  let kills = 0;
  let midSave = 0;
  let beforeFirstSave = 0;
  let resumes = 0;
  let chains = 0;
  while (kills < KILLS) {
    const out = join(dir, `chain-${chains++}`);
    const ckpt = join(out, CHECKPOINT);
    let lastStep = -1;
    let killsHere = 0;
    let clean = false;
    for (;;) {
      const resuming = existsSync(ckpt);
      if (resuming) resumes++;
      const args = resuming
        ? ["resume", ckpt, "--data", data, "--vocab", vocab(), "--output", out, "--threads", "1", "--save-every", "1", "--log-every", "1"]
        : ["--data", data, "--vocab", vocab(), ...flags(), "--output", out];
      // Bounded chains: after 12 kills (or once the quota is met) let the run finish.
      const kill = kills < KILLS && killsHere < 12;
      const mode = r.next() < 0.4 ? "save" : "time";
      const run = startCli(args, dir, kill && mode === "save" ? { TRAIN_VOCAB_TEST_WRITE_DELAY_MS: WRITE_DELAY_MS } : {});
      if (kill && mode === "save") {
        if (await killDuringSave(run, out, r.int(0, 4))) midSave++;
      } else if (kill) {
        const at = r.int(30, 900);
        await Promise.race([run.done, Bun.sleep(at)]);
        run.proc.kill("SIGKILL");
      }
      const end = await run.done;
      if (end.signal === null) {
        expect({ out: end.out.slice(-2000), code: end.code }).toEqual({ out: end.out.slice(-2000), code: 0 });
        clean = true;
        break;
      }
      expect(end.signal).toBe("SIGKILL");
      kills++;
      killsHere++;
      expect(end.out).not.toContain("is in use by another training run"); // the dead run's lock was taken over
      if (!existsSync(ckpt)) {
        beforeFirstSave++;
        continue;
      }
      const loaded = readCheckpoint(ckpt); // verifies the checksum
      expect(loaded.checksum.verified).toBe(true);
      const step = loaded.training!.global_step;
      expect(step).toBeGreaterThanOrEqual(lastStep);
      lastStep = step;
      if (loaded.training!.stage_complete) break; // killed after its final save: the run is done
    }
    expect(Buffer.compare(readFileSync(ckpt), reference)).toBe(0);
    expect(lossLog(out)).toEqual(referenceLog);
    // A finished run leaves neither its lock nor temp files behind (dead runs' ones were cleaned up).
    if (clean) expect(readdirSync(out).filter((n) => n === LOCK_NAME || n.endsWith(".tmp"))).toEqual([]);
  }
  console.log(
    `kill harness (seed ${SEED}): ${kills} SIGKILLs survived in ${chains} runs to completion, ${midSave} during a checkpoint write, ` +
      `${beforeFirstSave} before the first save, ${resumes} resumes; every resumed run ended bit-identical to the uninterrupted one`,
  );
  expect(kills).toBeGreaterThanOrEqual(KILLS);
  expect(midSave).toBeGreaterThan(0);
});

test("SIGKILL while the token store is being built: the next run resumes or rebuilds it, never trusts a wrong one, and trains to the same bytes", async () => {
  const folder = join(dir, "many");
  mkdirSync(folder, { recursive: true });
  for (let i = 0; i < 24; i++) writeText(folder, `doc${String(i).padStart(2, "0")}.txt`, learnableText(15, 100 + i));
  const args = (out: string, cache: string) => ["--data", folder, "--vocab", vocab(), ...TINY, "--epochs", "1", "--output", out, "--token-cache", cache];
  const straight = await runCli(args(join(dir, "store-straight"), join(dir, "cache-straight")), dir);
  expect(straight.code).toBe(0);
  const reference = readFileSync(join(dir, "store-straight", CHECKPOINT));
  const r = rng(SEED + 1);
  let killed = 0, resumed = 0;
  for (let k = 0; k < 5; k++) {
    const out = join(dir, `store-kill-${k}`), cache = join(dir, `cache-kill-${k}`);
    // Each file's ids are followed by a pause (the test hook), so the build is caught midway.
    const run = startCli(args(out, cache), dir, { TRAIN_VOCAB_TEST_WRITE_DELAY_MS: "20" });
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && !(existsSync(cache) && readdirSync(cache).some((n) => n.endsWith(".ids")))) await Bun.sleep(2);
    await Bun.sleep(r.int(0, 400));
    run.proc.kill("SIGKILL");
    if ((await run.done).signal === "SIGKILL") killed++;
    const end = await runCli([...args(out, cache), "--overwrite"], dir);
    expect({ out: end.out.slice(-2000), code: end.code }).toEqual({ out: end.out.slice(-2000), code: 0 });
    expect(end.out).not.toMatch(/damaged|incomplete|missing|not a token store/);
    if (/tokenized \d+ of 24 files, the others' ids already stored/.test(end.out)) resumed++;
    expect(Buffer.compare(readFileSync(join(out, CHECKPOINT)), reference)).toBe(0);
    expect(readdirSync(cache).filter((n) => n.endsWith(".tmp"))).toEqual([]);
  }
  expect(killed).toBeGreaterThanOrEqual(4);
  expect(resumed).toBeGreaterThan(0);
});
