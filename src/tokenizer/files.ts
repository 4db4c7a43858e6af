/** Files in and out: data discovery, size-checked reads, atomic writes. */
import { closeSync, openSync, readFileSync, readdirSync, readSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { atomicWrite as writeAtomically } from "../checkpoint/atomic.ts";
import { UserError } from "../errors.ts";

/** Bytes looked at to tell text from binary: enough for any text file's first lines. */
const SNIFF_BYTES = 64 * 1024;

/** Why a data file is not text, or null when it is: empty, or a NUL byte early on (images, archives,
 * executables, UTF-16 text all have them; UTF-8 and Latin-1 text never do). Invalid UTF-8 is fine:
 * byte-level BPE trains on raw bytes. */
export function notText(path: string, size: number): string | null {
  if (size === 0) return "empty";
  const sample = new Uint8Array(Math.min(SNIFF_BYTES, size));
  let fd: number | null = null;
  try {
    fd = openSync(path, "r");
    const n = readSync(fd, sample, 0, sample.length, 0);
    const nul = sample.subarray(0, n).indexOf(0);
    if (nul < 0) return null;
    const utf16 = n >= 2 && ((sample[0] === 0xff && sample[1] === 0xfe) || (sample[0] === 0xfe && sample[1] === 0xff));
    return utf16 ? "UTF-16 text, convert it to UTF-8" : `binary, a NUL byte at offset ${nul}`;
  } catch {
    return "unreadable";
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

/**
 * `path` itself if it is a text file; every text file under it (recursively, sorted by path) if a
 * directory. Hidden files are skipped; so are empty and binary files in a folder (`notice` hears
 * which), while a single file given by name that is empty or binary is refused.
 */
export function listDataFiles(path: string, notice?: (message: string) => void): string[] {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new UserError(`--data ${path}: no such file or directory. Give a text file or a folder of text files.`);
  }
  if (st.isFile()) {
    const why = notText(path, st.size);
    if (why === "empty") throw new UserError(`--data ${path}: the file is empty. Give a text file with the training text.`);
    if (why) throw new UserError(`--data ${path}: not a text file (${why}). Give text files (UTF-8).`);
    return [path];
  }
  if (!st.isDirectory()) throw new UserError(`--data ${path}: not a regular file or directory.`);
  const out: string[] = [];
  const skipped: string[] = [];
  let hidden = 0;
  const walk = (dir: string) => {
    const names = readdirSync(dir).sort();
    for (const name of names) {
      if (name.startsWith(".")) {
        hidden++; // hidden files (.DS_Store, .git) are not training data
        continue;
      }
      const p = join(dir, name);
      let s;
      try {
        s = statSync(p);
      } catch {
        continue; // a dangling link
      }
      if (s.isDirectory()) walk(p);
      else if (s.isFile()) {
        const why = notText(p, s.size);
        if (why) skipped.push(`${relative(path, p)} (${why})`);
        else out.push(p);
      }
    }
  };
  walk(path);
  const list = (xs: string[]) => xs.slice(0, 5).join(", ") + (xs.length > 5 ? `, … (${xs.length} in all)` : "");
  if (out.length === 0) {
    if (skipped.length > 0) {
      throw new UserError(`--data ${path}: the folder holds no text files, only ${skipped.length} that are not text: ${list(skipped)}. Put UTF-8 text files in it.`);
    }
    throw new UserError(`--data ${path}: the folder holds no files${hidden > 0 ? ` (only ${hidden} hidden one(s), which are skipped)` : ""}. Put text files in it (subfolders are read too).`);
  }
  if (skipped.length > 0) notice?.(`Note: --data ${path}: skipped ${skipped.length} file(s) that are not text: ${list(skipped)}.`);
  return out;
}

/** Read a whole file, refusing anything larger than `maxBytes` before reading a byte. */
export function readFileLimited(path: string, maxBytes: number, what: string): Uint8Array {
  let size: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new UserError(`${what} ${path}: not a regular file.`);
    size = st.size;
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`${what} ${path}: file not found.`);
  }
  if (size > maxBytes) {
    throw new UserError(`${what} ${path}: ${size} bytes is larger than the ${maxBytes} this reader accepts; is it the right file?`);
  }
  return new Uint8Array(readFileSync(path));
}

/** Write `data` to `path` atomically (temp file in the same folder, fsync, rename); a failure is a
 * UserError naming the path and the cause, and leaves the previous file untouched. */
export function atomicWrite(path: string, data: Uint8Array | string): void {
  writeAtomically(path, data);
}
