/**
 * Batch-1 inference with a KV cache. `prefill` runs the whole prompt through the model at once (matrix
 * products over all its rows, causal attention over the prompt) and keeps every layer's keys and
 * values; `step` then feeds one token: each layer computes one row and attends over the cache, so a
 * new token costs one token's forward however long the prefix is.
 *
 * Every operation is a native kernel call on preallocated buffers: the per-token path allocates nothing
 * and calls the kernel table directly: it is the batched decoder (batch.ts) at one row, so a server's
 * batched row has the bytes `generate` computes. Every product, prefill's and decoding's, reads
 * the weights' 16-wide panels (tv_matmul_forward_panels), made once per model. A Llama model's keys are cached after their
 * rotary turn, at their own positions, so a step turns only the new row.
 */
import { type Architecture, blockOf, fcRows, LLAMA_NORM_EPS, LLAMA_ROPE_THETA } from "../model/layout.ts";
import { type BlockTensors, modelTensors, type ModelTensors } from "../model/weights.ts";
import {
  attentionDecode,
  attentionForward,
  encoderForward,
  geluForward,
  layernormForward,
  matmulForwardPanels,
  residualForward,
  rmsnormForward,
  ropeForward,
  swigluForward,
} from "../native.ts";
import { BatchDecoder, KvCache } from "./batch.ts";
import { panelsOf } from "./model_pointers.ts";

/** Activations for up to `rows` positions at once. */
class Scratch {
  readonly x: Float32Array; // residual stream [rows, C]
  readonly xn: Float32Array; // layernorm output [rows, C]
  readonly qkv: Float32Array; // [rows, 3C]
  readonly att: Float32Array; // attention output [rows, C]
  readonly tmp: Float32Array; // projection output [rows, C]
  readonly fc: Float32Array; // [rows, F], SwiGLU: [rows, 2F]
  readonly fcg: Float32Array; // GELU(fc) or SwiGLU(fc) [rows, F]
  readonly mean: Float32Array;
  readonly rstd: Float32Array;
  readonly lse: Float32Array; // [H, rows]

  constructor(readonly rows: number, arch: Architecture) {
    const { d_model: C, d_ff: F, num_heads: H } = arch;
    this.x = new Float32Array(rows * C);
    this.xn = new Float32Array(rows * C);
    this.qkv = new Float32Array(rows * 3 * C);
    this.att = new Float32Array(rows * C);
    this.tmp = new Float32Array(rows * C);
    this.fc = new Float32Array(rows * fcRows(arch));
    this.fcg = new Float32Array(rows * F);
    this.mean = new Float32Array(rows);
    this.rstd = new Float32Array(rows);
    this.lse = new Float32Array(H * rows);
  }
}

export class InferenceEngine {
  readonly arch: Architecture;
  readonly weights: ModelTensors;
  /** Per layer: keys and values of positions 0..length−1; its length is the position `step` writes. */
  private readonly cache: KvCache;
  private readonly one: Scratch;
  private many: Scratch | null = null;
  private readonly logits: Float32Array;
  /** The decode step, at one row: the server's batched step, so a batched row has these bytes. */
  private readonly decoder: BatchDecoder;
  private readonly caches: KvCache[];
  private readonly token = new Int32Array(1);
  /** Llama: RMSNorm's eps and the rotary base; null for GPT-2 (LayerNorm, learned positions). */
  private readonly eps: number | null;
  private readonly theta: number | null;
  /** wpe, or zeros for a Llama model (the encoder kernel adds a position row). */
  private readonly positions: Float32Array;
  /** The matrices' 16-wide panels (model_pointers.ts), which every product here reads. */
  private readonly panels: Map<Float32Array, Float32Array>;

  constructor(arch: Architecture, params: Float32Array) {
    this.arch = arch;
    this.weights = modelTensors(arch, params);
    this.panels = panelsOf(arch, this.weights);
    const { d_model: C, max_seq_len: P, vocab_size: V } = arch;
    const llama = blockOf(arch) === "llama";
    this.eps = llama ? (arch.norm_eps ?? LLAMA_NORM_EPS) : null;
    this.theta = llama ? (arch.rope_theta ?? LLAMA_ROPE_THETA) : null;
    this.positions = this.weights.wpe ?? new Float32Array(P * C);
    this.cache = new KvCache(arch);
    this.caches = [this.cache];
    this.one = new Scratch(1, arch);
    this.logits = new Float32Array(V);
    this.decoder = new BatchDecoder(arch, this.weights, 1);
  }

  /** Tokens in the cache: the position the next `step` writes. */
  get length(): number {
    return this.cache.length;
  }

  get contextSize(): number {
    return this.arch.max_seq_len;
  }

  /** Forget the cache. */
  reset(): void {
    this.cache.length = 0;
  }

