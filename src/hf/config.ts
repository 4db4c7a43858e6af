/**
 * config.json for transformers' GPT2LMHeadModel or LlamaForCausalLM, both ways. GPT-2's activation
 * "gelu_new" is the tanh approximation our kernel computes, and its LayerNorm epsilon must be our
 * kernels' 1e-5; Llama's RMSNorm epsilon and rotary base are ours to hold, but its grouped-query
 * attention, biases, rope scaling or another activation are not. A config that asks for anything we
 * would compute differently is refused on import rather than run wrongly.
 */
import { z } from "zod";
import { architectureSchema, describeIssues } from "../checkpoint/schema.ts";
import { UserError } from "../base/errors.ts";
import { num } from "../base/format.ts";
import { type Architecture, blockOf, LLAMA_NORM_EPS, LLAMA_ROPE_THETA } from "../model/layout.ts";

export const LAYER_NORM_EPSILON = 1e-5;
const TANH_GELUS = ["gelu_new", "gelu_pytorch_tanh", "gelu_fast"];

export function hfConfig(arch: Architecture, endOfTextId: number | null): Record<string, unknown> {
  if (blockOf(arch) === "llama") return llamaConfig(arch, endOfTextId);
  return {
    architectures: ["GPT2LMHeadModel"],
    model_type: "gpt2",
    vocab_size: arch.vocab_size,
    n_positions: arch.max_seq_len,
    n_ctx: arch.max_seq_len,
    n_embd: arch.d_model,
    n_layer: arch.num_layers,
    n_head: arch.num_heads,
    n_inner: arch.d_ff,
    activation_function: "gelu_new",
    layer_norm_epsilon: LAYER_NORM_EPSILON,
    // Trained without dropout here; whoever fine-tunes elsewhere can turn it on.
    resid_pdrop: 0,
    embd_pdrop: 0,
    attn_pdrop: 0,
    initializer_range: 0.02,
    scale_attn_weights: true,
    scale_attn_by_inverse_layer_idx: false,
    reorder_and_upcast_attn: false,
    use_cache: true,
    bos_token_id: endOfTextId,
    eos_token_id: endOfTextId,
    tie_word_embeddings: arch.tied_embeddings,
    torch_dtype: "float32",
  };
}

function llamaConfig(arch: Architecture, endOfTextId: number | null): Record<string, unknown> {
  return {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    vocab_size: arch.vocab_size,
    hidden_size: arch.d_model,
    intermediate_size: arch.d_ff,
    num_hidden_layers: arch.num_layers,
    num_attention_heads: arch.num_heads,
    num_key_value_heads: arch.num_heads,
    head_dim: arch.d_model / arch.num_heads,
    max_position_embeddings: arch.max_seq_len,
    hidden_act: "silu",
    rms_norm_eps: arch.norm_eps ?? LLAMA_NORM_EPS,
    rope_theta: arch.rope_theta ?? LLAMA_ROPE_THETA,
    rope_scaling: null,
    attention_bias: false,
    mlp_bias: false,
    attention_dropout: 0,
    pretraining_tp: 1,
    initializer_range: 0.02,
    use_cache: true,
    bos_token_id: endOfTextId,
    eos_token_id: endOfTextId,
    tie_word_embeddings: arch.tied_embeddings,
    torch_dtype: "float32",
  };
}

const configSchema = z
  .object({
    model_type: z.string().optional(),
    architectures: z.array(z.string()).optional(),
    vocab_size: z.number().int().positive(),
    n_positions: z.number().int().positive(),
    n_embd: z.number().int().positive(),
    n_layer: z.number().int().positive(),
    n_head: z.number().int().positive(),
    n_inner: z.number().int().positive().nullable().optional(),
    activation_function: z.string().default("gelu_new"),
    layer_norm_epsilon: z.number().default(LAYER_NORM_EPSILON),
    scale_attn_weights: z.boolean().default(true),
    scale_attn_by_inverse_layer_idx: z.boolean().default(false),
    tie_word_embeddings: z.boolean().default(true),
  })
  .passthrough();

const positive = z.number().int().positive();
// LlamaConfig's defaults, where a saved config may leave a field out.
const llamaSchema = z
  .object({
    vocab_size: positive.default(32000),
    hidden_size: positive,
    intermediate_size: positive,
    num_hidden_layers: positive,
    num_attention_heads: positive,
    num_key_value_heads: positive.nullable().optional(),
    head_dim: positive.nullable().optional(),
    max_position_embeddings: positive.default(2048),
    hidden_act: z.string().default("silu"),
    rms_norm_eps: z.number().positive().max(1).default(1e-6),
    rope_theta: z.number().positive().finite().optional(),
    rope_scaling: z.unknown().optional(),
    rope_parameters: z.record(z.unknown()).nullable().optional(),
    attention_bias: z.boolean().default(false),
    mlp_bias: z.boolean().default(false),
    tie_word_embeddings: z.boolean().default(false),
  })
  .passthrough();
/** silu(x) = x·σ(x); transformers' "swish" is the same function. */
const SILUS = ["silu", "swish"];

export interface ParsedConfig {
  /** attention_bias is decided later from the tensors (GPT-2; a Llama block has none); tied from the config. */
  arch: Omit<Architecture, "attention_bias" | "block" | "rope_theta" | "norm_eps">;
  /** A Llama model's block fields; null for GPT-2. */
  llama: { block: "llama"; rope_theta: number; norm_eps: number } | null;
  endOfTextId: number | null;
}

