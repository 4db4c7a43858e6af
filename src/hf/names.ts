/**
 * Our tensor names ↔ HuggingFace's: GPT2LMHeadModel's state dict, or LlamaForCausalLM's.
 *
 * GPT-2 stores its linear layers as Conv1D, weight[in, out] with y = x·W + b; ours are nn.Linear's
 * weight[out, in], so every linear weight is transposed across the boundary. c_attn's output columns
 * are Q|K|V blocks with the heads contiguous inside each block, exactly our qkv rows, so the
 * transpose is the whole conversion.
 *
 * Llama's are nn.Linear like ours, in separate matrices: q|k|v_proj are row blocks of our fused qkv
 * and gate|up_proj of our fused fc, so each is a contiguous slice. Our rotary kernel turns the pairs
 * (i, i + head/2) as HF's rotate_half does, so q and k rows need no permutation.
 */
import { type Architecture, blockOf } from "../model/layout.ts";

export interface HfTensor {
  /** Ours (tensorSpecs name). */
  ours: string;
  /** HF state-dict key. */
  hf: string;
  /** HF holds the transpose of ours. */
  transposed: boolean;
  /** GPT-2 always has it; LoopOS-shaped models do not (exported as zeros of this length). */
  zeroIfAbsent?: number;
  /** HF's tensor is rows [start, start + count) of ours (a Llama projection of a fused matrix). */
  rows?: [start: number, count: number];
}

/** Every tensor of the HF state dict, in state-dict order, for this architecture. */
export function hfTensors(arch: Architecture): HfTensor[] {
  if (blockOf(arch) === "llama") return llamaTensors(arch);
  const C = arch.d_model;
  const list: HfTensor[] = [
    { ours: "wte", hf: "transformer.wte.weight", transposed: false },
    { ours: "wpe", hf: "transformer.wpe.weight", transposed: false },
  ];
  for (let l = 0; l < arch.num_layers; l++) {
    const o = `h.${l}`;
    const h = `transformer.h.${l}`;
    list.push(
      { ours: `${o}.ln_1.weight`, hf: `${h}.ln_1.weight`, transposed: false },
      { ours: `${o}.ln_1.bias`, hf: `${h}.ln_1.bias`, transposed: false },
      { ours: `${o}.attn.qkv.weight`, hf: `${h}.attn.c_attn.weight`, transposed: true },
      { ours: `${o}.attn.qkv.bias`, hf: `${h}.attn.c_attn.bias`, transposed: false, zeroIfAbsent: 3 * C },
      { ours: `${o}.attn.proj.weight`, hf: `${h}.attn.c_proj.weight`, transposed: true },
      { ours: `${o}.attn.proj.bias`, hf: `${h}.attn.c_proj.bias`, transposed: false, zeroIfAbsent: C },
      { ours: `${o}.ln_2.weight`, hf: `${h}.ln_2.weight`, transposed: false },
      { ours: `${o}.ln_2.bias`, hf: `${h}.ln_2.bias`, transposed: false },
      { ours: `${o}.mlp.fc.weight`, hf: `${h}.mlp.c_fc.weight`, transposed: true },
      { ours: `${o}.mlp.fc.bias`, hf: `${h}.mlp.c_fc.bias`, transposed: false },
      { ours: `${o}.mlp.proj.weight`, hf: `${h}.mlp.c_proj.weight`, transposed: true },
      { ours: `${o}.mlp.proj.bias`, hf: `${h}.mlp.c_proj.bias`, transposed: false },
    );
  }
  list.push(
    { ours: "ln_f.weight", hf: "transformer.ln_f.weight", transposed: false },
    { ours: "ln_f.bias", hf: "transformer.ln_f.bias", transposed: false },
  );
  // A tied head is the embedding itself: HF's save_pretrained leaves it out and ties on load.
  if (!arch.tied_embeddings) list.push({ ours: "lm_head.weight", hf: "lm_head.weight", transposed: false });
  return list;
}

function llamaTensors(arch: Architecture): HfTensor[] {
  const C = arch.d_model;
  const F = arch.d_ff;
  const slice = (ours: string, hf: string, start: number, count: number): HfTensor => ({ ours, hf, transposed: false, rows: [start, count] });
  const same = (ours: string, hf: string): HfTensor => ({ ours, hf, transposed: false });
  const list: HfTensor[] = [same("wte", "model.embed_tokens.weight")];
  for (let l = 0; l < arch.num_layers; l++) {
    const o = `h.${l}`;
    const h = `model.layers.${l}`;
    list.push(
      same(`${o}.ln_1.weight`, `${h}.input_layernorm.weight`),
      slice(`${o}.attn.qkv.weight`, `${h}.self_attn.q_proj.weight`, 0, C),
      slice(`${o}.attn.qkv.weight`, `${h}.self_attn.k_proj.weight`, C, C),
      slice(`${o}.attn.qkv.weight`, `${h}.self_attn.v_proj.weight`, 2 * C, C),
      same(`${o}.attn.proj.weight`, `${h}.self_attn.o_proj.weight`),
      same(`${o}.ln_2.weight`, `${h}.post_attention_layernorm.weight`),
      slice(`${o}.mlp.fc.weight`, `${h}.mlp.gate_proj.weight`, 0, F),
      slice(`${o}.mlp.fc.weight`, `${h}.mlp.up_proj.weight`, F, F),
      same(`${o}.mlp.proj.weight`, `${h}.mlp.down_proj.weight`),
    );
  }
  list.push(same("ln_f.weight", "model.norm.weight"));
  if (!arch.tied_embeddings) list.push(same("lm_head.weight", "lm_head.weight"));
  return list;
}

/** The HF key of the token embedding (a tied head's weights). */
export function embeddingKey(arch: Architecture): string {
  return blockOf(arch) === "llama" ? "model.embed_tokens.weight" : "transformer.wte.weight";
}

/** Keys other GPT-2 files carry that hold no parameters: the causal-mask buffers of older versions. */
export function isBufferKey(key: string, arch: Architecture): boolean {
  // Older Llama files saved the rotary frequencies, which follow from rope_theta.
  if (blockOf(arch) === "llama") return /^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$/.test(key);
  return /\.attn\.(bias|masked_bias)$/.test(key) && !key.includes("c_attn") && !key.includes("c_proj");
}

/** "h.0.attn.c_attn.weight" (the original OpenAI upload) and "transformer.h.0…" name the same tensor. */
export function canonicalKey(key: string, arch: Architecture): string {
  if (blockOf(arch) === "llama" || key === "lm_head.weight" || key.startsWith("transformer.")) return key;
  return `transformer.${key}`;
}

/** dst[cols, rows] = src[rows, cols]ᵀ, in tiles so both sides stay in cache. */
export function transpose(src: Float32Array, rows: number, cols: number, dst: Float32Array = new Float32Array(rows * cols)): Float32Array {
  const B = 32;
  for (let r0 = 0; r0 < rows; r0 += B) {
    const r1 = Math.min(rows, r0 + B);
    for (let c0 = 0; c0 < cols; c0 += B) {
      const c1 = Math.min(cols, c0 + B);
      for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) dst[c * rows + r] = src[r * cols + c]!;
    }
  }
  return dst;
}
