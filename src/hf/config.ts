/**
 * config.json for transformers' GPT2LMHeadModel, both ways. GPT-2's activation "gelu_new" is the tanh
 * approximation our kernel computes, and its LayerNorm epsilon must be our kernels' 1e-5; a config
 * that asks for anything we would compute differently is refused on import rather than run wrongly.
 */
import { z } from "zod";
import { architectureSchema, describeIssues } from "../checkpoint/schema.ts";
import { UserError } from "../base/errors.ts";
import { num } from "../base/format.ts";
import type { Architecture } from "../model/layout.ts";

export const LAYER_NORM_EPSILON = 1e-5;
const TANH_GELUS = ["gelu_new", "gelu_pytorch_tanh", "gelu_fast"];

export function hfConfig(arch: Architecture, endOfTextId: number | null): Record<string, unknown> {
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

export interface ParsedConfig {
  /** attention_bias is decided later from the tensors; tied from the config. */
  arch: Omit<Architecture, "attention_bias">;
  endOfTextId: number | null;
}

export function parseHfConfig(json: unknown, path: string): ParsedConfig {
  const fail = (what: string, hint: string): never => {
    throw new UserError(`${path}: ${what}. ${hint}.`);
  };
  const parsed = configSchema.safeParse(json);
  if (!parsed.success) return fail(`not a GPT-2 config (${describeIssues(parsed.error)})`, "import takes a folder saved by GPT2LMHeadModel.save_pretrained");
  const c = parsed.data;
  const isGpt2 = c.model_type === "gpt2" || (c.architectures ?? []).some((a) => a.startsWith("GPT2"));
  if (!isGpt2) fail(`model_type is ${JSON.stringify(c.model_type)}, not "gpt2"`, "Only GPT-2-shaped models can be imported");
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
  const eos = (c as Record<string, unknown>).eos_token_id;
  return { arch, endOfTextId: typeof eos === "number" ? eos : null };
}
