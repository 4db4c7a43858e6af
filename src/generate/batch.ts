/**
 * Batched decode: one token for each of B sequences in one pass over the weights. Every linear layer
 * runs as one matrix product with M = B rows, so the weights are read once per step however many
 * sequences share it; attention is one tv_attention_decode_rows call per layer (one thread hand-off
 * for all B sequences), each row against its own KV cache at its own position, and the rotary turn
 * one tv_rope_forward_rows call per layer (angles from a table made once, not per row and layer).
 * Sequences come and go between steps (continuous batching): a step takes whichever caches it is given.
 *
 * Same tokens as the batch-1 path, for any B: the products go through tv_matmul_forward_panels, which
 * reads the weights' panels once for all B rows and gives every output element the one running sum
 * it gets in a one-row call, each attention row has the bytes tv_attention_decode gives that sequence alone, each
 * rotary row the bytes of tv_rope_forward, and every other kernel works row by row or element by
 * element; so each row's logits are the bytes the step gives that sequence alone, which is what the
 * batch-1 engine (engine.ts) runs.
 *
 * Buffers' addresses are taken once (storage pinned first; model_pointers.ts) and the kernels are
 * called straight through the table; the step allocates nothing (per-row views and cache addresses
 * are made up front), since at small sizes the step's own overhead is a share of its time.
 */
import { ptr } from "bun:ffi";
import { type Architecture, fcRows } from "../model/layout.ts";
import type { ModelTensors } from "../model/weights.ts";
import { nativeSymbols as S } from "../native.ts";
import { addressOf, F32, modelPointers, type ModelPointers, ok, type Pointer } from "./model_pointers.ts";

/** One sequence's keys and values: per layer [max_seq_len, C] each, and how many positions are filled. */
export class KvCache {
  readonly k: Float32Array[];
  readonly v: Float32Array[];
  readonly kp: Pointer[];
  readonly vp: Pointer[];
  /** kp and vp as the 64-bit values the batched attention's address tables take. */
  readonly kAddress: bigint[];
  readonly vAddress: bigint[];
  /** Positions filled: where the next token goes. */
  length = 0;

  constructor(arch: Architecture) {
    const n = arch.max_seq_len * arch.d_model;
    this.k = Array.from({ length: arch.num_layers }, () => new Float32Array(n));
    this.v = Array.from({ length: arch.num_layers }, () => new Float32Array(n));
    this.kp = this.k.map(addressOf);
    this.vp = this.v.map(addressOf);
    this.kAddress = this.kp.map(BigInt);
    this.vAddress = this.vp.map(BigInt);
  }

  /** Bytes held. */
  get bytes(): number {
    return 2 * this.k.length * this.k[0]!.byteLength;
  }
}

/** The address of a small typed array, its storage pinned first (addressOf's, for any element type). */
function pinned(a: Int32Array | BigUint64Array): Pointer {
  void a.buffer;
  return ptr(a);
}

export class BatchDecoder {
  /** [maxWant, V]: row g holds the logits of the g-th wanted row (`step`: of sequence g). */
  readonly logits: Float32Array;
  /** Row g of logits as a view of its own (made once: a step's callers sample each row). */
  readonly logitRows: Float32Array[];
  private readonly m: ModelPointers;
  private readonly x: Float32Array; private readonly xn: Float32Array; private readonly qkv: Float32Array;
  private readonly buffers: Float32Array[];
  private readonly px: Pointer; private readonly pxn: Pointer; private readonly pqkv: Pointer;
  private readonly patt: Pointer; private readonly ptmp: Pointer; private readonly pfc: Pointer;
  private readonly pfcg: Pointer; private readonly pmean: Pointer; private readonly prstd: Pointer;
  private readonly plogits: Pointer;
  /** Per row: the cache length attention sees, and the layer's K and V cache addresses. */
  private readonly lengths: Int32Array; private readonly kTable: BigUint64Array; private readonly vTable: BigUint64Array;
  private readonly plengths: Pointer; private readonly pkTable: Pointer; private readonly pvTable: Pointer;
  private readonly fcWidth: number;
  /** Per row: its new key and its new value in qkv (views made once, not per step). */
  private readonly newK: Float32Array[]; private readonly newV: Float32Array[];
  /** Rotary models: per row its new token's position. */
  private readonly positions: Int32Array; private readonly ppositions: Pointer;

