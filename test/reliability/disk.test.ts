/**
 * Disk full and permissions, through the CLI: a save that fails midway (a file-size limit, and a
 * really full file system where one can be mounted) and an output folder that cannot be written
 * (under a file, read-only permissions, a read-only file system) leave the previous checkpoint byte for byte, exit non-zero with a message naming the file and the
 * cause, and leave no temp files or lock behind.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readCheckpoint } from "../../src/checkpoint/index.ts";
import { LOCK_NAME } from "../../src/train/lock.ts";
import { learnableText, runCli, tempFolder, TINY, writeText } from "../cli/helpers.ts";
import { BIN } from "./harness.ts";

setDefaultTimeout(120_000);

const tmp = tempFolder("tv-disk-");
const dir = tmp.dir;
let data: string;
const vocab = () => join(dir, "tok.vocab");
const CKPT = "model_checkpoint.bin";
/** A finished tiny run: its checkpoint (~330 KB) is the "previous checkpoint" each case starts from. */
const base = () => join(dir, "base");

beforeAll(async () => {
  data = writeText(dir, "data.txt", learnableText(200));
  const r = await runCli(["--data", data, "--vocab", vocab(), ...TINY, "--epochs", "1", "--output", base()], dir);
  expect(r.code).toBe(0);
});
afterAll(() => tmp.cleanup());

/** A copy of the finished run's folder to damage. */
function copyOfBase(name: string): string {
  const out = join(dir, name);
  cpSync(base(), out, { recursive: true });
  return out;
}

const leftovers = (out: string) => readdirSync(out).filter((n) => n.endsWith(".tmp") || n === LOCK_NAME);

/** Run the CLI under `sh -c` with a prefix (ulimit, ...); SIGXFSZ ignored so write(2) returns EFBIG. */
async function runUnder(prefix: string, args: string[]): Promise<{ code: number; out: string }> {
  const proc = Bun.spawn(["sh", "-c", `trap '' XFSZ; ${prefix}; exec "$@"`, "sh", "bun", "run", BIN, ...args], {
    cwd: dir, stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" },
  });
  const [o, e, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, out: o + e };
}

test("a save cut short by the file-size limit (EFBIG): previous checkpoint intact, clear message, exit 2, nothing left behind", async () => {
  const out = copyOfBase("efbig");
  const before = readFileSync(join(out, CKPT));
  expect(before.byteLength).toBeGreaterThan(300 * 1024);
  // 300 KiB: the tokens, metrics and loss curve fit, the new checkpoint does not.
  const r = await runUnder("ulimit -f 300", ["resume", join(out, CKPT), "--data", data, "--vocab", vocab(), "--output", out, "--epochs", "1", "--threads", "1"]);
  expect(r.code).toBe(2);
  expect(r.out).toContain(`error: Could not write ${join(out, CKPT)}: the file is larger than the file-size limit allows. Raise the limit (ulimit -f)`);
  expect(r.out).not.toContain("    at ");
  expect(Buffer.compare(readFileSync(join(out, CKPT)), before)).toBe(0);
  expect(readCheckpoint(join(out, CKPT)).checksum.verified).toBe(true);
  expect(leftovers(out)).toEqual([]);
});

test("a full file system (ENOSPC on a small tmpfs): previous checkpoint intact, clear message, exit 2, nothing left behind", async () => {
  // A private mount namespace keeps the tmpfs invisible to everyone else and gone when the shell ends.
  const probe = Bun.spawnSync(["sh", "-c", "command -v unshare >/dev/null && unshare -m sh -c 'mount -t tmpfs -o size=64k tmpfs \"$1\"' sh \"$0\"", dir]);
  if (probe.exitCode !== 0) {
    console.log("skipped the tmpfs case: mounting a tmpfs needs root and unshare(1) (the ulimit case above covers a failed write)");
    return;
  }
  const mnt = join(dir, "mnt");
  const saved = join(dir, "enospc-after");
  mkdirSync(mnt);
  mkdirSync(saved);
  // 600 KiB holds the folder with one checkpoint but not a second copy next to it (temp + old).
  const script = [
    'mount -t tmpfs -o size=600k tmpfs "$MNT" || exit 90',
    'cp -r "$BASE" "$MNT/out" || exit 91',
    'bun run "$BIN" resume "$MNT/out/model_checkpoint.bin" --data "$DATA" --vocab "$VOCAB" --output "$MNT/out" --epochs 1 --threads 1 > "$SAVED/log" 2>&1',
    'echo $? > "$SAVED/code"',
    'cp -r "$MNT/out" "$SAVED/out"',
  ].join("\n");
  const proc = Bun.spawn(["unshare", "-m", "sh", "-c", script], {
    cwd: dir, stdout: "pipe", stderr: "pipe",
    env: { ...process.env, NO_COLOR: "1", MNT: mnt, BASE: base(), BIN, DATA: data, VOCAB: vocab(), SAVED: saved },
  });
  const shellErr = await new Response(proc.stderr).text();
  expect({ code: await proc.exited, shellErr }).toEqual({ code: 0, shellErr: "" });
  const log = readFileSync(join(saved, "log"), "utf8");
  expect({ code: readFileSync(join(saved, "code"), "utf8").trim(), log }).toEqual({ code: "2", log });
  expect(log).toContain("no space left on the device. Free some space or choose another");
  expect(log).not.toContain("    at ");
  const after = join(saved, "out");
  expect(Buffer.compare(readFileSync(join(after, CKPT)), readFileSync(join(base(), CKPT)))).toBe(0);
  expect(leftovers(after)).toEqual([]);
});

