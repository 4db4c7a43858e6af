/**
 * The train command's options: one zod schema for both the flags and a `--config file.json`, whose
 * keys mirror the flags (`d_model`, `d-model` or `dModel` all mean --d-model). Flags win over the
 * file; defaults (LoopOS's) apply last, so we still know which options the user actually gave —
 * resume needs that to warn about ignored architecture flags and to tell "continue" from "new stage".
 * A config value is checked as strictly as a flag (a number is a JSON number, one value per option)
 * and its relative paths are relative to the file, so a config works from any folder.
 */
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, join } from "node:path";
import { z } from "zod";
import { camel, flagName, kebab, once } from "../base/flags.ts";
import { UserError } from "../base/errors.ts";
import { describeFsError, errCode } from "../base/files.ts";

// Strict types here: a config file's "32" (a string) or [1, 5] (a list) is refused, not read as a
// number. Flags arrive as text from the command line and are converted before the check.
const whole = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.number({ invalid_type_error: "expected a whole number" }).int("expected a whole number")
    .min(min, `must be at least ${min}`).max(max, `must be at most ${max}`);
const real = (check: (n: z.ZodNumber) => z.ZodNumber) =>
  check(z.number({ invalid_type_error: "expected a number" }).finite("not a finite number"));
const path = z.string({ invalid_type_error: "expected a path" }).min(1, "expected a path");

const shape = {
  data: path,
  vocab: path,
  // 256 byte tokens, the end-of-text special and at least one merge (tokenizer/train.ts MIN_VOCAB_SIZE).
  vocabSize: z.number({ invalid_type_error: "expected a whole number" }).int("expected a whole number")
    .min(258, "must be at least 258 (256 byte tokens, 1 special, 1 merge)").max(1 << 22, `must be at most ${1 << 22}`),
  minFrequency: whole(1),
  output: path,
  resume: path,
  dModel: whole(1, 1 << 16),
  numHeads: whole(1, 1 << 12),
  numLayers: whole(1, 1 << 10),
  dFf: whole(1, 1 << 18),
  arch: z.preprocess(
    (v) => (typeof v === "string" ? v.toLowerCase() : v),
    z.enum(["gpt2", "llama"], { errorMap: () => ({ message: "expected gpt2 or llama" }) }),
  ),
  ropeTheta: real((n) => n.positive("must be greater than 0")),
  // A flag's value is text; a config file may say true or "true".
  tieEmbeddings: z.preprocess(
    (v) => (typeof v === "string" && /^(true|false)$/i.test(v) ? v.toLowerCase() === "true" : v),
    z.boolean({ errorMap: () => ({ message: "expected true or false" }) }),
  ),
  attentionBias: z.preprocess(
    (v) => (typeof v === "string" && /^(true|false)$/i.test(v) ? v.toLowerCase() === "true" : v),
    z.boolean({ errorMap: () => ({ message: "expected true or false" }) }),
  ),
  learningRate: real((n) => n.positive("must be greater than 0")),
  epochs: whole(1, 1 << 20),
  maxLength: whole(1, 1 << 20),
  batchSize: whole(1, 1 << 16),
  threads: whole(1, 256),
  seed: whole(0, 0xffffffff),
  saveEvery: whole(0),
  maxSteps: whole(1),
  valFraction: real((n) => n.min(0, "must be at least 0").max(0.5, "must be at most 0.5")),
  weightDecay: real((n) => n.min(0, "must be at least 0")),
  gradClip: real((n) => n.min(0, "must be at least 0 (0 turns clipping off)")),
  warmupSteps: whole(0),
  logEvery: whole(1),
  precision: z.preprocess(
    (v) => (typeof v === "string" ? v.toLowerCase() : v),
    z.enum(["auto", "fp32", "bf16"], { errorMap: () => ({ message: "expected auto, fp32 or bf16" }) }),
  ),
  schedule: z.preprocess(
    (v) => (typeof v === "string" ? v.toLowerCase() : v),
    z.enum(["cosine", "wsd"], { errorMap: () => ({ message: "expected cosine or wsd" }) }),
  ),
  decayFraction: real((n) => n.gt(0, "must be greater than 0").max(1, "must be at most 1")),
  timeBudget: z.union([z.number(), z.string()], { errorMap: () => ({ message: DURATION_HELP }) }).transform((v, ctx) => {
    const seconds = durationSeconds(v);
    if (seconds === null) ctx.addIssue({ code: "custom", message: DURATION_HELP });
    return seconds ?? 0;
  }),
  evalEvery: whole(0),
  valData: path,
  tokenCache: path,
  optimizer: z.preprocess(
    (v) => (typeof v === "string" ? v.toLowerCase() : v),
    z.enum(["adamw", "muon"], { errorMap: () => ({ message: "expected adamw or muon" }) }),
  ),
};