  /** `maxWant`: the most rows whose logits one call asks for (the logits buffer's rows). */
  constructor(private readonly arch: Architecture, weights: ModelTensors, readonly maxRows: number, readonly maxWant = maxRows) {
    if (!Number.isInteger(maxRows) || maxRows < 1) throw new RangeError(`BatchDecoder: maxRows ${maxRows} must be a whole number >= 1`);
    if (!Number.isInteger(maxWant) || maxWant < 1 || maxWant > maxRows) throw new RangeError(`BatchDecoder: maxWant ${maxWant} must be within 1..${maxRows}`);
    const { d_model: C, d_ff: F, vocab_size: V } = arch;
    const R = maxRows;
    this.fcWidth = fcRows(arch);
    this.x = new Float32Array(R * C);
    const xn = (this.xn = new Float32Array(R * C));
    this.qkv = new Float32Array(R * 3 * C);
    const att = new Float32Array(R * C), tmp = new Float32Array(R * C);
    const fc = new Float32Array(R * this.fcWidth), fcg = new Float32Array(R * F);
    const mean = new Float32Array(R), rstd = new Float32Array(R);
    this.logits = new Float32Array(maxWant * V);
    this.logitRows = Array.from({ length: maxWant }, (_, b) => this.logits.subarray(b * V, (b + 1) * V));
    this.buffers = [this.x, xn, this.qkv, att, tmp, fc, fcg, mean, rstd, this.logits];
    this.px = addressOf(this.x); this.pxn = addressOf(xn); this.pqkv = addressOf(this.qkv);
    this.patt = addressOf(att); this.ptmp = addressOf(tmp); this.pfc = addressOf(fc); this.pfcg = addressOf(fcg);
    this.pmean = addressOf(mean); this.prstd = addressOf(rstd); this.plogits = addressOf(this.logits);
    this.m = modelPointers(arch, weights);
    this.lengths = new Int32Array(R); this.kTable = new BigUint64Array(R); this.vTable = new BigUint64Array(R);
    this.plengths = pinned(this.lengths); this.pkTable = pinned(this.kTable); this.pvTable = pinned(this.vTable);
    this.newK = Array.from({ length: R }, (_, b) => this.qkv.subarray(b * 3 * C + C, b * 3 * C + 2 * C));
    this.newV = Array.from({ length: R }, (_, b) => this.qkv.subarray(b * 3 * C + 2 * C, b * 3 * C + 3 * C));
    this.positions = new Int32Array(R); this.ppositions = pinned(this.positions);
  }

  /** Bytes of activations and logits this decoder holds. */
  get bytes(): number {
    return this.buffers.reduce((n, b) => n + b.byteLength, 0);
  }

  /**
   * Feed tokens[b] to caches[b] at position caches[b].length, for b < B, and advance each cache by one.
   * Returns the logits, row b for sequence b ([B, V] at the front of `logits`, reused by the next step).
   */
  step(caches: readonly KvCache[], tokens: ArrayLike<number>, B = caches.length): Float32Array {
    this.checkRows("step", B, caches, tokens);
    if (B > this.maxWant) throw new RangeError(`BatchDecoder.step: ${B} rows, logits for at most ${this.maxWant}`);
    const P = this.arch.max_seq_len;
    for (let b = 0; b < B; b++) {
      if (caches[b]!.length >= P) throw new RangeError(`BatchDecoder.step: row ${b}'s cache is full (${P} positions)`);
      this.positions[b] = caches[b]!.length;
    }
    this.forward(B, caches, tokens, null, B);
    for (let b = 0; b < B; b++) caches[b]!.length++;
    return this.logits;
  }

  /**
   * Feed B rows: row b puts tokens[b] at position positions[b] of caches[b] and attends over positions
   * 0..positions[b] of that cache, which earlier steps or earlier rows of this call must have filled
   * (a prompt is its positions in order, as rows of one cache: a prefill, in one call or in pieces,
   * with the same bytes either way). The caches' lengths are the caller's to set. Returns the logits
   * of the W rows listed in `want` (ascending), row g for row want[g] ([W, V] at the front of
   * `logits`; W = 0 skips the head).
   */
  rows(
    B: number, caches: readonly KvCache[], tokens: ArrayLike<number>, positions: ArrayLike<number>,
    want: ArrayLike<number>, W: number,
  ): Float32Array {
    this.checkRows("rows", B, caches, tokens);
    const P = this.arch.max_seq_len;
    for (let b = 0; b < B; b++) {
      const pos = positions[b]!;
      if (!Number.isInteger(pos) || pos < 0 || pos >= P) throw new RangeError(`BatchDecoder.rows: position ${pos} (row ${b}) is outside 0..${P - 1}`);
      this.positions[b] = pos;
    }
    if (!Number.isInteger(W) || W < 0 || W > B || W > this.maxWant || want.length < W) {
      throw new RangeError(`BatchDecoder.rows: ${W} rows of logits wanted of ${B} (at most ${this.maxWant})`);
    }
    for (let g = 0; g < W; g++) {
      const r = want[g]!;
      if (!Number.isInteger(r) || r < (g === 0 ? 0 : want[g - 1]! + 1) || r >= B) throw new RangeError(`BatchDecoder.rows: want[${g}] = ${r} is not an ascending row below ${B}`);
    }
    this.forward(B, caches, tokens, want, W);
    return this.logits;
  }

