/**
 * One writer per output folder: a second run is refused with a message naming the first (pid, since
 * when, command); locks of dead processes, of reused pids and damaged lock files are taken over; the
 * lock goes away when the run ends, also by SIGTERM in training; a signal before training ends the
 * process at once and its lock is then stale; leftover temp files of dead writers are removed.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { UserError } from "../../src/base/errors.ts";
import { acquireOutputLock, LOCK_NAME, processAlive, processStartTime, removeStaleTempFiles } from "../../src/train/lock.ts";
import { learnableText, runCli, tempFolder, TINY, withFlags, writeText } from "../cli/helpers.ts";
import { startCli } from "./harness.ts";

setDefaultTimeout(120_000);

const tmp = tempFolder("tv-lock-");
afterAll(() => tmp.cleanup());
let n = 0;
const fresh = () => {
  const d = join(tmp.dir, `out-${n++}`);
  mkdirSync(d, { recursive: true });
  return d;
};

/** The pid of a process that has exited (and so is not running). */
function deadPid(): number {
  const p = Bun.spawnSync(["true"]);
  expect(processAlive(p.pid)).toBe(false);
  return p.pid;
}

function writeLock(dir: string, fields: Record<string, unknown>): void {
  writeFileSync(join(dir, LOCK_NAME), JSON.stringify({ host: hostname(), started: "2026-01-01T00:00:00.000Z", command: "train_vocab --data x", ...fields }));
}

