/** Files in and out: data discovery, size-checked reads, atomic writes. */
import { closeSync, openSync, readFileSync, readdirSync, readlinkSync, readSync, realpathSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { atomicWrite as writeAtomically, errCode, whyUnreadable } from "../base/files.ts";
import { UserError } from "../base/errors.ts";
import { safeCut } from "./native_bpe.ts";

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

/** Notes already given: a run may list the same data twice (vocabulary, then training). */
const noted = new Set<string>();

export interface DataFileOptions {
  /** What the run writes (its --output folder, its --vocab file): left out of the data when inside it,
   * so a run never trains on its own metrics, token cache or vocabulary. Compared by real path;
   * paths that do not exist yet are ignored. */
  exclude?: string[];
}

/**
 * `path` itself if it is a text file; every text file under it (recursively, sorted by path) if a
 * directory. Hidden files are skipped; so are empty and binary files in a folder (`notice` hears
 * which), while a single file given by name that is empty or binary is refused.
 *
 * Folders are walked once each by real path: a symbolic link back to a folder above it (a loop) is
 * skipped with a notice, and a file or folder reached again through links is read once. Each notice
 * is given once per process.
 */
export function listDataFiles(path: string, notice?: (message: string) => void, options: DataFileOptions = {}): string[] {
  const note = (message: string) => {
    if (!notice || noted.has(message)) return;
    noted.add(message);
    notice(message);
  };
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    if ((err as { code?: string }).code === "ELOOP") throw new UserError(`--data ${path}: a symbolic link that leads back to itself. Give a text file or a folder of text files.`);
    throw new UserError(`--data ${path}: no such file or directory. Give a text file or a folder of text files.`);
  }
  if (st.isFile()) {
    const why = notText(path, st.size);
    if (why === "empty") throw new UserError(`--data ${path}: the file is empty. Give a text file (UTF-8) with some text in it.`);
    if (why) throw new UserError(`--data ${path}: not a text file (${why}). Give text files (UTF-8).`);
    return [path];
  }
  if (!st.isDirectory()) throw new UserError(`--data ${path}: not a regular file or directory.`);
  const root = realpathSync(path);
  const excluded = new Map<string, string>(); // real path -> as given
  for (const folder of options.exclude ?? []) {
    const real = realPath(folder);
    if (real !== null) excluded.set(real, folder);
  }
  if (excluded.has(root)) {
    throw new UserError(`--data ${path} is the output folder ${excluded.get(root)}: the run would train on its own files (metrics, token cache). Keep the text in a folder of its own, or choose another --output.`);
  }
  const out: string[] = [];
  const skipped: string[] = [];
  const loops: string[] = [];
  const again: string[] = [];
  const leftOut: string[] = [];
  let hidden = 0;
  const seen = new Map<string, string>([[root, "."]]); // real path -> where it was first reached
  const show = (p: string) => relative(path, p) || ".";
  const walk = (dir: string, ancestors: Set<string>) => {
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch (err) {
      // A folder the user may not read (or one that vanished): said and skipped, like a binary file.
      skipped.push(`${show(dir)}/ (a folder that cannot be read: ${(err as { code?: string }).code ?? (err as Error).message})`);
      return;
    }
    for (const name of names) {
      if (name.startsWith(".")) {
        hidden++; // hidden files (.DS_Store, .git) are not training data
        continue;
      }
      const p = join(dir, name);
      let s;
      try {
        s = statSync(p);
      } catch (err) {
        // a link to itself (or a chain of links in a circle) leads nowhere
        if ((err as { code?: string }).code === "ELOOP") loops.push(`${show(p)} -> ${readLink(p) ?? "?"}`);
        // a name that is not UTF-8 comes back with U+FFFD in it, a name no file has
        else if (name.includes("\uFFFD")) skipped.push(`${show(p)} (its name is not valid UTF-8: rename it)`);
        else {
          const target = readLink(p);
          skipped.push(`${show(p)} (${target !== null ? `a symbolic link to ${target}, which does not exist` : ((err as { code?: string }).code ?? (err as Error).message)})`);
        }
        continue;
      }
      if (!s.isDirectory() && !s.isFile()) continue;
      const real = realPath(p);
      if (real === null) continue;
      if (s.isDirectory() && ancestors.has(real)) {
        const link = readLink(p);
        loops.push(link !== null ? `${show(p)} -> ${link}` : `${show(p)} (${relative(root, real) || "."} again)`);
        continue;
      }
      if (excluded.has(real)) {
        leftOut.push(show(p));
        continue;
      }
      const first = seen.get(real);
      if (first !== undefined) {
        again.push(`${show(p)} (same as ${first})`);
        continue;
      }
      seen.set(real, show(p));
      if (s.isDirectory()) walk(p, new Set(ancestors).add(real));
      else {
        const why = notText(p, s.size);
        if (why) skipped.push(`${show(p)} (${why})`);
        else out.push(p);
      }
    }
  };
  walk(path, new Set([root]));
  const list = (xs: string[]) => xs.slice(0, 5).join(", ") + (xs.length > 5 ? `, … (${xs.length} in all)` : "");
  if (loops.length > 0) note(`Note: --data ${path}: skipped ${loops.length} symbolic link loop(s) (a link back to a folder above it, or to itself): ${list(loops)}`);
  if (leftOut.length > 0) note(`Note: --data ${path}: left out ${list(leftOut)}: written by this run (output folder, vocabulary), not training data.`);
  if (out.length === 0) {
    if (skipped.length > 0) {
      throw new UserError(`--data ${path}: the folder holds no text files, only ${skipped.length} that are not text or cannot be read: ${list(skipped)}. Put UTF-8 text files in it.`);
    }
    const only = [
      hidden > 0 ? `${hidden} hidden one(s), which are skipped` : "",
      leftOut.length > 0 ? `${list(leftOut)}, written by this run and left out` : "",
    ].filter(Boolean).join("; ");
    throw new UserError(`--data ${path}: the folder holds no files${only ? ` (only ${only})` : ""}. Put text files in it (subfolders are read too).`);
  }
  if (again.length > 0) note(`Note: --data ${path}: ${again.length} file(s) or folder(s) reached again through symbolic links are read once: ${list(again)}.`);
  if (skipped.length > 0) note(`Note: --data ${path}: skipped ${skipped.length} file(s) that are not text or cannot be read: ${list(skipped)}.`);
  return out;
}