  private checkRows(name: string, B: number, caches: readonly KvCache[], tokens: ArrayLike<number>): void {
    const V = this.arch.vocab_size;
    if (!Number.isInteger(B) || B < 1 || B > this.maxRows || caches.length < B || tokens.length < B) {
      throw new RangeError(`BatchDecoder.${name}: ${B} rows (caches ${caches.length}, tokens ${tokens.length}), at most ${this.maxRows}`);
    }
    for (let b = 0; b < B; b++) {
      const t = tokens[b]!;
      if (!Number.isInteger(t) || t < 0 || t >= V) throw new RangeError(`BatchDecoder.${name}: token ${t} (row ${b}) is outside 0..${V - 1}`);
    }
  }

  /** The forward of B checked rows at this.positions; the head for the W rows in want (all when null). */
  private forward(B: number, caches: readonly KvCache[], tokens: ArrayLike<number>, want: ArrayLike<number> | null, W: number): void {
    const { d_model: C, num_heads: H, d_ff: F, vocab_size: V, max_seq_len: P } = this.arch;
    const rope = this.m.rope;
    const row = (base: Pointer, b: number, width: number) => (base + b * width * F32) as Pointer;
    for (let b = 0; b < B; b++) {
      const wpeRow = this.m.wpeRows > 1 ? this.positions[b]! : 0;
      ok("residual_forward", S.tv_residual_forward(row(this.px, b, C), row(this.m.wte, tokens[b]!, C), row(this.m.wpe, wpeRow, C), C));
      this.lengths[b] = this.positions[b]! + 1;
    }
    this.m.layers.forEach((l, layer) => {
      this.norm(l.ln1w, l.ln1b, B);
      ok("matmul_forward_panels", S.tv_matmul_forward_panels(this.pqkv, this.pxn, l.qkvW, l.qkvB, B, C, 3 * C));
      if (rope) ok("rope_forward_rows", S.tv_rope_forward_rows(this.pqkv, rope.pcos, rope.psin, this.ppositions, P, B, 3 * C, C, H));
      // Every row's key and value go into its cache before any row attends, so a prompt's rows see each other.
      for (let b = 0; b < B; b++) {
        const cache = caches[b]!, pos = this.positions[b]!;
        cache.k[layer]!.set(this.newK[b]!, pos * C);
        cache.v[layer]!.set(this.newV[b]!, pos * C);
        this.kTable[b] = cache.kAddress[layer]!; this.vTable[b] = cache.vAddress[layer]!;
      }
      ok("attention_decode_rows", S.tv_attention_decode_rows(this.patt, this.pqkv, this.pkTable, this.pvTable, this.plengths, B, C, H, 3 * C));
      ok("matmul_forward_panels", S.tv_matmul_forward_panels(this.ptmp, this.patt, l.attnProjW, l.attnProjB, B, C, C));
      ok("residual_forward", S.tv_residual_forward(this.px, this.px, this.ptmp, B * C));
      this.norm(l.ln2w, l.ln2b, B);
      ok("matmul_forward_panels", S.tv_matmul_forward_panels(this.pfc, this.pxn, l.fcW, l.fcB, B, C, this.fcWidth));
      if (this.m.eps === null) ok("gelu_forward", S.tv_gelu_forward(this.pfcg, this.pfc, B * F));
      else ok("swiglu_forward", S.tv_swiglu_forward(this.pfcg, this.pfc, B, F));
      ok("matmul_forward_panels", S.tv_matmul_forward_panels(this.ptmp, this.pfcg, l.mlpProjW, l.mlpProjB, B, F, C));
      ok("residual_forward", S.tv_residual_forward(this.px, this.px, this.ptmp, B * C));
    });
    if (W === 0) return;
    this.norm(this.m.lnfw, this.m.lnfb, B);
    // The wanted rows moved to the front (in place: want is ascending, so a row is read before it is overwritten).
    if (want) for (let g = 0; g < W; g++) if (want[g] !== g) this.xn.copyWithin(g * C, want[g]! * C, want[g]! * C + C);
    ok("matmul_forward_panels", S.tv_matmul_forward_panels(this.plogits, this.pxn, this.m.lmHead, null, W, C, V));
  }

  /** xn = norm(x) for B rows: LayerNorm (GPT-2) or RMSNorm (Llama). */
  private norm(weight: Pointer, bias: Pointer | null, B: number): void {
    const C = this.arch.d_model;
    if (this.m.eps === null) ok("layernorm_forward", S.tv_layernorm_forward(this.pxn, this.pmean, this.prstd, this.px, weight, bias, B, C));
    else ok("rmsnorm_forward", S.tv_rmsnorm_forward(this.pxn, this.prstd, this.px, weight, B, C, this.m.eps));
  }
}
