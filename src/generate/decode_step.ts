/**
 * The per-token forward, as direct calls into the kernel table. At batch 1 a step is ~25 kernel
 * calls that each take microseconds, so the checked wrappers of src/native.ts (argument objects,
 * length checks, subarray views for every call) would cost a large share of the step. Here every
 * buffer's address is taken once: the sizes were fixed and checked when the engine was built (the
 * weights by modelTensors, the caches and scratch by the engine), so only the position and the
 * token vary, and both are checked by the engine before each step.
 *
 * Addresses stay valid because this object holds every array it points into for its whole life, and
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

interface BlockPointers extends LayerPointers {
  k: Float32Array; v: Float32Array; kp: Pointer; vp: Pointer;
}

/** One row of activations. */
export interface RowScratch {
  x: Float32Array; xn: Float32Array; qkv: Float32Array; att: Float32Array; tmp: Float32Array;
  fc: Float32Array; fcg: Float32Array; mean: Float32Array; rstd: Float32Array;
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

export class DecodeStep {
  private readonly m: ModelPointers;
  private readonly blocks: BlockPointers[];
  private readonly p: Record<keyof RowScratch, Pointer>;
  private readonly fcRows: number;
  private readonly logitsP: Pointer;
  private readonly qkvK: Float32Array;
  private readonly qkvV: Float32Array;
  /** The position a step turns q and k to (rotary models). */
  private readonly position = new Int32Array(1);
  private readonly pposition: Pointer;

  constructor(
    private readonly arch: Architecture,
    private readonly weights: ModelTensors,
    kCache: Float32Array[],
    vCache: Float32Array[],
    private readonly s: RowScratch,
    private readonly logits: Float32Array,
  ) {
    const C = arch.d_model;
    this.m = modelPointers(arch, weights);
    this.blocks = this.m.layers.map((w, l) => ({
      ...w, k: kCache[l]!, v: vCache[l]!, kp: addressOf(kCache[l]!), vp: addressOf(vCache[l]!),
    }));
    this.p = {
      x: addressOf(s.x), xn: addressOf(s.xn), qkv: addressOf(s.qkv), att: addressOf(s.att), tmp: addressOf(s.tmp),
      fc: addressOf(s.fc), fcg: addressOf(s.fcg), mean: addressOf(s.mean), rstd: addressOf(s.rstd),
    };
    this.fcRows = fcRows(arch);
    this.logitsP = addressOf(logits);
    this.qkvK = s.qkv.subarray(C, 2 * C);
    this.qkvV = s.qkv.subarray(2 * C, 3 * C);
    void this.position.buffer;
    this.pposition = ptr(this.position);
  }

  /** Token `token` at position `pos` (both already checked); the caches hold positions 0..pos−1. */
  run(token: number, pos: number): Float32Array {
    const { d_model: C, num_heads: H, d_ff: F, vocab_size: V } = this.arch;
    const p = this.p;
    // x = wte[token] + wpe[pos] (zeros for Llama), read in place through offset addresses.
    const wpeRow = this.m.wpeRows > 1 ? pos : 0;
    ok("residual_forward", S.tv_residual_forward(p.x, (this.m.wte + token * C * F32) as Pointer, (this.m.wpe + wpeRow * C * F32) as Pointer, C));
    this.position[0] = pos;
    const rope = this.m.rope, P = this.arch.max_seq_len;
    for (const l of this.blocks) {
      this.norm(l.ln1w, l.ln1b);
      ok("matmul_forward_panels", S.tv_matmul_forward_panels(p.qkv, p.xn, l.qkvW, l.qkvB, 1, C, 3 * C));
      if (rope) ok("rope_forward_rows", S.tv_rope_forward_rows(p.qkv, rope.pcos, rope.psin, this.pposition, P, 1, 3 * C, C, H));
      l.k.set(this.qkvK, pos * C);
      l.v.set(this.qkvV, pos * C);
      ok("attention_decode", S.tv_attention_decode(p.att, p.qkv, l.kp, l.vp, pos + 1, C, H));
      ok("matmul_forward_panels", S.tv_matmul_forward_panels(p.tmp, p.att, l.attnProjW, l.attnProjB, 1, C, C));
      ok("residual_forward", S.tv_residual_forward(p.x, p.x, p.tmp, C));
      this.norm(l.ln2w, l.ln2b);
      ok("matmul_forward_panels", S.tv_matmul_forward_panels(p.fc, p.xn, l.fcW, l.fcB, 1, C, this.fcRows));
      if (this.m.eps === null) ok("gelu_forward", S.tv_gelu_forward(p.fcg, p.fc, F));
      else ok("swiglu_forward", S.tv_swiglu_forward(p.fcg, p.fc, 1, F));
      ok("matmul_forward_panels", S.tv_matmul_forward_panels(p.tmp, p.fcg, l.mlpProjW, l.mlpProjB, 1, F, C));
      ok("residual_forward", S.tv_residual_forward(p.x, p.x, p.tmp, C));
    }
    this.norm(this.m.lnfw, this.m.lnfb);
    ok("matmul_forward_panels", S.tv_matmul_forward_panels(this.logitsP, p.xn, this.m.lmHead, null, 1, C, V));
    return this.logits;
  }

  /** xn = norm(x): LayerNorm (GPT-2) or RMSNorm (Llama). */
  private norm(weight: Pointer, bias: Pointer | null): void {
    const p = this.p, C = this.arch.d_model;
    if (this.m.eps === null) ok("layernorm_forward", S.tv_layernorm_forward(p.xn, p.mean, p.rstd, p.x, weight, bias, 1, C));
    else ok("rmsnorm_forward", S.tv_rmsnorm_forward(p.xn, p.rstd, p.x, weight, 1, C, this.m.eps));
  }
}
