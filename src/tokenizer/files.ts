/** Files in and out: data discovery, size-checked reads, atomic writes. */
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { atomicWrite as writeAtomically } from "../checkpoint/atomic.ts";
import { UserError } from "../errors.ts";

/** `path` itself if it is a file; every file under it (recursively, sorted by path) if a directory. */
export function listDataFiles(path: string): string[] {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new UserError(`--data ${path}: no such file or directory. Give a text file or a folder of text files.`);
  }
  if (st.isFile()) return [path];
  if (!st.isDirectory()) throw new UserError(`--data ${path}: not a regular file or directory.`);
  const out: string[] = [];
  const walk = (dir: string) => {
    const names = readdirSync(dir).sort();
    for (const name of names) {
      if (name.startsWith(".")) continue; // hidden files (.DS_Store, .git) are not training data
      const p = join(dir, name);
      let s;
      try {
        s = statSync(p);
      } catch {
        continue; // a dangling link
      }
      if (s.isDirectory()) walk(p);
      else if (s.isFile()) out.push(p);
    }
  };
  walk(path);
  if (out.length === 0) throw new UserError(`--data ${path}: the folder holds no files. Put text files in it (subfolders are read too).`);
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
