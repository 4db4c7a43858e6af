/**
 * What our checkpoint says about itself, stored as one JSON string under __metadata__.train_vocab
 * (safetensors metadata values must be strings). Validated on read before any tensor byte is touched,
 * and on write so a bug cannot produce a file we would later refuse (JSON turns NaN into null).
 */
import { z } from "zod";
import type { Architecture } from "../model/layout.ts";

export const CHECKPOINT_FORMAT = "train-vocab-checkpoint";
export const CHECKPOINT_VERSION = 1;

export interface TokenizerIdentity {
  type: string;
  vocab_size: number;
  fingerprint: string;
}

/** Everything that decides the optimizer's trajectory for one training stage. */
export interface TrainingPlan {
  data_fingerprint: string;
  epochs: number;
  peak_lr: number;
  min_lr: number;
  warmup_steps: number;
  total_steps: number;
  steps_per_epoch: number;
  batch_size: number;
  seq_len: number;
  weight_decay: number;
  beta1: number;
  beta2: number;
  eps: number;
  grad_clip: number;
  seed: number;
  /** cosine: warmup, then cosine decay to min_lr at the stage's end. wsd: warmup, the peak held
   * (stable), then a linear decay to min_lr over the last decay_steps. */
  schedule: Schedule;
  /** wsd: the steps at the stage's end that decay (absent with cosine). */
  decay_steps?: number;
  /** --time-budget: the stage's budget in seconds; total_steps was planned from measured step times. */
  time_budget_s?: number;
  /** Product arithmetic: "fp32", or "bf16" (bf16 operands in the matmuls and attention, fp32 accumulation and master weights). Absent = fp32. */
  precision?: Precision;
  /** "muon": Muon for the blocks' hidden matrices, AdamW for the rest. Absent = AdamW everywhere. */
  optimizer?: "muon";
}

export type Precision = "fp32" | "bf16";
export type Schedule = "cosine" | "wsd";

export interface StageRecord {
  stage: number;
  data_fingerprint: string;
  epochs: number;
  peak_lr: number;
}

export interface TrainingState {
  global_step: number;
  stage: number;
  epoch: number;
  step_in_epoch: number;
  tokens_seen: number;
  rng_state: string;
  stage_complete: boolean;
  plan: TrainingPlan;
  history?: StageRecord[];
}

export interface CheckpointMetadata {
  format: string;
  version: number;
  arch: Architecture;
  tokenizer: TokenizerIdentity | null;
  training: TrainingState | null;
}

const count = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
const positive = (max: number) => z.number().int().positive().max(max);
const finite = z.number().finite();

// Upper bounds keep a damaged header from asking for absurd amounts of work or memory before the
// tensor table (which the file size bounds) is compared with the architecture.
export const architectureSchema: z.ZodType<Architecture> = z
  .object({
    d_model: positive(1 << 16),
    num_heads: positive(1 << 12),
    num_layers: positive(1 << 10),
    d_ff: positive(1 << 18),
    vocab_size: positive(1 << 24),
    max_seq_len: positive(1 << 20),
    tied_embeddings: z.boolean(),
    attention_bias: z.boolean(),
    // Absent = gpt2, so files written before Llama blocks keep their bytes and meaning.
    block: z.enum(["gpt2", "llama"]).optional(),
    rope_theta: finite.positive().optional(),
    norm_eps: finite.positive().max(1).optional(),
  })
  .refine((a) => a.d_model % a.num_heads === 0, { message: "d_model must be a multiple of num_heads", path: ["d_model"] })
  .refine((a) => (a.block === "llama" ? a.rope_theta !== undefined && a.norm_eps !== undefined : a.rope_theta === undefined && a.norm_eps === undefined), {
    message: "rope_theta and norm_eps belong to (and are required by) block \"llama\"",
    path: ["block"],
  })
  .refine((a) => a.block !== "llama" || !a.attention_bias, { message: "a llama block has no attention biases", path: ["attention_bias"] })
  .refine((a) => a.block !== "llama" || (a.d_model / a.num_heads) % 2 === 0, {
    message: "rotary positions need an even head size (d_model / num_heads)",
    path: ["num_heads"],
  });

export const tokenizerSchema: z.ZodType<TokenizerIdentity> = z.object({
  // "seed-word" is what checkpoints written before the LoopOS rename say; read as, and rewritten as, "loopos-word".
  type: z.string().min(1).transform((t) => (t === "seed-word" ? "loopos-word" : t)),
  vocab_size: positive(1 << 24),
  fingerprint: z.string().min(1),
});

export const planSchema: z.ZodType<TrainingPlan> = z.object({
  data_fingerprint: z.string(),
  epochs: count,
  peak_lr: finite.positive(),
  min_lr: finite.nonnegative(),
  warmup_steps: count,
  total_steps: count,
  steps_per_epoch: count,
  batch_size: positive(1 << 20),
  seq_len: positive(1 << 20),
  weight_decay: finite.nonnegative(),
  beta1: finite.min(0).lt(1),
  beta2: finite.min(0).lt(1),
  eps: finite.positive(),
  grad_clip: finite.nonnegative(),
  seed: count,
  schedule: z.enum(["cosine", "wsd"]),
  decay_steps: count.optional(),
  time_budget_s: finite.positive().optional(),
  precision: z.enum(["fp32", "bf16"]).optional(),
  optimizer: z.literal("muon").optional(),
});

const stageRecordSchema: z.ZodType<StageRecord> = z.object({
  stage: count,
  data_fingerprint: z.string(),
  epochs: count,
  peak_lr: finite.positive(),
});

export const trainingSchema: z.ZodType<TrainingState> = z
  .object({
    global_step: count,
    stage: count,
    epoch: count,
    step_in_epoch: count,
    tokens_seen: count,
    rng_state: z.string(),
    stage_complete: z.boolean(),
    plan: planSchema,
    history: z.array(stageRecordSchema).optional(),
  })
  .refine((t) => t.plan.steps_per_epoch === 0 || t.step_in_epoch <= t.plan.steps_per_epoch, {
    message: "step_in_epoch is past the end of the epoch",
    path: ["step_in_epoch"],
  });

export const metadataSchema: z.ZodType<CheckpointMetadata> = z
  .object({
    format: z.literal(CHECKPOINT_FORMAT),
    version: z.literal(CHECKPOINT_VERSION),
    arch: architectureSchema,
    tokenizer: tokenizerSchema.nullable(),
    training: trainingSchema.nullable(),
  })
  .refine((m) => m.tokenizer === null || m.tokenizer.vocab_size <= m.arch.vocab_size, {
    message: "the tokenizer has more ids than the model's vocab_size",
    path: ["tokenizer", "vocab_size"],
  });

/** "training.plan.peak_lr: Number must be greater than 0" — the first few problems, one line. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((i) => `${i.path.length > 0 ? i.path.join(".") : "(root)"}: ${i.message}`)
    .join("; ");
}
