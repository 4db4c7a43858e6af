/**
 * A model's weights as addresses for the decode step (batch.ts), which calls the kernel table
 * directly: at small sizes a step is ~25 kernel calls of microseconds each, and the checked wrappers
 * of src/native.ts (argument objects, length checks, views for every call) would cost a large share
 * of it. The sizes were fixed and checked when the weights were laid out (modelTensors), so each
 * address is taken once.
 *
 * Addresses stay valid because their holder keeps every array it points into for its whole life, and
 * each array's storage is pinned before its address is taken: JavaScriptCore keeps small typed arrays
 * inline in the garbage-collected heap and moves their data out the first time a view or the
 * ArrayBuffer is asked for, which would leave an earlier address dangling. Asking for `.buffer`
 * first makes that move happen before, never after.
 */
import { ptr } from "bun:ffi";
import { type Architecture, blockOf, fcRows, LLAMA_NORM_EPS, LLAMA_ROPE_THETA } from "../model/layout.ts";
import type { ModelTensors } from "../model/weights.ts";
import { NativeError, nativeSymbols as S, packPanels, panelsLength } from "../native.ts";

export type Pointer = ReturnType<typeof ptr>;
export const F32 = 4;

/** One block's weights as addresses (null: a bias or norm shift the block does not have); the four
 * matrices are their 16-wide panels (tv_pack_panels), the layout decoding's product reads. */
export interface LayerPointers {
  ln1w: Pointer; ln1b: Pointer | null; qkvW: Pointer; qkvB: Pointer | null;
  attnProjW: Pointer; attnProjB: Pointer | null; ln2w: Pointer; ln2b: Pointer | null;
  fcW: Pointer; fcB: Pointer | null; mlpProjW: Pointer; mlpProjB: Pointer | null;
}

/** The address of `a`'s data, after pinning its storage (see above). */
export function addressOf(a: Float32Array): Pointer {
  void a.buffer;
  return ptr(a);
}

/** A kernel's status: anything but 0 is a bug of ours, thrown with the kernel's name. */
export function ok(kernel: string, status: number): void {
  if (status !== 0) throw new NativeError(kernel, status);
}

/** A model's weights as addresses, taken once, and what its block needs besides. */
export interface ModelPointers {
  layers: LayerPointers[];
  wte: Pointer;
  /** wpe, or one row of zeros (position 0 only) for a Llama model, which turns q and k instead. */
  wpe: Pointer;
  wpeRows: number;
  lnfw: Pointer;
  lnfb: Pointer | null;
  /** The LM head's panels. */
  lmHead: Pointer;
  /** Llama: RMSNorm's eps; null for GPT-2. */
  eps: number | null;
  /** Llama: every position's rotary cos and sin (tv_rope_table, made once; decoding turns rows by it
   * with tv_rope_forward_rows, the bytes of tv_rope_forward); null for GPT-2. */
  rope: { cos: Float32Array; sin: Float32Array; pcos: Pointer; psin: Pointer } | null;
  /** The zeros behind a Llama model's wpe, held so that their address stays valid. */
  zeroRow: Float32Array;
  /** The panels the matrix addresses point into, held likewise. */
  panels: Float32Array[];
}

/**
 * Every matrix inference multiplies by (the blocks' four and the LM head), repacked once into 16-wide
 * panels, the layout tv_matmul_forward_panels reads: a copy beside the weights (the embedding reads
 * rows of wte, which may be the LM head too). One per model, shared by its prefill and its batch-1
 * and batched decoders, keyed by the original matrix.
 */
const panelCache = new WeakMap<ModelTensors, Map<Float32Array, Float32Array>>();

export function panelsOf(arch: Architecture, weights: ModelTensors): Map<Float32Array, Float32Array> {
  let cached = panelCache.get(weights);
  if (cached) return cached;
  const { d_model: C, d_ff: F, vocab_size: V } = arch;
  cached = new Map();
  const add = (w: Float32Array, N: number, K: number) => {
    const p = new Float32Array(panelsLength(N, K));
    packPanels(p, w, N, K);
    cached!.set(w, p);
  };
  for (const b of weights.blocks) {
    add(b.qkvW, 3 * C, C);
    add(b.attnProjW, C, C);
    add(b.fcW, fcRows(arch), C);
    add(b.mlpProjW, C, F);
  }
  add(weights.lmHead, V, C);
  panelCache.set(weights, cached);
  return cached;
}

function ropeTable(arch: Architecture): ModelPointers["rope"] {
  const P = arch.max_seq_len, hs = arch.d_model / arch.num_heads;
  const cos = new Float32Array(P * (hs / 2)), sin = new Float32Array(P * (hs / 2));
  const pcos = addressOf(cos), psin = addressOf(sin);
  ok("rope_table", S.tv_rope_table(pcos, psin, P, hs, arch.rope_theta ?? LLAMA_ROPE_THETA));
  return { cos, sin, pcos, psin };
}

export function modelPointers(arch: Architecture, weights: ModelTensors): ModelPointers {
  const opt = (a: Float32Array | null) => (a ? addressOf(a) : null);
  const zeroRow = new Float32Array(arch.d_model);
  const llama = blockOf(arch) === "llama";
  const panels = panelsOf(arch, weights);
  const packed = (w: Float32Array) => addressOf(panels.get(w)!);
  return {
    layers: weights.blocks.map((w) => ({
      ln1w: addressOf(w.ln1w), ln1b: opt(w.ln1b), qkvW: packed(w.qkvW), qkvB: opt(w.qkvB),
      attnProjW: packed(w.attnProjW), attnProjB: opt(w.attnProjB), ln2w: addressOf(w.ln2w), ln2b: opt(w.ln2b),
      fcW: packed(w.fcW), fcB: opt(w.fcB), mlpProjW: packed(w.mlpProjW), mlpProjB: opt(w.mlpProjB),
    })),
    wte: addressOf(weights.wte),
    wpe: addressOf(weights.wpe ?? zeroRow),
    wpeRows: weights.wpe ? arch.max_seq_len : 1,
    lnfw: addressOf(weights.lnfw),
    lnfb: opt(weights.lnfb),
    lmHead: packed(weights.lmHead),
    eps: llama ? (arch.norm_eps ?? LLAMA_NORM_EPS) : null,
    rope: llama ? ropeTable(arch) : null,
    zeroRow,
    panels: [...panels.values()],
  };
}
