/**
 * The train command's options: one zod schema for both the flags and a `--config file.json`, whose
 * keys mirror the flags (`d_model`, `d-model` or `dModel` all mean --d-model). Flags win over the
 * file; defaults (the seed's) apply last, so we still know which options the user actually gave —
 * resume needs that to warn about ignored architecture flags and to tell "continue" from "new stage".
 */
import { readFileSync } from "node:fs";
import { z } from "zod";
import { UserError } from "../errors.ts";

const lastOf = (v: unknown): unknown => (Array.isArray(v) ? v[v.length - 1] : v);
/** cac/mri hand over numbers, numeric-looking strings, or `true` for a flag given without a value. */
const toNumber = (v: unknown): unknown => {
  const x = lastOf(v);
  if (typeof x === "string" && x.trim() !== "" && Number.isFinite(Number(x))) return Number(x);
  return x;
};
const toText = (v: unknown): unknown => {
  const x = lastOf(v);
  return typeof x === "number" ? String(x) : x;
};

const whole = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.preprocess(
    toNumber,
    z.number({ invalid_type_error: "expected a whole number" }).int("expected a whole number")
      .min(min, `must be at least ${min}`).max(max, `must be at most ${max}`),
  );
const real = (check: (n: z.ZodNumber) => z.ZodNumber) =>
  z.preprocess(toNumber, check(z.number({ invalid_type_error: "expected a number" }).finite("expected a finite number")));
const path = z.preprocess(toText, z.string({ invalid_type_error: "expected a path" }).min(1, "expected a path"));

/** Every option, all optional: what a user (flags or config) gave. */
export const trainOptionsSchema = z
  .object({
    data: path,
    vocab: path,
    // 256 byte tokens, the end-of-text special and at least one merge (tokenizer/train.ts MIN_VOCAB_SIZE).
    vocabSize: z.preprocess(
      toNumber,
      z.number({ invalid_type_error: "expected a whole number" }).int("expected a whole number")
        .min(258, "must be at least 258 (256 byte tokens, 1 special, 1 merge)").max(1 << 22, `must be at most ${1 << 22}`),
    ),
    minFrequency: whole(1),
    output: path,
    resume: path,
    dModel: whole(1, 1 << 16),
    numHeads: whole(1, 1 << 12),
    numLayers: whole(1, 1 << 10),
    dFf: whole(1, 1 << 18),
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
      (v) => (typeof lastOf(v) === "string" ? String(lastOf(v)).toLowerCase() : lastOf(v)),
      z.enum(["fp32", "bf16"], { errorMap: () => ({ message: "expected fp32 or bf16" }) }),
    ),
  })
  .partial()
  .strict();

export type GivenOptions = z.infer<typeof trainOptionsSchema>;
export type OptionName = keyof GivenOptions;

/** The seed's defaults, and ours for what the seed did not have. */
export const DEFAULTS = {
  vocab: "outputs/tokenizer.vocab",
  vocabSize: 10000,
  minFrequency: 2,
  output: "outputs/autoregressive",
  dModel: 256,
  numHeads: 8,
  numLayers: 2,
  dFf: 1024,
  learningRate: 0.0001,
  epochs: 3,
  maxLength: 256,
  batchSize: 16,
  seed: 1337,
  saveEvery: 200,
  valFraction: 0.05,
  weightDecay: 0.1,
  gradClip: 1.0,
  logEvery: 10,
  precision: "fp32",
} as const;

export type TrainOptions = GivenOptions & {
  -readonly [K in Exclude<keyof typeof DEFAULTS, "precision">]: (typeof DEFAULTS)[K] extends string ? string : number;
} & { precision: "fp32" | "bf16" };

export interface ResolvedOptions {
  values: TrainOptions;
  /** Options the user gave, by flag or in the config file. */
  given: Set<OptionName>;
}

export const OPTION_NAMES = Object.keys(trainOptionsSchema.shape) as OptionName[];
export const ARCHITECTURE_OPTIONS: OptionName[] = ["dModel", "numHeads", "numLayers", "dFf", "vocabSize"];

export function flagName(name: string): string {
  return "--" + name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

function camel(key: string): string {
  return key.replace(/[-_]([a-z])/g, (_, c: string) => c.toUpperCase());
}

function describe(error: z.ZodError, source: string, raw: Record<string, unknown>): string {
  const issue = error.issues[0]!;
  const key = String(issue.path[0] ?? "");
  if (issue.code === "unrecognized_keys") {
    const names = issue.keys.map((k) => `"${k}"`).join(", ");
    return `${source}: unknown option ${names}. Known options: ${OPTION_NAMES.map((n) => flagName(n).slice(2)).join(", ")}.`;
  }
  const value = lastOf(raw[key]);
  const shown = value === true ? "(no value)" : showValue(value);
  return `${source === "flags" ? flagName(key) : `${source}: "${key}"`} ${shown}: ${issue.message}.`;
}

/** A value for an error message: short, and cheap for anything a config file can hold (a list or
 * an object is named, not printed: it may be huge or nested thousands deep). */
function showValue(value: unknown): string {
  if (Array.isArray(value)) return "(a list)";
  if (typeof value === "object" && value !== null) return "(an object)";
  const text = JSON.stringify(value);
  if (text === undefined) return String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** Options from flags (cac's parsed object): only the keys of known options, in camelCase. */
export function optionsFromFlags(flags: Record<string, unknown>): GivenOptions {
  const picked: Record<string, unknown> = {};
  for (const name of OPTION_NAMES) if (flags[name] !== undefined) picked[name] = flags[name];
  const parsed = trainOptionsSchema.safeParse(picked);
  if (!parsed.success) throw new UserError(describe(parsed.error, "flags", picked));
  return parsed.data;
}

export function optionsFromConfigFile(file: string): GivenOptions {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    throw new UserError(`--config ${file}: file not found or not readable.`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new UserError(`--config ${file}: not valid JSON (${(err as Error).message}).`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new UserError(`--config ${file}: expected a JSON object whose keys are option names, e.g. {"d_model": 256, "epochs": 3}.`);
  }
  const normalized: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) {
    if (key.startsWith("//") || key === "$comment") continue; // room for a note in example configs
    normalized[camel(key)] = value;
  }
  if ("config" in normalized) throw new UserError(`--config ${file}: a config file cannot name another config file.`);
  const parsed = trainOptionsSchema.safeParse(normalized);
  if (!parsed.success) throw new UserError(describe(parsed.error, `--config ${file}`, normalized));
  return parsed.data;
}

/** Config file, then flags over it, then defaults; checks that the options fit together. */
export function resolveOptions(flags: Record<string, unknown>): ResolvedOptions {
  const fromFlags = optionsFromFlags(flags);
  const configPath = lastOf(flags.config);
  if (configPath === true) throw new UserError("--config needs a file name.");
  const fromFile = configPath === undefined ? {} : optionsFromConfigFile(String(configPath));
  const merged: GivenOptions = { ...fromFile, ...fromFlags };
  const given = new Set(Object.keys(merged) as OptionName[]);
  const values = { ...DEFAULTS, ...merged } as TrainOptions;
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