  /**
   * Run `tokens` (1..max_seq_len of them) from position 0, filling the cache. Returns the logits of
   * the last position ([V], a buffer reused by the next call). With `allLogits` ([T, V]) the logits
   * of every position are written there too (evaluation, reference dumps).
   */
  prefill(tokens: ArrayLike<number>, allLogits?: Float32Array): Float32Array {
    const T = tokens.length;
    const { d_model: C, num_heads: H, d_ff: F, vocab_size: V, max_seq_len: P } = this.arch;
    if (T < 1 || T > P) throw new RangeError(`prefill: ${T} tokens, the context holds 1..${P}`);
    const ids = this.checkedIds(tokens);
    const s = this.scratchFor(T);
    const w = this.weights;
    encoderForward(s.x, ids, w.wte, this.positions, 1, T, C, V, P);
    w.blocks.forEach((lw, l) => {
      this.norm(s, s.x, lw.ln1w, lw.ln1b, T);
      this.linear(s.qkv, s.xn, lw.qkvW, lw.qkvB, T, C, 3 * C);
      if (this.theta !== null) ropeForward(s.qkv, 1, T, C, H, 0, this.theta);
      attentionForward(s.att, s.lse, s.qkv, 1, T, C, H);
      const k = this.cache.k[l]!, v = this.cache.v[l]!;
      for (let t = 0; t < T; t++) {
        const row = t * 3 * C;
        k.set(s.qkv.subarray(row + C, row + 2 * C), t * C);
        v.set(s.qkv.subarray(row + 2 * C, row + 3 * C), t * C);
      }
      this.mlpAndProjection(s, lw, T, C, F);
    });
    this.cache.length = T;
    if (allLogits) {
      if (allLogits.length < T * V) throw new RangeError(`prefill: allLogits holds ${allLogits.length}, needs ${T * V}`);
      this.norm(s, s.x, w.lnfw, w.lnfb, T);
      this.linear(allLogits, s.xn, w.lmHead, null, T, C, V);
      this.logits.set(allLogits.subarray((T - 1) * V, T * V));
      return this.logits;
    }
    // Only the last position's logits are needed to continue: normalise and project one row.
    const last = s.x.subarray((T - 1) * C, T * C);
    return this.head(last);
  }

  /**
   * Copy the cached keys and values of positions 0..length−1 into per-layer buffers ([max_seq_len, C]
   * each): the server prefills a request here, then decodes it in its own cache among others.
   */
  copyCacheTo(k: Float32Array[], v: Float32Array[]): void {
    const n = this.cache.length * this.arch.d_model;
    this.cache.k.forEach((src, l) => k[l]!.set(src.subarray(0, n)));
    this.cache.v.forEach((src, l) => v[l]!.set(src.subarray(0, n)));
  }

  /** Feed one token at position `length`; returns its logits ([V], reused by the next call). */
  step(token: number): Float32Array {
    const { vocab_size: V, max_seq_len: P } = this.arch;
    if (this.cache.length >= P) throw new RangeError(`step: the cache is full (${P} positions); prefill again from a shorter prefix`);
    if (!Number.isInteger(token) || token < 0 || token >= V) throw new RangeError(`step: token ${token} is outside 0..${V - 1}`);
    this.token[0] = token;
    this.decoder.step(this.caches, this.token, 1);
    return this.decoder.logitRows[0]!;
  }

  /** Attention output projection + residual, then the MLP block + residual, for `rows` rows. */
  private mlpAndProjection(s: Scratch, lw: BlockTensors, rows: number, C: number, F: number): void {
    this.linear(s.tmp, s.att, lw.attnProjW, lw.attnProjB, rows, C, C);
    residualForward(s.x, s.x, s.tmp, rows * C);
    this.norm(s, s.x, lw.ln2w, lw.ln2b, rows);
    this.linear(s.fc, s.xn, lw.fcW, lw.fcB, rows, C, fcRows(this.arch));
    if (this.eps === null) geluForward(s.fcg, s.fc, rows * F);
    else swigluForward(s.fcg, s.fc, rows, F);
    this.linear(s.tmp, s.fcg, lw.mlpProjW, lw.mlpProjB, rows, F, C);
    residualForward(s.x, s.x, s.tmp, rows * C);
  }

  /** Final norm and LM head of one residual row [C] → logits [V]. */
  private head(row: Float32Array): Float32Array {
    const { d_model: C, vocab_size: V } = this.arch;
    const s = this.one;
    const w = this.weights;
    this.norm(s, row, w.lnfw, w.lnfb, 1);
    this.linear(this.logits, s.xn, w.lmHead, null, 1, C, V);
    return this.logits;
  }

  /** out [rows, N] = inp [rows, K] · weightᵀ + bias, from the weight's panels. */
  private linear(out: Float32Array, inp: Float32Array, weight: Float32Array, bias: Float32Array | null, rows: number, K: number, N: number): void {
    matmulForwardPanels(out, inp, this.panels.get(weight)!, bias, rows, K, N);
  }

  /** s.xn = norm(inp) for `rows` rows: LayerNorm (GPT-2) or RMSNorm (Llama, no bias). */
  private norm(s: Scratch, inp: Float32Array, weight: Float32Array, bias: Float32Array | null, rows: number): void {
    const C = this.arch.d_model;
    if (this.eps === null) layernormForward(s.xn, s.mean, s.rstd, inp, weight, bias!, rows, C);
    else rmsnormForward(s.xn, s.rstd, inp, weight, rows, C, this.eps);
  }

  private scratchFor(rows: number): Scratch {
    if (rows === 1) return this.one;
    // Sized for the whole context on first use, so repeated prefills (sliding context, eval windows) reuse it.
    if (!this.many) this.many = new Scratch(this.arch.max_seq_len, this.arch);
    return this.many;
  }

  private checkedIds(tokens: ArrayLike<number>): Int32Array {
    const V = this.arch.vocab_size;
    const ids = new Int32Array(tokens.length);
    for (let i = 0; i < tokens.length; i++) {
      const id = tokens[i]!;
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new RangeError(`token ${id} at position ${i} is outside 0..${V - 1}`);
      ids[i] = id;
    }
    return ids;
  }
}
