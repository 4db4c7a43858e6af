/**
 * The overwrite rule: a file of value (a checkpoint, a vocabulary, an exported model) is never
 * replaced without an explicit `--overwrite`. Without it, a command that would replace one stops
 * before any slow work and names the ways out.
 */
import { existsSync, rmdirSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { UserError } from "./base/errors.ts";

export interface Replacing {
  /** What the file is, for the message: "a checkpoint", "a vocabulary". */
  what: string;
  /** The flag that named it (or the command's output), e.g. "--output". */
  flag: string;
  /** Other ways out than --overwrite, each a short imperative ("give another --output"). */
  waysOut?: string[];
}

/** Throws unless `path` does not exist yet, or `overwrite` says it may be replaced. */
export function refuseToReplace(path: string, overwrite: boolean, r: Replacing): void {
  if (overwrite || !existsSync(path)) return;
  if (statSync(path).isDirectory()) {
    throw new UserError(`${r.flag} ${path}: a folder is in the way of the file to write. Give a file path.`);
  }
  const ways = [...(r.waysOut ?? []), "pass --overwrite to replace it"];
  throw new UserError(`${r.flag}: ${path} already holds ${r.what}; it was left as it is. To go on, ${joinOr(ways)}.`);
}

function joinOr(xs: string[]): string {
  return xs.length <= 1 ? (xs[0] ?? "") : `${xs.slice(0, -1).join(", ")}, or ${xs[xs.length - 1]}`;
}

/**
 * Fails now, before any slow work, when `path` could not be written later: a folder in its place,
 * a file where a parent folder should be, or a parent that refuses new files (read-only, no rights).
 */
export function checkWritable(path: string, flag: string): void {
  if (existsSync(path) && statSync(path).isDirectory()) {
    throw new UserError(`${flag} ${path}: that is a folder; give the path of a file to write.`);
  }
  let dir = dirname(resolve(path));
  while (!existsSync(dir)) dir = dirname(dir);
  if (!statSync(dir).isDirectory()) {
    throw new UserError(`${flag} ${path}: ${dir} is a file, so no folder can be made there. Choose another path.`);
  }
  // access(W_OK) says yes to root on a read-only mount's neighbours; a real file says what will happen.
  const probe = join(dir, `.train-vocab-probe-${process.pid}`);
  try {
    writeFileSync(probe, "");
    unlinkSync(probe);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new UserError(`${flag} ${path}: cannot write in ${dir} (${code}). Choose a place you can write to.`);
  }
}

/** The outermost folder of `dir` that does not exist yet (null when `dir` exists): what a command
 * would create, and so what it should remove again when it fails before writing anything there. */
export function firstMissingFolder(dir: string): string | null {
  let missing: string | null = null;
  for (let d = resolve(dir); !existsSync(d); d = dirname(d)) {
    missing = d;
    if (dirname(d) === d) break;
  }
  return missing;
}

/** Removes `dir` and its parents up to `upTo` (inclusive) while they are empty; never anything else. */
export function removeEmptyFolders(dir: string, upTo: string): void {
  const stop = resolve(upTo);
  for (let d = resolve(dir); ; d = dirname(d)) {
    try {
      rmdirSync(d); // fails on a folder that is not empty: what was written there stays
    } catch {
      return;
    }
    if (d === stop || dirname(d) === d) return;
  }
}