/** Every option, all optional: what a user (flags or config) gave. */
export const trainOptionsSchema = z.object(shape).partial().strict();

const DURATION_HELP = "expected a duration greater than 0: seconds, or a number with s, m or h (90s, 30m, 2h)";

/** "90s", "30m", "2h", "1.5h" or a number of seconds; null for anything else, zero or negative. */
export function durationSeconds(value: number | string): number | null {
  if (typeof value === "number") return Number.isFinite(value) && value > 0 ? value : null;
  const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*(s|sec|m|min|h)?\s*$/i.exec(value);
  if (!m) return null;
  const unit = (m[2] ?? "s").toLowerCase();
  const seconds = Number(m[1]) * (unit.startsWith("h") ? 3600 : unit.startsWith("m") ? 60 : 1);
  return seconds > 0 && Number.isFinite(seconds) ? seconds : null;
}

const NUMERIC = new Set(Object.keys(shape).filter((k) => shape[k as keyof typeof shape] instanceof z.ZodNumber));
/** Path options: relative ones in a config file are relative to the file. */
const PATHS = ["data", "vocab", "output", "resume", "valData", "tokenCache"] as const;

export type GivenOptions = z.infer<typeof trainOptionsSchema>;
export type OptionName = keyof GivenOptions;

/** LoopOS's defaults for the model's size and the data; for the block, the optimizer and how it
 * trains (precision, schedule, and the learning rate, a rule of the width: schedule.ts
 * defaultLearningRate), what bench:quality measured best. */
export const DEFAULTS = {
  vocab: "outputs/tokenizer.vocab",
  vocabSize: 10000,
  minFrequency: 2,
  output: "outputs/autoregressive",
  dModel: 256,
  numHeads: 8,
  numLayers: 2,
  dFf: 1024,
  arch: "llama",
  ropeTheta: 10000,
  tieEmbeddings: true,
  attentionBias: true,
  epochs: 3,
  maxLength: 256,
  batchSize: 16,
  seed: 1337,
  saveEvery: 200,
  valFraction: 0.05,
  weightDecay: 0.1,
  gradClip: 1.0,
  logEvery: 10,
  precision: "auto",
  schedule: "wsd",
  decayFraction: 0.2,
  evalEvery: 0,
  optimizer: "muon",
} as const;

/** SwiGLU's hidden width when --d-ff is not given: GPT-2's MLP parameter count at LoopOS's default
 * d_ff (3·d·H = 2·d·1024), rounded up to a multiple of 16. */
export const SWIGLU_DEFAULT_FF = Math.ceil((2 * DEFAULTS.dFf) / 3 / 16) * 16;

export type TrainOptions = GivenOptions & {
  -readonly [K in Exclude<keyof typeof DEFAULTS, "precision" | "schedule" | "arch" | "tieEmbeddings" | "attentionBias">]: (typeof DEFAULTS)[K] extends string ? string : number;
} & { precision: "auto" | "fp32" | "bf16"; schedule: "cosine" | "wsd" } & { arch: "gpt2" | "llama"; tieEmbeddings: boolean; attentionBias: boolean };

export interface ResolvedOptions {
  values: TrainOptions;
  /** Options the user gave, by flag or in the config file. */
  given: Set<OptionName>;
}