function realPath(p: string): string | null {
  try {
    return realpathSync(p);
  } catch {
    return null;
  }
}

/** What a symbolic link points to, as written (for notices); null if it is not a link. */
function readLink(p: string): string | null {
  try {
    return readlinkSync(p);
  } catch {
    return null;
  }
}

/** Read a whole file, refusing anything larger than `maxBytes` before reading a byte. */
export function readFileLimited(path: string, maxBytes: number, what: string): Uint8Array {
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    if (errCode(err) === undefined) throw err;
    throw new UserError(`${what} ${path}: ${errCode(err) === "ENOENT" ? "file not found" : `cannot read it (${whyUnreadable(err)})`}.`);
  }
  if (st.isDirectory()) throw new UserError(`${what} ${path}: that is a folder, not a file.`);
  if (!st.isFile()) throw new UserError(`${what} ${path}: not a regular file.`);
  if (st.size > maxBytes) {
    throw new UserError(`${what} ${path}: ${st.size} bytes is larger than the ${maxBytes} this reader accepts; is it the right file?`);
  }
  try {
    return new Uint8Array(readFileSync(path));
  } catch (err) {
    if (errCode(err) === undefined) throw err;
    throw new UserError(`${what} ${path}: cannot read it (${whyUnreadable(err)}).`);
  }
}

/** Write `data` to `path` atomically (temp file in the same folder, fsync, rename); a failure is a
 * UserError naming the path and the cause, and leaves the previous file untouched. */
export function atomicWrite(path: string, data: Uint8Array | string): void {
  writeAtomically(path, data);
}

/**
 * Reads `path` through `buf` in pieces cut where the pre-tokenizer always cuts (the end of the file
 * always is one), so each piece can be tokenized or counted on its own; `use` gets each piece and
 * the bytes read so far. Returns the file's size. `what` names the file in errors ("--data x").
 */
export function readInSafePieces(path: string, buf: Uint8Array, use: (piece: Uint8Array, bytesRead: number) => void, what = path): number {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (err) {
    throw new UserError(`${what}: cannot read it (${(err as Error).message}).`);
  }
  try {
    let filled = 0; // bytes in buf not yet handed on
    let total = 0;
    for (;;) {
      const n = readSync(fd, buf, filled, buf.length - filled, null);
      total += n;
      filled += n;
      if (n === 0 || filled === buf.length) {
        let cut = n === 0 ? filled : safeCut(buf.subarray(0, filled));
        if (cut === 0) cut = filled; // a whole buffer with no safe cut: accept a split word
        use(buf.subarray(0, cut), total);
        buf.copyWithin(0, cut, filled);
        filled -= cut;
      }
      if (n === 0) return total;
    }
  } finally {
    closeSync(fd);
  }
}
