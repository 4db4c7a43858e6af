/**
 * The overwrite rule: a file of value (a checkpoint, a vocabulary, an exported model) is never
 * replaced without an explicit `--overwrite`. Without it, a command that would replace one stops
 * before any slow work and names the ways out.
 */
import { existsSync, statSync } from "node:fs";
import { UserError } from "./errors.ts";

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