function isLlama(json: unknown): boolean {
  if (typeof json !== "object" || json === null) return false;
  const c = json as { model_type?: unknown; architectures?: unknown };
  return c.model_type === "llama" || (Array.isArray(c.architectures) && c.architectures.some((a) => typeof a === "string" && a.startsWith("Llama")));
}

export function parseHfConfig(json: unknown, path: string): ParsedConfig {
  const fail = (what: string, hint: string): never => {
    throw new UserError(`${path}: ${what}. ${hint}.`);
  };
  if (isLlama(json)) return parseLlamaConfig(json, fail);
  const parsed = configSchema.safeParse(json);
  if (!parsed.success) return fail(`not a GPT-2 config (${describeIssues(parsed.error)})`, "import takes a folder saved by GPT2LMHeadModel.save_pretrained");
  const c = parsed.data;
  const isGpt2 = c.model_type === "gpt2" || (c.architectures ?? []).some((a) => a.startsWith("GPT2"));
  if (!isGpt2) fail(`model_type is ${JSON.stringify(c.model_type)}, not "gpt2" or "llama"`, "Only GPT-2- and Llama-shaped models can be imported");
  if (!TANH_GELUS.includes(c.activation_function)) {
    fail(`activation_function "${c.activation_function}" is not the tanh GELU this model computes`, `Only ${TANH_GELUS.join("/")} can be imported`);
  }
  if (Math.abs(c.layer_norm_epsilon - LAYER_NORM_EPSILON) > 1e-12) {
    fail(`layer_norm_epsilon ${num(c.layer_norm_epsilon, 12)} differs from the ${num(LAYER_NORM_EPSILON)} our kernels use`, "The model would compute different numbers here");
  }
  if (!c.scale_attn_weights || c.scale_attn_by_inverse_layer_idx) {
    fail("the attention scaling is not the standard 1/√head_dim", "Set scale_attn_weights=true and scale_attn_by_inverse_layer_idx=false, or train with that setting");
  }
  const arch = {
    d_model: c.n_embd,
    num_heads: c.n_head,
    num_layers: c.n_layer,
    d_ff: c.n_inner ?? 4 * c.n_embd,
    vocab_size: c.vocab_size,
    max_seq_len: c.n_positions,
    tied_embeddings: c.tie_word_embeddings,
  };
  const check = architectureSchema.safeParse({ ...arch, attention_bias: true });
  if (!check.success) fail(`the architecture is not one train-vocab can hold (${describeIssues(check.error)})`, "Check n_embd, n_head and the sizes");
  return { arch, llama: null, endOfTextId: eosOf(c) };
}

function eosOf(c: Record<string, unknown>): number | null {
  return typeof c.eos_token_id === "number" ? c.eos_token_id : null;
}

function parseLlamaConfig(json: unknown, fail: (what: string, hint: string) => never): ParsedConfig {
  const parsed = llamaSchema.safeParse(json);
  if (!parsed.success) return fail(`not a Llama config (${describeIssues(parsed.error)})`, "import takes a folder saved by LlamaForCausalLM.save_pretrained");
  const c = parsed.data;
  const heads = c.num_attention_heads;
  if (!SILUS.includes(c.hidden_act)) fail(`hidden_act "${c.hidden_act}" is not the SiLU this model's SwiGLU computes`, "Only silu can be imported");
  if (c.num_key_value_heads != null && c.num_key_value_heads !== heads) {
    fail(
      `num_key_value_heads ${c.num_key_value_heads} differs from num_attention_heads ${heads} (grouped-query attention)`,
      "Only models with as many key/value heads as query heads can be imported",
    );
  }
  if (c.head_dim != null && c.head_dim * heads !== c.hidden_size) {
    fail(`head_dim ${c.head_dim} × ${heads} heads is not hidden_size ${c.hidden_size}`, "Only models whose heads split hidden_size can be imported");
  }
  if (c.attention_bias || c.mlp_bias) {
    fail(`${c.attention_bias ? "attention_bias" : "mlp_bias"} is true`, "A Llama block here has no biases; only bias-free models can be imported");
  }
  if (c.rope_scaling != null) fail("rope_scaling is set", "Only plain rotary positions (no scaling, rope_scaling null) can be imported");
  // Newer transformers keep the rotary settings in rope_parameters.
  let theta = c.rope_theta;
  if (c.rope_parameters != null) {
    const p = c.rope_parameters;
    if ((p.rope_type ?? "default") !== "default") fail(`rope_parameters.rope_type is ${JSON.stringify(p.rope_type)}`, 'Only plain rotary positions (rope_type "default") can be imported');
    if (p.rope_theta !== undefined) {
      if (typeof p.rope_theta !== "number" || !(p.rope_theta > 0) || !Number.isFinite(p.rope_theta)) fail("rope_parameters.rope_theta is not a positive number", "Give the rotary base as a number");
      theta = p.rope_theta as number;
    }
  }
  const arch = {
    d_model: c.hidden_size,
    num_heads: heads,
    num_layers: c.num_hidden_layers,
    d_ff: c.intermediate_size,
    vocab_size: c.vocab_size,
    max_seq_len: c.max_position_embeddings,
    tied_embeddings: c.tie_word_embeddings,
  };
  const llama = { block: "llama" as const, rope_theta: theta ?? LLAMA_ROPE_THETA, norm_eps: c.rms_norm_eps };
  const check = architectureSchema.safeParse({ ...arch, attention_bias: false, ...llama });
  if (!check.success) fail(`the architecture is not one train-vocab can hold (${describeIssues(check.error)})`, "Check hidden_size, num_attention_heads and the sizes");
  return { arch, llama, endOfTextId: eosOf(c) };
}