export const OPTION_NAMES = Object.keys(trainOptionsSchema.shape) as OptionName[];
export const ARCHITECTURE_OPTIONS: OptionName[] = ["dModel", "numHeads", "numLayers", "dFf", "vocabSize", "arch", "ropeTheta", "tieEmbeddings", "attentionBias"];

/** Is this text a number as typed (1e400 too, which is not finite)? "Infinity" and "NaN" are words. */
function numeric(text: string): boolean {
  return text.trim() !== "" && !Number.isNaN(Number(text)) && !/infinity/i.test(text);
}

/** The first problem, naming the option as the user wrote it and its value as written. */
function describe(
  error: z.ZodError, values: Record<string, unknown>, name: (key: string) => string, shown: (key: string) => string,
  hint: (issue: z.ZodIssue) => string = () => "",
): string {
  const issue = error.issues[0]!;
  const key = String(issue.path[0] ?? "");
  const value = values[key];
  // 1e400 parses as Infinity: that is the problem, whatever else the option wants.
  const problem = typeof value === "number" && !Number.isFinite(value) ? "not a finite number" : issue.message + hint(issue);
  return `${name(key)} ${shown(key)}: ${problem}.`;
}

/** A value for an error message: short, and cheap for anything a config file can hold (a list or
 * an object is named, not printed: it may be huge or nested thousands deep). */
function showValue(value: unknown): string {
  if (value === true) return "(no value)";
  if (Array.isArray(value)) return "(a list)";
  if (typeof value === "object" && value !== null) return "(an object)";
  const text = typeof value === "string" && numeric(value) ? value : JSON.stringify(value);
  if (text === undefined) return String(value);
  return shorten(text);
}

function shorten(text: string): string {
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** Options from flags (cac's parsed object): only the keys of known options, in camelCase. */
export function optionsFromFlags(flags: Record<string, unknown>): GivenOptions {
  const given: Record<string, unknown> = {};
  const picked: Record<string, unknown> = {};
  for (const name of OPTION_NAMES) {
    if (flags[name] === undefined) continue;
    const value = once(flagName(name), flags[name]);
    given[name] = value;
    // mri hands over numbers, number-like text it did not convert (1e400), or text.
    if (NUMERIC.has(name)) picked[name] = typeof value === "string" && numeric(value) ? Number(value) : value;
    else picked[name] = typeof value === "number" ? String(value) : value;
  }
  const parsed = trainOptionsSchema.safeParse(picked);
  if (!parsed.success) {
    throw new UserError(describe(parsed.error, picked, flagName, (key) => showValue(given[key])));
  }
  return parsed.data;
}

export function optionsFromConfigFile(file: string): GivenOptions {
  let text: string;
  const takes = `--config takes a JSON file of options whose keys are the flags' names, like configs/tiny.json`;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    const code = errCode(err);
    if (code === undefined) throw err;
    if (code === "ENOENT") throw new UserError(`--config ${file}: file not found. Check the path; ${takes}.`);
    if (code === "EISDIR") throw new UserError(`--config ${file}: that is a folder, not a file; ${takes}.`);
    throw new UserError(`--config ${file}: cannot read it (${describeFsError(err)}). Check its permissions, or give another file.`);
  }
  text = text.replace(/^\uFEFF/, ""); // a byte order mark, as some editors save
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new UserError(`--config ${file}: not valid JSON (${(err as Error).message}).`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new UserError(`--config ${file}: expected a JSON object whose keys are option names, e.g. {"d_model": 256, "epochs": 3}.`);
  }
  const values = raw as Record<string, unknown>;
  const normalized: Record<string, unknown> = {};
  const written = new Map<string, string>(); // option → the key as written
  const source = new Map<string, string>(); // option → its value as written
  for (const { key, text: valueText } of topLevelEntries(text)) {
    if (key.startsWith("//") || key === "$comment") continue; // room for a note in example configs
    const name = camel(key);
    const first = written.get(name);
    if (first !== undefined) {
      const same = first === key ? `"${key}" is given twice` : `"${first}" and "${key}" are the same option`;
      throw new UserError(`--config ${file}: ${same}; give it once.`);
    }
    written.set(name, key);
    source.set(name, valueText);
    normalized[name] = values[key];
  }
  if ("config" in normalized) throw new UserError(`--config ${file}: a config file cannot name another config file.`);
  const parsed = trainOptionsSchema.safeParse(normalized);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    if (issue.code === "unrecognized_keys") {
      const names = issue.keys.map((k) => `"${written.get(k) ?? k}"`).join(", ");
      throw new UserError(`--config ${file}: unknown option ${names}. Known options: ${OPTION_NAMES.map(kebab).join(", ")}.`);
    }
    const shown = (key: string) => {
      const value = normalized[key];
      return Array.isArray(value) || (typeof value === "object" && value !== null) ? showValue(value) : shorten(source.get(key)!);
    };
    const hint = (i: z.ZodIssue) => {
      if (i.code !== "invalid_type") return "";
      const value = normalized[String(i.path[0])];
      if (i.expected === "number" && typeof value === "string" && numeric(value)) return " (a JSON number: write it without quotes)";
      if (i.received === "number" && i.expected === "string") return " (a JSON string: write it in quotes)";
      return "";
    };
    throw new UserError(describe(parsed.error, normalized, (key) => `--config ${file}: "${written.get(key) ?? key}"`, shown, hint));
  }
  const options = parsed.data;
  for (const key of PATHS) {
    const value = options[key];
    if (value !== undefined && !isAbsolute(value)) options[key] = join(dirname(file), value);
  }
  return options;
}