test("an output folder that cannot be written: refused before training, with the folder named", async () => {
  // Under a file: no user, root included, can create a folder there.
  const file = writeText(dir, "not-a-folder", "x");
  const r1 = await runCli(["--data", data, "--vocab", vocab(), ...TINY, "--epochs", "1", "--output", join(file, "out")], dir);
  expect(r1.code).toBe(2);
  expect(r1.stderr).toContain(`error: Cannot use the output folder ${join(file, "out")}: a part of the path is not a folder. Choose a folder you can write to (--output).`);

  // Read-only permissions stop everyone but root (root writes anyway, so that case cannot be staged as root).
  if (process.getuid?.() === 0) {
    console.log("skipped the chmod 555 case: running as root, whom file permissions do not stop");
    return;
  }
  const out = copyOfBase("readonly");
  const before = readFileSync(join(out, CKPT));
  chmodSync(out, 0o555);
  try {
    const r2 = await runCli(["resume", join(out, CKPT), "--data", data, "--vocab", vocab(), "--output", out, "--epochs", "1"], dir);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toContain(`Cannot use the output folder ${out}: permission denied`);
    expect(Buffer.compare(readFileSync(join(out, CKPT)), before)).toBe(0);
  } finally {
    chmodSync(out, 0o755);
  }
});

test("a read-only file system (a read-only bind mount): refused before training, previous checkpoint intact", async () => {
  const out = copyOfBase("read-only-fs");
  const before = readFileSync(join(out, CKPT));
  const saved = join(dir, "erofs-after");
  mkdirSync(saved);
  const script = [
    'mount --bind "$OUT" "$OUT" && mount -o remount,ro,bind "$OUT" || exit 90',
    'bun run "$BIN" resume "$OUT/model_checkpoint.bin" --data "$DATA" --vocab "$VOCAB" --output "$OUT" --epochs 1 --threads 1 > "$SAVED/log" 2>&1',
    'echo $? > "$SAVED/code"',
  ].join("\n");
  const proc = Bun.spawn(["unshare", "-m", "sh", "-c", script], {
    cwd: dir, stdout: "pipe", stderr: "pipe",
    env: { ...process.env, NO_COLOR: "1", OUT: out, BIN, DATA: data, VOCAB: vocab(), SAVED: saved },
  });
  const shellErr = await new Response(proc.stderr).text();
  const code = await proc.exited;
  if (code === 90 || !existsSync(join(saved, "code"))) {
    console.log(`skipped the read-only mount case: a private read-only bind mount needs root and unshare(1) (${shellErr.trim().slice(0, 120)})`);
    return;
  }
  const log = readFileSync(join(saved, "log"), "utf8");
  expect({ code: readFileSync(join(saved, "code"), "utf8").trim(), log }).toEqual({ code: "2", log });
  expect(log).toContain(`error: Cannot use the output folder ${out}: the file system is read-only. Choose a folder you can write to (--output).`);
  expect(Buffer.compare(readFileSync(join(out, CKPT)), before)).toBe(0);
  expect(leftovers(out)).toEqual([]);
});

test("an output path that is an existing file is named as such", async () => {
  const file = join(dir, "out-is-a-file");
  writeFileSync(file, "x");
  const r = await runCli(["--data", data, "--vocab", vocab(), ...TINY, "--epochs", "1", "--output", file], dir);
  expect(r.code).toBe(2);
  expect(r.stderr).toContain(`Cannot use the output folder ${file}:`);
  expect(r.stderr).not.toContain("    at ");
  expect(existsSync(file)).toBe(true);
});
