/**
 * One writer per output folder. A training run holds `<output>/.train_vocab.lock` while it runs:
 *
 *   {"pid": 1234, "host": "box", "started": "2026-…Z", "proc_start": "98765", "command": "train_vocab --data …"}
 *
 * The file is written complete under a temporary name and hard-linked into place, so it appears
 * atomically and only once (link(2) fails with EEXIST when another run holds it). A second run on the
 * same folder is refused with a message naming the holder. A lock whose process is gone (same host,
 * no such pid, or the pid now belongs to a process started later) is stale: it is taken over with a
 * notice. The lock is removed when the run ends and on process.exit.
 *
 * No SIGINT/SIGTERM handler is installed here: JS handlers run only when the event loop does, which
 * it never does during the long synchronous work before training (listing data, building the
 * vocabulary in C, tokenizing), so a catching handler would defer the signal until training began.
 * Until the training loop installs its own (src/train/signals.ts) the default action ends the process
 * at once, with status 130/143; the lock it leaves is stale (its pid is dead) and the next run takes
 * it over with a notice, removing leftover temp files too.
 *
 * While holding the lock, temp files of interrupted atomic writes in the folder (a run killed in the
 * middle of a save) are removed: no other writer can be using them.
 */
import { closeSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { UserError } from "../base/errors.ts";
import { describeFsError, errCode, tempFileWriter, tempPathFor } from "../base/files.ts";

export const LOCK_NAME = ".train_vocab.lock";

export interface LockInfo {
  pid: number;
  host: string;
  /** ISO time the run started. */
  started: string;
  /** The kernel's start time of the process (from /proc), to tell a reused pid from the holder. */
  proc_start: string | null;
  command: string;
}

export interface OutputLock {
  path: string;
  info: LockInfo;
  /** Remove the lock (only if it is still ours). Safe to call more than once. */
  release(): void;
}

/** Start time of a process in clock ticks since boot (field 22 of /proc/<pid>/stat), or null. */
export function processStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) is in parentheses and may hold spaces: split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

/** Whether `pid` is a running process on this machine (EPERM: it exists, owned by someone else). */
export function processAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errCode(err) === "EPERM";
  }
}

/** Is the holder recorded in `info` still running? Only answerable for this host. */
function holderAlive(info: LockInfo): boolean {
  if (!processAlive(info.pid)) return false;
  // The pid exists; if it started at another time than the holder did, the pid was reused.
  const now = processStartTime(info.pid);
  if (info.proc_start && now && now !== info.proc_start) return false;
  return true;
}

function parseLock(text: string): LockInfo | null {
  try {
    const raw = JSON.parse(text) as Partial<LockInfo>;
    if (typeof raw !== "object" || raw === null || typeof raw.pid !== "number" || typeof raw.host !== "string") return null;
    return {
      pid: raw.pid,
      host: raw.host,
      started: typeof raw.started === "string" ? raw.started : "an unknown time",
      proc_start: typeof raw.proc_start === "string" ? raw.proc_start : null,
      command: typeof raw.command === "string" ? raw.command : "(unknown)",
    };
  } catch {
    return null;
  }
}

function readLock(path: string): LockInfo | null | "missing" {
  try {
    return parseLock(readFileSync(path, "utf8"));
  } catch (err) {
    if (errCode(err) === "ENOENT") return "missing";
    return null;
  }
}

