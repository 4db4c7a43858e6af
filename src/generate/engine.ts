/**
 * Batch-1 inference with a KV cache. `prefill` feeds the prompt's positions through the model as rows
 * of one decode step (up to PREFILL_ROWS at a time: one pass over the weights for all of them, each
 * row attending over the positions before it) and keeps every layer's keys and values; `step` then
 * feeds one token, so a new token costs one token's forward however long the prefix is.
 *
 * Both are the batched decoder (batch.ts): the server's steps, with their rows, have the bytes
 * `generate` computes here, and a prompt gives the same cache and logits in one call or in pieces.
 * Every product reads the weights' 16-wide panels (tv_matmul_forward_panels), made once per model.
 */
import type { Architecture } from "../model/layout.ts";
import { modelTensors, type ModelTensors } from "../model/weights.ts";
import { BatchDecoder, KvCache } from "./batch.ts";
import { panelsOf } from "./model_pointers.ts";

/** Prompt positions fed per pass: enough rows for the products to run at full speed, small buffers. */
const PREFILL_ROWS = 128;

export class InferenceEngine {
  readonly arch: Architecture;
  readonly weights: ModelTensors;
  /** Made on first use (a server decodes through its own decoder and caches, and never needs these;
   * the weights' panels are made at construction, so later changes to `params` are not seen):
   * the cache, per layer keys and values of positions 0..length−1, its length the position `step`
   * writes; the decoder; and a pass's rows, all of the one cache. */
  private parts: { cache: KvCache; decoder: BatchDecoder; rowCaches: KvCache[] } | null = null;
  private readonly rowTokens = new Int32Array(PREFILL_ROWS);
  private readonly rowPositions = new Int32Array(PREFILL_ROWS);
  private readonly allRows = Int32Array.from({ length: PREFILL_ROWS }, (_, i) => i);
  private readonly lastRow = new Int32Array(1);
  private readonly logits: Float32Array;

  constructor(arch: Architecture, params: Float32Array) {
    this.arch = arch;
    this.weights = modelTensors(arch, params);
    // The panels now (the server's decoder shares them), so a first prefill's time is its own.
    panelsOf(arch, this.weights);
    this.logits = new Float32Array(arch.vocab_size);
  }

  private made(): { cache: KvCache; decoder: BatchDecoder; rowCaches: KvCache[] } {
    if (!this.parts) {
      const cache = new KvCache(this.arch);
      const decoder = new BatchDecoder(this.arch, this.weights, PREFILL_ROWS);
      this.parts = { cache, decoder, rowCaches: Array.from({ length: PREFILL_ROWS }, () => cache) };
    }
    return this.parts;
  }

  /** Tokens in the cache: the position the next `step` writes. */
  get length(): number {
    return this.parts?.cache.length ?? 0;
  }

  get contextSize(): number {
    return this.arch.max_seq_len;
  }

  /** Forget the cache. */
  reset(): void {
    if (this.parts) this.parts.cache.length = 0;
  }

  /**
   * Run `tokens` (1..max_seq_len of them) from position 0, filling the cache. Returns the logits of
   * the last position ([V], a buffer reused by the next call). With `allLogits` ([T, V]) the logits
   * of every position are written there too (evaluation, reference dumps).
   */
  prefill(tokens: ArrayLike<number>, allLogits?: Float32Array): Float32Array {
    const T = tokens.length;
    const { vocab_size: V, max_seq_len: P } = this.arch;
    if (T < 1 || T > P) throw new RangeError(`prefill: ${T} tokens, the context holds 1..${P}`);
    for (let i = 0; i < T; i++) {
      const id = tokens[i]!;
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new RangeError(`token ${id} at position ${i} is outside 0..${V - 1}`);
    }
    if (allLogits && allLogits.length < T * V) throw new RangeError(`prefill: allLogits holds ${allLogits.length}, needs ${T * V}`);
    const { cache, decoder, rowCaches } = this.made();
    cache.length = 0;
    for (let t0 = 0; t0 < T; t0 += PREFILL_ROWS) {
      const n = Math.min(PREFILL_ROWS, T - t0);
      for (let i = 0; i < n; i++) {
        this.rowTokens[i] = tokens[t0 + i]!;
        this.rowPositions[i] = t0 + i;
      }
      // Only the last position's logits are needed to continue, unless all are asked for.
      const last = t0 + n === T;
      this.lastRow[0] = n - 1;
      const W = allLogits ? n : last ? 1 : 0;
      const logits = decoder.rows(n, rowCaches, this.rowTokens, this.rowPositions, allLogits ? this.allRows : this.lastRow, W);
      if (allLogits) allLogits.set(logits.subarray(0, n * V), t0 * V);
      else if (last) this.logits.set(logits.subarray(0, V));
      cache.length = t0 + n;
    }
    if (allLogits) this.logits.set(allLogits.subarray((T - 1) * V, T * V));
    return this.logits;
  }

  /**
   * Copy the cached keys and values of positions 0..length−1 into per-layer buffers ([max_seq_len, C]
   * each), to decode from elsewhere (a BatchDecoder's own cache) or to compare.
   */
  copyCacheTo(k: Float32Array[], v: Float32Array[]): void {
    const { cache } = this.made();
    const n = cache.length * this.arch.d_model;
    cache.k.forEach((src, l) => k[l]!.set(src.subarray(0, n)));
    cache.v.forEach((src, l) => v[l]!.set(src.subarray(0, n)));
  }

  /** Feed one token at position `length`; returns its logits ([V], reused by the next call). */
  step(token: number): Float32Array {
    const { vocab_size: V, max_seq_len: P } = this.arch;
    const { cache, decoder, rowCaches } = this.made();
    if (cache.length >= P) throw new RangeError(`step: the cache is full (${P} positions); prefill again from a shorter prefix`);
    if (!Number.isInteger(token) || token < 0 || token >= V) throw new RangeError(`step: token ${token} is outside 0..${V - 1}`);
    this.rowTokens[0] = token;
    decoder.step(rowCaches, this.rowTokens, 1);
    return decoder.logitRows[0]!;
  }
}
