/** Flag parsing shared by the commands that use a trained model (generate, eval, inspect, export,
 * import): cac hands over whatever mri guessed (a number, a string, an array when repeated), so
 * each value is checked here and a bad one becomes a UserError that names the flag. */
import { existsSync, statSync } from "node:fs";
import { UserError } from "../base/errors.ts";
import { vocabHint } from "../base/files.ts";
import { once } from "../base/flags.ts";
import { folderGivenAsCheckpoint } from "../checkpoint/io.ts";

/** A number as the user typed it; "" and blanks are not 0 (Number("") is). */
function numberOf(value: unknown): number {
  if (typeof value === "number") return value;
  if (typeof value !== "string" || value.trim() === "") return NaN;
  return Number(value);
}

/** Readable bounds: the Number.MIN_VALUE that callers pass for "above 0" is shown as the open
 * bound it is, and the largest numbers as ∞. */
function range(min: number, max: number): string {
  const low = min === Number.MIN_VALUE ? "(0" : min <= -Number.MAX_VALUE ? "(-∞" : `[${min}`;
  const high = max === -Number.MIN_VALUE ? "0)" : max >= Number.MAX_VALUE ? "∞)" : `${max}]`;
  return `${low}, ${high}`;
}

/** `note` says why the bounds are what they are. */
export function wholeNumber(flag: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER, note = ""): number {
  const v = once(flag, value);
  const n = numberOf(v);
  if (!Number.isInteger(n) || n < min || n > max) {
    const bounds = max >= Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `from ${min} to ${max}`;
    throw new UserError(`${flag} ${show(v)}: expected a whole number ${bounds}${note ? ` (${note})` : ""}.`);
  }
  return n;
}

export function realNumber(flag: string, value: unknown, min: number, max: number, note = ""): number {
  const v = once(flag, value);
  const n = numberOf(v);
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new UserError(`${flag} ${show(v)}: expected a number in ${range(min, max)}${note ? ` (${note})` : ""}.`);
  }
  return n;
}

function show(value: unknown): string {
  if (value === true) return "(no value)";
  return typeof value === "string" && value.trim() === "" ? JSON.stringify(value) : String(value);
}

/** A path or text flag; mri turns "123" into a number and `--flag` alone into true. */
export function text(flag: string, value: unknown, required = true): string | undefined {
  const v = once(flag, value);
  if (v === undefined || v === null) {
    if (required) throw new UserError(`${flag} is required.`);
    return undefined;
  }
  if (v === true || v === false) throw new UserError(`${flag} needs a value.`);
  return String(v);
}

const HINTS: Record<string, string> = {
  checkpoint: "Check the path: training writes <output dir>/model_checkpoint.bin (default outputs/autoregressive/)",
  vocab: "Pass the vocab file the model was trained with (default outputs/tokenizer.vocab)",
  data: "Give a text file or a folder of text files",
};

/** Fail early, with LoopOS's wording for a missing checkpoint and a hint on where to look (for a
 * vocabulary, the ones beside `checkpoint`). */
export function requireFile(path: string, kind: "checkpoint" | "vocab" | "data", flag?: string, checkpoint?: string): void {
  if (existsSync(path)) {
    if (kind === "checkpoint" && statSync(path).isDirectory()) throw folderGivenAsCheckpoint(path);
    return;
  }
  const what = kind === "checkpoint" ? "Checkpoint file" : kind === "vocab" ? "Vocabulary file" : "Data file";
  const near = kind === "vocab" && checkpoint ? vocabHint(checkpoint) : "";
  throw new UserError(`${what} not found: ${path}${flag ? ` (${flag})` : ""}. ${HINTS[kind]}.${near}`);
}

export const DEFAULT_CHECKPOINT = "outputs/autoregressive/model_checkpoint.bin";

/** The checkpoint of generate, eval and serve: a first argument (as LoopOS's `generate [checkpoint]`)
 * or --checkpoint, not two different ones; else the default. */
export function checkpointOf(argument: unknown, flag: unknown): { path: string; from: string } {
  const fromFlag = text("--checkpoint", flag, false);
  if (argument === undefined || argument === null) return { path: fromFlag ?? DEFAULT_CHECKPOINT, from: "--checkpoint" };
  const given = String(argument);
  if (fromFlag !== undefined && fromFlag !== given) {
    throw new UserError(`Two checkpoints given: ${given} (the first argument) and ${fromFlag} (--checkpoint). Give one of them.`);
  }
  return { path: given, from: "the first argument" };
}