/**
 * The top-level keys of a JSON object, in order and with repeats, each with its value's text as
 * written: JSON.parse keeps only the last of a repeated key and turns 1e400 into Infinity. The text
 * is known to be valid JSON (JSON.parse read it), so this only needs to find the boundaries.
 */
function topLevelEntries(text: string): { key: string; text: string }[] {
  const entries: { key: string; text: string }[] = [];
  let i = text.indexOf("{") + 1;
  const space = () => {
    while (i < text.length && " \t\n\r".includes(text[i]!)) i++;
  };
  const stringEnd = (start: number) => {
    let j = start + 1;
    while (text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
    return j + 1;
  };
  for (;;) {
    space();
    if (text[i] !== '"') break; // the closing brace
    const keyEnd = stringEnd(i);
    const key = JSON.parse(text.slice(i, keyEnd)) as string;
    i = keyEnd;
    space();
    i++; // the colon
    space();
    const start = i;
    let depth = 0;
    while (i < text.length) {
      const c = text[i]!;
      if (c === '"') {
        i = stringEnd(i);
        if (depth === 0) break;
        continue;
      }
      if (c === "{" || c === "[") depth++;
      else if (c === "}" || c === "]") {
        if (depth === 0) break;
        if (--depth === 0) {
          i++;
          break;
        }
      } else if (c === "," && depth === 0) break;
      i++;
    }
    entries.push({ key, text: text.slice(start, i).trim() });
    space();
    if (text[i] === ",") i++;
  }
  return entries;
}

/** Config file, then flags over it, then defaults; checks that the options fit together. */
export function resolveOptions(flags: Record<string, unknown>): ResolvedOptions {
  const fromFlags = optionsFromFlags(flags);
  const configPath = once("--config", flags.config);
  if (configPath === true) throw new UserError("--config needs a file name.");
  const fromFile = configPath === undefined ? {} : optionsFromConfigFile(String(configPath));
  const merged: GivenOptions = { ...fromFile, ...fromFlags };
  const given = new Set(Object.keys(merged) as OptionName[]);
  const values = { ...DEFAULTS, ...merged } as TrainOptions;
  if (values.arch === "llama" && !given.has("dFf")) values.dFf = SWIGLU_DEFAULT_FF;
  if (values.dModel % values.numHeads !== 0) {
    throw new UserError(
      `--d-model ${values.dModel} must be a multiple of --num-heads ${values.numHeads} (each head gets d_model / num_heads channels).`,
    );
  }
  if (values.dModel / values.numHeads > 1024) {
    throw new UserError(`--d-model ${values.dModel} / --num-heads ${values.numHeads} gives heads of ${values.dModel / values.numHeads} channels; at most 1024 are supported.`);
  }
  return { values, given };
}
