/**
 * The model's parameters: names, shapes and their order in the one flat buffer.
 * Parameters, gradients and the AdamW moments are each one Float32Array laid out in this order;
 * every named tensor (checkpoint tensor, export tensor) is a view of that buffer at these offsets.
 *
 * Linear layers use the nn.Linear layout: weight[out_features, in_features], y = x·Wᵀ + b
 * (what tv_matmul_forward computes). Names follow GPT-2 so export is a rename, not a puzzle; a Llama
 * block's tensors take the GPT-2 name of the same role (ln_1 is its attention RMSNorm, mlp.fc its
 * fused gate|up matrix).
 */
export interface Architecture {
  d_model: number;
  num_heads: number;
  num_layers: number;
  d_ff: number;
  vocab_size: number;
  max_seq_len: number;
  /** LM head shares the token embedding (GPT-2). LoopOS's models are untied. */
  tied_embeddings: boolean;
  /** Biases on the attention's qkv and output projections (GPT-2). LoopOS's attention has none. */
  attention_bias: boolean;
  /** Absent = "gpt2" (LayerNorm, learned positions, GELU, biases). "llama": RMSNorm, rotary
   * positions (no wpe), SwiGLU with d_ff its hidden width, no biases anywhere. */
  block?: BlockType;
  /** Llama: the rotary embedding's base. */
  rope_theta?: number;
  /** Llama: RMSNorm's epsilon. */
  norm_eps?: number;
}

export type BlockType = "gpt2" | "llama";

/** Llama's defaults (HF LlamaConfig's rope_theta and rms_norm_eps). */
export const LLAMA_ROPE_THETA = 10000;
export const LLAMA_NORM_EPS = 1e-5;

export function blockOf(arch: Architecture): BlockType {
  return arch.block ?? "gpt2";
}

/** Rows of mlp.fc: GELU's hidden width, or SwiGLU's gate and up stacked. */
export function fcRows(arch: Architecture): number {
  return blockOf(arch) === "llama" ? 2 * arch.d_ff : arch.d_ff;
}

export interface TensorSpec {
  name: string;
  shape: number[];
  /** Offset in elements into the flat parameter buffer. */
  offset: number;
  size: number;
  /** AdamW weight decay applies to matrices (weights and embeddings), not to biases or norms. */
  decay: boolean;
}

export function tensorSpecs(arch: Architecture): TensorSpec[] {
  const { d_model: C, d_ff: F, vocab_size: V, max_seq_len: P } = arch;
  // GPT-2's LayerNorms, MLP and positions have biases and wpe; a Llama block has neither.
  const gpt2 = blockOf(arch) === "gpt2";
  const specs: TensorSpec[] = [];
  let offset = 0;
  const add = (name: string, shape: number[], decay: boolean) => {
    const size = shape.reduce((a, b) => a * b, 1);
    specs.push({ name, shape, offset, size, decay });
    offset += size;
  };
  add("wte", [V, C], true);
  if (gpt2) add("wpe", [P, C], true);
  for (let l = 0; l < arch.num_layers; l++) {
    const h = `h.${l}`;
    add(`${h}.ln_1.weight`, [C], false);
    if (gpt2) add(`${h}.ln_1.bias`, [C], false);
    add(`${h}.attn.qkv.weight`, [3 * C, C], true);
    if (arch.attention_bias) add(`${h}.attn.qkv.bias`, [3 * C], false);
    add(`${h}.attn.proj.weight`, [C, C], true);
    if (arch.attention_bias) add(`${h}.attn.proj.bias`, [C], false);
    add(`${h}.ln_2.weight`, [C], false);
    if (gpt2) add(`${h}.ln_2.bias`, [C], false);
    add(`${h}.mlp.fc.weight`, [fcRows(arch), C], true);
    if (gpt2) add(`${h}.mlp.fc.bias`, [F], false);
    add(`${h}.mlp.proj.weight`, [C, F], true);
    if (gpt2) add(`${h}.mlp.proj.bias`, [C], false);
  }
  add("ln_f.weight", [C], false);
  if (gpt2) add("ln_f.bias", [C], false);
  if (!arch.tied_embeddings) add("lm_head.weight", [V, C], true);
  return specs;
}

export function parameterCount(arch: Architecture): number {
  const specs = tensorSpecs(arch);
  const last = specs[specs.length - 1]!;
  return last.offset + last.size;
}

/** Named views into one flat buffer laid out by tensorSpecs. */
export function viewsOf(buffer: Float32Array, arch: Architecture): Map<string, Float32Array> {
  const views = new Map<string, Float32Array>();
  for (const spec of tensorSpecs(arch)) views.set(spec.name, buffer.subarray(spec.offset, spec.offset + spec.size));
  return views;
}