describe("acquireOutputLock", () => {
  test("creates the folder and a lock naming this process; a second taker is refused by name; release removes it", () => {
    const dir = join(fresh(), "nested", "out");
    const lock = acquireOutputLock(dir);
    const info = JSON.parse(readFileSync(join(dir, LOCK_NAME), "utf8"));
    expect(info).toMatchObject({ pid: process.pid, host: hostname() });
    expect(info.command).toStartWith("train_vocab");
    let error: unknown;
    try {
      acquireOutputLock(dir);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toContain(`is in use by another training run: pid ${process.pid}, since ${info.started}`);
    expect((error as Error).message).toContain("or choose another --output");
    lock.release();
    lock.release(); // twice is harmless
    expect(existsSync(join(dir, LOCK_NAME))).toBe(false);
    acquireOutputLock(dir).release();
  });

  test("a lock left by a dead process is taken over, with a notice", () => {
    const dir = fresh();
    const pid = deadPid();
    writeLock(dir, { pid });
    const notices: string[] = [];
    const lock = acquireOutputLock(dir, (m) => notices.push(m));
    expect(notices.join("\n")).toContain(`taking over ${join(dir, LOCK_NAME)}: the run that held it (pid ${pid}`);
    expect(JSON.parse(readFileSync(lock.path, "utf8")).pid).toBe(process.pid);
    lock.release();
  });

  test("a live pid that started at another time than the holder is a reused pid: taken over", () => {
    const dir = fresh();
    expect(processStartTime(process.pid)).not.toBeNull();
    writeLock(dir, { pid: process.ppid, proc_start: "1" });
    const notices: string[] = [];
    acquireOutputLock(dir, (m) => notices.push(m)).release();
    expect(notices.join("\n")).toContain("is no longer running");
  });

  test("a live holder with its own start time is respected", () => {
    const dir = fresh();
    writeLock(dir, { pid: process.ppid, proc_start: processStartTime(process.ppid) });
    expect(() => acquireOutputLock(dir)).toThrow(`pid ${process.ppid}`);
    expect(JSON.parse(readFileSync(join(dir, LOCK_NAME), "utf8")).pid).toBe(process.ppid);
  });

  test("a lock from another machine is refused with how to clear it", () => {
    const dir = fresh();
    writeLock(dir, { pid: deadPid(), host: "another-host.example" });
    expect(() => acquireOutputLock(dir)).toThrow(/on another machine: pid \d+ on another-host\.example.*\n.*delete .*\.train_vocab\.lock/);
  });

  test("an unreadable lock file (not fresh) is replaced with a notice", () => {
    const dir = fresh();
    const path = join(dir, LOCK_NAME);
    writeFileSync(path, "\x00\x01 garbage");
    utimesSync(path, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
    const notices: string[] = [];
    acquireOutputLock(dir, (m) => notices.push(m)).release();
    expect(notices.join("\n")).toContain("replaced the unreadable lock file");
  });

  test("an output path under a file is a clear error", () => {
    const file = join(fresh(), "file.txt");
    writeFileSync(file, "x");
    expect(() => acquireOutputLock(join(file, "out"))).toThrow(`Cannot use the output folder ${join(file, "out")}: a part of the path is not a folder`);
  });

  test("temp files of dead writers are removed, those of live ones kept", () => {
    const dir = fresh();
    const dead = deadPid();
    const names = [`.model_checkpoint.bin.${dead}.ab12cd34.tmp`, `.metrics.jsonl.${dead}.x1.tmp`, `.model_checkpoint.bin.${process.ppid}.ab12cd34.tmp`, "notes.tmp", "model_checkpoint.bin"];
    for (const name of names) writeFileSync(join(dir, name), "partial");
    const notices: string[] = [];
    acquireOutputLock(dir, (m) => notices.push(m)).release();
    expect(notices.join("\n")).toContain("removed 2 unfinished temp file(s)");
    for (const name of names) expect({ name, exists: existsSync(join(dir, name)) }).toEqual({ name, exists: !name.includes(`.${dead}.`) });
    expect(removeStaleTempFiles(dir)).toEqual([]);
  });
});

describe("signals before the training loop", () => {
  for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
    test(`${signal} during synchronous work while only the lock is held ends the process at once (${code}); the next taker says the lock was stale`, async () => {
      const dir = fresh();
      // Busy like a vocabulary build or tokenization: the event loop does not run for 30 s.
      const script = `import { acquireOutputLock } from ${JSON.stringify(join(import.meta.dir, "../../src/train/lock.ts"))};
acquireOutputLock(${JSON.stringify(dir)});
console.log("locked");
const t = Date.now();
while (Date.now() - t < 30000) {}`;
      const proc = Bun.spawn([process.execPath, "-e", script], { stdout: "pipe", stderr: "pipe" });
      try {
        const reader = (proc.stdout as ReadableStream<Uint8Array>).getReader();
        const first = await reader.read();
        expect(new TextDecoder().decode(first.value)).toContain("locked");
        expect(existsSync(join(dir, LOCK_NAME))).toBe(true);
        const sent = Date.now();
        proc.kill(signal);
        const end = await Promise.race([proc.exited, Bun.sleep(10_000).then(() => "still running after 10 s")]);
        expect({ end, prompt: Date.now() - sent < 3000 }).toEqual({ end: code, prompt: true });
        const notices: string[] = [];
        acquireOutputLock(dir, (m) => notices.push(m)).release();
        expect(notices.join("\n")).toContain(`Note: taking over ${join(dir, LOCK_NAME)}: the run that held it (pid ${proc.pid}`);
        expect(existsSync(join(dir, LOCK_NAME))).toBe(false);
      } finally {
        proc.kill("SIGKILL");
      }
    });
  }
});

describe("through the CLI", () => {
  /** A long training run in a fresh folder, started and waited for until it has logged step 3. */
  async function longRunPastStep3() {
    const dir = fresh();
    const data = writeText(dir, "data.txt", learnableText(300));
    const out = join(dir, "out");
    const args = ["--data", data, "--vocab", join(dir, "tok.vocab"), ...withFlags(TINY, "--log-every", "1"), "--epochs", "50", "--output", out, "--save-every", "1"];
    const first = startCli(args, dir);
    const deadline = Date.now() + 60_000;
    while (!/step [3-9]\d* /.test(first.output()) && Date.now() < deadline) await Bun.sleep(20);
    return { dir, data, out, args, first };
  }

  test("a second run on the same folder is refused naming the first; SIGTERM ends the first and removes the lock", async () => {
    const { dir, data, out, args, first } = await longRunPastStep3();
    expect(existsSync(join(out, LOCK_NAME))).toBe(true);
    const second = await runCli(args, dir);
    expect(second.code).toBe(2);
    expect(second.stderr).toContain(`error: The output folder ${out} is in use by another training run: pid ${first.proc.pid}, since `);
    expect(second.stderr).toContain("command: train_vocab --data");
    expect(second.stderr).not.toContain("    at ");
    first.proc.kill("SIGTERM");
    const end = await first.done;
    expect(end.code).toBe(143);
    expect(existsSync(join(out, LOCK_NAME))).toBe(false);
    // Inspecting the folder while nothing runs needs no lock; a new run takes it again.
    const again = await runCli(["resume", join(out, "model_checkpoint.bin"), "--data", data, "--vocab", join(dir, "tok.vocab"), "--output", out, "--max-steps", "1"], dir);
    expect(again.code).toBe(0);
    expect(existsSync(join(out, LOCK_NAME))).toBe(false);
  });

  test("SIGKILL leaves a stale lock; the next run takes it over and says so", async () => {
    const { dir, data, out, first } = await longRunPastStep3();
    first.proc.kill("SIGKILL");
    await first.done;
    expect(JSON.parse(readFileSync(join(out, LOCK_NAME), "utf8")).pid).toBe(first.proc.pid);
    const next = await runCli(["resume", join(out, "model_checkpoint.bin"), "--data", data, "--vocab", join(dir, "tok.vocab"), "--output", out, "--max-steps", "1"], dir);
    expect(next.code).toBe(0);
    expect(next.stderr).toContain(`Note: taking over ${join(out, LOCK_NAME)}: the run that held it (pid ${first.proc.pid}`);
    expect(existsSync(join(out, LOCK_NAME))).toBe(false);
  });
});