function since(iso: string): string {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return iso;
  const s = Math.max(0, Math.round((Date.now() - t) / 1000));
  const ago = s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`;
  return `${iso} (${ago} ago)`;
}

function commandLine(): string {
  const args = process.argv.slice(2);
  return ["train_vocab", ...args].join(" ").slice(0, 500);
}

function fsProblem(dir: string, err: unknown): UserError {
  const why = errCode(err) === "EEXIST" ? "it exists and is not a folder" : describeFsError(err);
  return new UserError(`Cannot use the output folder ${dir}: ${why}. Choose a folder you can write to (--output).`);
}

/**
 * Take the lock of `dir` (created if missing) or throw a UserError naming the run that holds it.
 * `notice` hears about a stale lock taken over and about leftover temp files removed.
 */
export function acquireOutputLock(dir: string, notice: (message: string) => void = () => {}): OutputLock {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw fsProblem(dir, err);
  }
  const path = join(dir, LOCK_NAME);
  const info: LockInfo = {
    pid: process.pid,
    host: hostname(),
    started: new Date().toISOString(),
    proc_start: processStartTime(process.pid),
    command: commandLine(),
  };
  const tmp = tempPathFor(path);
  try {
    const fd = openSync(tmp, "wx", 0o644);
    try {
      writeSync(fd, JSON.stringify(info) + "\n");
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // not created
    }
    throw fsProblem(dir, err);
  }

  try {
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(tmp, path);
        break;
      } catch (err) {
        if (errCode(err) !== "EEXIST") throw fsProblem(dir, err);
      }
      const holder = readLock(path);
      if (holder === "missing") continue; // released between our link and our read
      if (attempt >= 20) throw new UserError(`Cannot take the lock ${path}: it keeps changing. Is another run starting on ${dir}?`);
      if (holder === null) {
        // Unreadable: our own locks appear complete (link of a written file), so this is damage.
        // Give a writer of a foreign format a moment, then treat it as stale.
        const age = ageMs(path);
        if (age !== null && age < 2000) {
          Bun.sleepSync(50);
          continue;
        }
        if (takeOver(path, null)) notice(`Note: replaced the unreadable lock file ${path}.`);
        continue;
      }
      if (holder.host !== info.host) {
        throw new UserError(
          `The output folder ${dir} is in use by a training run on another machine: pid ${holder.pid} on ${holder.host}, since ${since(holder.started)}, command: ${holder.command}\n` +
            `Choose another --output, or if that run is over, delete ${path}.`,
        );
      }
      if (holder.pid === process.pid || holderAlive(holder)) {
        throw new UserError(
          `The output folder ${dir} is in use by another training run: pid ${holder.pid}, since ${since(holder.started)}, command: ${holder.command}\n` +
            `Wait for it to finish, stop it (kill ${holder.pid}: it saves and exits), or choose another --output.`,
        );
      }
      if (takeOver(path, holder)) {
        notice(`Note: taking over ${path}: the run that held it (pid ${holder.pid}, since ${since(holder.started)}) is no longer running.`);
      }
    }
  } finally {
    try {
      unlinkSync(tmp);
    } catch {
      // already gone
    }
  }

  const removed = removeStaleTempFiles(dir);
  if (removed.length > 0) {
    notice(`Note: removed ${removed.length} unfinished temp file(s) left in ${dir} by an interrupted run (${removed.slice(0, 3).join(", ")}${removed.length > 3 ? ", …" : ""}).`);
  }

  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    process.off("exit", release);
    const now = readLock(path);
    if (now !== "missing" && now !== null && now.pid === info.pid && now.started === info.started) {
      try {
        unlinkSync(path);
      } catch {
        // someone removed it already
      }
    }
  };
  // process.exit (a second SIGINT/SIGTERM) skips finally blocks but runs 'exit' listeners.
  process.on("exit", release);
  return { path, info, release };
}

/**
 * Move a stale lock out of the way. Renaming it first makes the takeover safe against a second run
 * doing the same at the same moment: only one rename succeeds, and if what we moved is not the stale
 * lock we inspected (someone already took over), it is put back.
 */
function takeOver(path: string, stale: LockInfo | null): boolean {
  const aside = tempPathFor(path, "stale");
  try {
    renameSync(path, aside);
  } catch {
    return false; // gone already: the next attempt will see
  }
  const moved = readLock(aside);
  const same = stale === null ? moved === null : moved !== "missing" && moved !== null && moved.pid === stale.pid && moved.started === stale.started;
  if (!same) {
    try {
      linkSync(aside, path);
    } catch {
      // a third run holds it now; the next attempt reports that one
    }
  }
  try {
    unlinkSync(aside);
  } catch {
    // nothing to clean
  }
  return same;
}

function ageMs(path: string): number | null {
  try {
    return Date.now() - statSync(path).mtimeMs;
  } catch {
    return null;
  }
}

/** Remove temp files (tempPathFor's) whose writer is no longer running. */
export function removeStaleTempFiles(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const pid = tempFileWriter(name);
    if (pid === null || pid === process.pid || processAlive(pid)) continue;
    try {
      unlinkSync(join(dir, name));
      removed.push(name);
    } catch {
      // already gone or not ours to remove
    }
  }
  return removed;
}
