/**
 * Files for every layer: crash-safe replacement, the temp-file names it uses, reads and file-system
 * errors in words a user can act on.
 *
 * Crash-safe file replacement: write a temp file in the target's folder, fsync it, rename it over the
 * target, fsync the folder. Readers see either the old file or the new one, never a half-written one,
 * and a failed write (full disk, file-size limit, permissions) leaves the old file untouched.
 */
import { closeSync, fsyncSync, openSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { UserError } from "./errors.ts";

export type Chunk = string | ArrayBufferView;

/**
 * Test hook, read once: TRAIN_VOCAB_TEST_WRITE_DELAY_MS=n pauses n ms after each chunk of an atomic
 * write, so the crash-safety tests can kill a process while a temp file is half written. Not for users.
 */
const WRITE_DELAY_MS = Math.min(10_000, Math.max(0, Number(process.env.TRAIN_VOCAB_TEST_WRITE_DELAY_MS) || 0));

/** Largest single write: write(2) on Linux moves at most ~2 GiB per call anyway. */
const MAX_WRITE = 1 << 30;

/**
 * The name `path` is written under before it replaces the file: `.<name>.<pid>.<random>.tmp` beside
 * it, hidden, and carrying its writer's pid so that a sweeper can tell a dead writer's leftovers
 * (tempFileWriter). `tag` starts the random part, to tell kinds of temp files apart.
 */
export function tempPathFor(path: string, tag = ""): string {
  const random = Math.random().toString(36).slice(2, 10).padEnd(8, "0");
  return join(dirname(path), `.${basename(path)}.${process.pid}.${tag}${random}.tmp`);
}

const TEMP_NAME = /^\.(.+)\.(\d+)\.([a-z0-9]+)\.tmp$/;

/** The pid that wrote the temp file named `name` (a tempPathFor name), or null for any other name. */
export function tempFileWriter(name: string): number | null {
  const m = TEMP_NAME.exec(name);
  return m ? Number(m[2]) : null;
}

/**
 * Replace `path` with the concatenation of `chunks`. Chunks are written as they come, so a large file
 * can be streamed from views of existing buffers without being assembled in memory first.
 * Throws a UserError naming the path and the cause when the file cannot be written.
 */
export function atomicWrite(path: string, chunks: Chunk | Iterable<Chunk>): void {
  const dir = dirname(path);
  const tmp = tempPathFor(path);
  let fd: number | null = null;
  try {
    fd = openSync(tmp, "wx", existingMode(path));
    for (const chunk of asIterable(chunks)) {
      writeAll(fd, chunk);
      if (WRITE_DELAY_MS > 0) Bun.sleepSync(WRITE_DELAY_MS);
    }
    fsyncSync(fd);
    closeSync(fd);
    fd = null;
    renameSync(tmp, path);
  } catch (err) {
    if (fd !== null) {
      try {
        closeSync(fd);
      } catch {
        // already failing; the close error adds nothing
      }
    }
    try {
      unlinkSync(tmp);
    } catch {
      // the temp file may never have been created
    }
    // Only system errors (they carry a code) are the user's environment; anything else is a bug.
    if (errCode(err) === undefined) throw err;
    throw new UserError(`Could not write ${path}: ${describeFsError(err)}. ${hintFor(err)}`);
  }
  syncFolder(dir);
}

function asIterable(chunks: Chunk | Iterable<Chunk>): Iterable<Chunk> {
  if (typeof chunks === "string" || ArrayBuffer.isView(chunks)) return [chunks];
  return chunks;
}

function writeAll(fd: number, chunk: Chunk): void {
  const bytes =
    typeof chunk === "string" ? Buffer.from(chunk, "utf8") : new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  let done = 0;
  while (done < bytes.byteLength) {
    const n = writeSync(fd, bytes, done, Math.min(MAX_WRITE, bytes.byteLength - done));
    // write(2) returning 0 for a regular file means no progress is possible; do not spin.
    if (n <= 0) throw Object.assign(new Error("write made no progress"), { code: "EIO" });
    done += n;
  }
}

/** Keep the permissions of the file being replaced (a user may have made it read-only for others). */
function existingMode(path: string): number {
  try {
    return statSync(path).mode & 0o7777;
  } catch {
    return 0o644;
  }
}

/** The rename is only durable once the folder entry is on disk. Some filesystems refuse to fsync a
 * folder; the data itself is already synced, so that is not worth failing the write for. */
function syncFolder(dir: string): void {
  let fd: number | null = null;
  try {
    fd = openSync(dir, "r");
    fsyncSync(fd);
  } catch {
    // see above
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

/** A system error's code (ENOENT, ENOSPC…); undefined for anything else, which is a bug, not the user's. */
export function errCode(err: unknown): string | undefined {
  if (typeof err === "object" && err !== null && "code" in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === "string" ? code : undefined;
  }
  return undefined;
}

/** A system error as words: "no space left on the device", not ENOSPC. */
export function describeFsError(err: unknown): string {
  switch (errCode(err)) {
    case "ENOSPC":
      return "no space left on the device";
    case "EDQUOT":
      return "the disk quota is exceeded";
    case "EFBIG":
      return "the file is larger than the file-size limit allows";
    case "EACCES":
    case "EPERM":
      return "permission denied";
    case "EROFS":
      return "the file system is read-only";
    case "ENOENT":
      return "the folder does not exist";
    case "ENOTDIR":
      return "a part of the path is not a folder";
    case "EISDIR":
      return "the path is a folder";
    case "EIO":
      return "an input/output error occurred";
    default:
      return err instanceof Error ? err.message : String(err);
  }
}

function hintFor(err: unknown): string {
  switch (errCode(err)) {
    case "ENOSPC":
    case "EDQUOT":
      return "Free some space or choose another output folder; the previous file (if any) is unchanged.";
    case "EFBIG":
      return "Raise the limit (ulimit -f) or choose another output folder; the previous file (if any) is unchanged.";
    case "EACCES":
    case "EPERM":
    case "EROFS":
      return "Choose a folder you can write to; the previous file (if any) is unchanged.";
    case "ENOENT":
      return "Create the folder first or check the path.";
    default:
      return "The previous file (if any) is unchanged.";
  }
}

/** Why an input cannot be read, in words: describeFsError speaks of writing (its ENOENT is "the folder
 * does not exist"); a file being read is missing itself, or is a folder. */
export function whyUnreadable(err: unknown): string {
  switch (errCode(err)) {
    case "ENOENT":
      return "no such file";
    case "EISDIR":
      return "that is a folder, not a file";
    default:
      return describeFsError(err);
  }
}

/** A system error while reading an input, as a UserError naming what was read. */
export function readText(path: string, what: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    if (errCode(err) === undefined) throw err;
    throw new UserError(`Cannot read ${what} ${path}: ${describeFsError(err)}. Check that it exists and is readable.`);
  }
}

/** The vocabulary files (`*.vocab`) in a checkpoint's folder and the folder above it, where training
 * puts them (`--output run --vocab run/tokenizer.vocab`, or the defaults outputs/autoregressive/ and
 * outputs/tokenizer.vocab): what to suggest when the vocabulary given is missing. */
export function vocabFilesNear(checkpointPath: string): string[] {
  const found: string[] = [];
  const here = dirname(checkpointPath);
  for (const dir of [here, dirname(here)]) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names.sort()) {
      const path = join(dir, name);
      if (name.endsWith(".vocab") && !found.includes(path) && isFile(path)) found.push(path);
    }
    if (dir === dirname(dir)) break;
  }
  return found;
}

/** Is there a regular file at `path` (false for a folder, or nothing)? */
export function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Is there a folder at `path`? */
export function isFolder(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** " Found beside the checkpoint: … — pass --vocab …." when there is one to suggest, else "". */
export function vocabHint(checkpointPath: string): string {
  const near = vocabFilesNear(checkpointPath);
  if (near.length === 0) return "";
  if (near.length === 1) return ` Beside the checkpoint there is ${near[0]}: pass --vocab ${near[0]} if it is the one.`;
  return ` Beside the checkpoint there are ${near.slice(0, 3).join(", ")}${near.length > 3 ? ", …" : ""}: pass the right one with --vocab.`;
}
