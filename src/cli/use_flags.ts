/** Flag parsing shared by the commands that use a trained model (generate, eval, inspect, export,
 * import): cac hands over whatever mri guessed (a number, a string, an array when repeated), so
 * each value is checked here and a bad one becomes a UserError that names the flag. */
import { existsSync } from "node:fs";
import { UserError } from "../errors.ts";

/** The last value when a flag was given twice (later wins, as in most CLIs). */
function last(value: unknown): unknown {
  return Array.isArray(value) ? value[value.length - 1] : value;
}

export function wholeNumber(flag: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(last(value));
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new UserError(`${flag} ${String(last(value))}: expected a whole number in ${min}..${max === Number.MAX_SAFE_INTEGER ? "∞" : max}.`);
  }
  return n;
}

export function realNumber(flag: string, value: unknown, min: number, max: number, note = ""): number {
  const n = Number(last(value));
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new UserError(`${flag} ${String(last(value))}: expected a number in [${min}, ${max}]${note ? ` (${note})` : ""}.`);
  }
  return n;
}

/** A path or text flag; mri turns "123" into a number and `--flag` alone into true. */
export function text(flag: string, value: unknown, required = true): string | undefined {
  const v = last(value);
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

/** Fail early, with the seed's wording for a missing checkpoint and a hint on where to look. */
export function requireFile(path: string, kind: "checkpoint" | "vocab" | "data", flag?: string): void {
  if (existsSync(path)) return;
  const what = kind === "checkpoint" ? "Checkpoint file" : kind === "vocab" ? "Vocabulary file" : "Data file";
  throw new UserError(`${what} not found: ${path}${flag ? ` (${flag})` : ""}. ${HINTS[kind]}.`);
}
