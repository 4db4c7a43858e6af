/**
 * The file system as export and import meet it, with errors a user can act on: every failure names
 * the flag and the path and says what to do. Output folders are made only once the inputs were read,
 * and a failed write takes back what the run created (new files, new folders), so a failure leaves
 * nothing behind but the files --overwrite allowed it to replace.
 */
import { accessSync, constants, existsSync, mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { describeFsError } from "../checkpoint/atomic.ts";
import { UserError } from "../base/errors.ts";

function errCode(err: unknown): string | undefined {
  const code = typeof err === "object" && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === "string" ? code : undefined;
}

/** The nearest part of `path` (itself or a parent) that exists, spelled as the user gave it. */
function nearestExisting(path: string): string {
  let p = path;
  while (!existsSync(p) && dirname(p) !== p) p = dirname(p);
  return p;
}

/**
 * Before any slow work: `folder` exists as a folder, or can be made where it is (no file in the way
 * of it or of a parent, and the nearest existing parent is writable). `flag` and `given` are what the
 * user typed, for the message.
 */
export function checkFolderWay(folder: string, flag: string, given: string): void {
  const found = nearestExisting(folder);
  if (!statSync(found).isDirectory()) {
    throw new UserError(`${flag} ${given}: ${found} is a file, not a folder. Give another ${flag}, or move that file away.`);
  }
  try {
    accessSync(found, constants.W_OK);
  } catch {
    throw new UserError(`${flag} ${given}: cannot write in ${found} (permission denied). Choose a folder you can write to.`);
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

/** What one export or import run wrote, so that a failure can take it back. */
export class Outputs {
  private readonly folders: string[] = [];
  private readonly files: string[] = [];

  /** Make `dir` and any missing parents. */
  folder(dir: string, flag: string, given = dir): void {
    let first: string | undefined;
    try {
      first = mkdirSync(dir, { recursive: true });
    } catch (err) {
      if (errCode(err) === undefined) throw err;
      const code = errCode(err);
      const inTheWay = code === "EEXIST" || code === "ENOTDIR";
      const why = inTheWay ? `${nearestExisting(dir)} is a file, not a folder` : describeFsError(err);
      const hint = inTheWay ? `Give another ${flag}, or move that file away.` : "Choose a folder you can write to.";
      throw new UserError(`${flag} ${given}: cannot create the folder ${dir} (${why}). ${hint}`);
    }
    if (first !== undefined) this.folders.push(first);
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

  /** Remove what this run created, newest first. */
  undo(): void {
    const remove = (path: string, recursive: boolean) => {
      try {
        rmSync(path, { recursive, force: true });
      } catch {
        // the error that made us undo is the one worth reporting
      }
    };
    for (const f of this.files.reverse()) remove(f, false);
    for (const d of this.folders.reverse()) remove(d, true);
    this.files.length = 0;
    this.folders.length = 0;
  }
}
