/**
 * Output paths. The overwrite rule: a file of value (a checkpoint, a vocabulary, an exported model) is
 * never replaced without an explicit `--overwrite`. Without it, a command that would replace one stops
 * before any slow work and names the ways out. A path that could not be written is found before the
 * slow work too, and a failed run takes back what it created (new files, new folders), so a failure
 * leaves nothing behind but the files --overwrite allowed it to replace. Every message names the flag
 * and the path as the user typed them.
 */
import { existsSync, mkdirSync, rmdirSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { UserError } from "./errors.ts";
import { describeFsError, errCode } from "./files.ts";

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
 * Fails now, before any slow work, when the file `path` could not be written later: a folder in its
 * place, or a parent folder that cannot be made or written in (see checkFolderWay).
 */
export function checkWritable(path: string, flag: string): void {
  if (existsSync(path) && statSync(path).isDirectory()) {
    throw new UserError(`${flag} ${path}: that is a folder; give the path of a file to write.`);
  }
  checkFolderWay(dirname(path), flag, path);
}

/**
 * Before any slow work: `folder` exists as a folder, or can be made where it is (no file in the way
 * of it or of a parent, and the nearest existing parent takes new files). `given` is what the user
 * typed, for the message.
 */
export function checkFolderWay(folder: string, flag: string, given = folder): void {
  const found = nearestExisting(folder);
  if (!statSync(found).isDirectory()) {
    throw new UserError(`${flag} ${given}: ${found} is a file, not a folder. Give another ${flag}, or move that file away.`);
  }
  // access(W_OK) says yes to root on a read-only mount's neighbours; a real file says what will happen.
  const probe = join(found, `.train-vocab-probe-${process.pid}`);
  try {
    writeFileSync(probe, "");
    unlinkSync(probe);
  } catch (err) {
    if (errCode(err) === undefined) throw err;
    throw new UserError(`${flag} ${given}: cannot write in ${found} (${describeFsError(err)}). Choose a folder you can write to.`);
  }
}

/** The nearest part of `path` (itself or a parent) that exists, spelled as the user gave it. */
function nearestExisting(path: string): string {
  let p = path;
  while (!existsSync(p) && dirname(p) !== p) p = dirname(p);
  return p;
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

/** What one run wrote, so that a failure can take it back. */
export class Outputs {
  /** Folders made: the one asked for, and the outermost one that was missing. */
  private readonly folders: { dir: string; first: string }[] = [];
  private readonly files: string[] = [];

  /** Make `dir` and any missing parents. */
  folder(dir: string, flag: string, given = dir): void {
    let first: string | undefined;
    try {
      first = mkdirSync(dir, { recursive: true });
    } catch (err) {
      const code = errCode(err);
      if (code === undefined) throw err;
      const inTheWay = code === "EEXIST" || code === "ENOTDIR";
      const why = inTheWay ? `${nearestExisting(dir)} is a file, not a folder` : describeFsError(err);
      const hint = inTheWay ? `Give another ${flag}, or move that file away.` : "Choose a folder you can write to.";
      throw new UserError(`${flag} ${given}: cannot create the folder ${dir} (${why}). ${hint}`);
    }
    if (first !== undefined) this.folders.push({ dir, first });
  }

  /** These files are about to be written: the ones that do not exist yet are removed again by undo(). */
  willWrite(paths: string[]): void {
    for (const p of paths) if (!existsSync(p)) this.files.push(p);
  }

  /** Run a write; its errors name `flag`. */
  write<T>(flag: string, path: string, fn: () => T): T {
    this.willWrite([path]);
    try {
      return fn();
    } catch (err) {
      if (err instanceof UserError) throw new UserError(`${flag}: ${err.message}`);
      if (errCode(err) === undefined) throw err;
      throw new UserError(`${flag}: could not write ${path}: ${describeFsError(err)}. Choose a folder you can write to.`);
    }
  }

  /** Remove what this run created, newest first; a folder only once it is empty again. */
  undo(): void {
    for (const f of this.files.reverse()) {
      try {
        rmSync(f, { force: true });
      } catch {
        // the error that made us undo is the one worth reporting
      }
    }
    for (const { dir, first } of this.folders.reverse()) removeEmptyFolders(dir, first);
    this.files.length = 0;
    this.folders.length = 0;
  }
}
