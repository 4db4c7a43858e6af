/**
 * Typed wrappers over the BPE hot loops in csrc/bpe.c. Every pointer that crosses into C comes from
 * a TypedArray whose length is checked here; handles are freed when their owner is collected.
 */
import type { Pointer } from "bun:ffi";
import { nativeSymbols as S, NativeError } from "../native.ts";
import { charClasses, CODEPOINTS } from "./char_classes.ts";

export const KIND_BYTE = 0;
export const KIND_MERGE = 1;
export const KIND_SPECIAL = 2;

const STAT_WORDS_TOTAL = 0;
const STAT_WORDS_DISTINCT = 1;

let classesSent = false;
function ensureClasses(): void {
  if (classesSent) return;
  const table = charClasses();
  check("tv_bpe_set_classes", S.tv_bpe_set_classes(table, CODEPOINTS));
  classesSent = true;
}

function check(fn: string, status: number): number {
  if (status < 0) throw new NativeError(fn, status);
  return status;
}

/** End offsets of the pre-tokens of `text` (the C pre-tokenizer; tests compare it with the TypeScript one). */
export function nativePretokenize(text: Uint8Array): number[] {
  ensureClasses();
  if (text.length === 0) return [];
  const ends = new BigInt64Array(text.length);
  const n = check("tv_bpe_pretokenize", S.tv_bpe_pretokenize(ends, ends.length, text, text.length) as number);
  return Array.from(ends.subarray(0, n), Number);
}

/** Largest offset < text.length where the text can be cut without changing its words (0 if none). */
export function safeCut(text: Uint8Array): number {
  if (text.length === 0) return 0;
  return check("tv_bpe_safe_cut", S.tv_bpe_safe_cut(text, text.length) as number);
}

const trainerRegistry = new FinalizationRegistry<Pointer>((handle) => S.tv_bpe_trainer_free(handle));
const encoderRegistry = new FinalizationRegistry<Pointer>((handle) => S.tv_bpe_encoder_free(handle));

/**
 * Counts words, then learns merges (state lives in C). A call may run for seconds without returning
 * to JS, so no JS signal handler could run meanwhile: callers install none (see src/train/signals.ts)
 * and SIGINT/SIGTERM's default action ends the process inside C. A half-built vocabulary is worth
 * nothing, so there is nothing to save first.
 */
export class NativeTrainer {
  private handle: Pointer | null;
  private token = {};

  constructor() {
    ensureClasses();
    const h = S.tv_bpe_trainer_new();
    if (!h) throw new NativeError("tv_bpe_trainer_new", -16);
    this.handle = h as Pointer;
    trainerRegistry.register(this, this.handle, this.token);
  }

  count(text: Uint8Array): void {
    if (text.length === 0) return;
    check("tv_bpe_trainer_count", S.tv_bpe_trainer_count(this.handle, text, text.length));
  }

  get wordsTotal(): number {
    return S.tv_bpe_trainer_stat(this.handle, STAT_WORDS_TOTAL) as number;
  }
  get wordsDistinct(): number {
    return S.tv_bpe_trainer_stat(this.handle, STAT_WORDS_DISTINCT) as number;
  }

  prepare(firstMergeId: number): void {
    check("tv_bpe_trainer_prepare", S.tv_bpe_trainer_prepare(this.handle, firstMergeId));
  }

  /** Up to `max` more merges as [left, right] pairs (fewer, or none, when training is over). */
  merge(max: number, minFrequency: number): Int32Array {
    if (!Number.isInteger(max) || max < 1 || max > 1 << 30) throw new RangeError(`merge: max = ${max} must be an integer in 1..2^30`);
    if (!Number.isInteger(minFrequency) || minFrequency < 1) throw new RangeError(`merge: minFrequency = ${minFrequency} must be a positive integer`);
    const out = new Int32Array(Math.max(2 * max, 2));
    const n = check("tv_bpe_trainer_merge", S.tv_bpe_trainer_merge(this.handle, out, max, minFrequency));
    return out.slice(0, 2 * n);
  }

  free(): void {
    if (!this.handle) return;
    trainerRegistry.unregister(this.token);
    S.tv_bpe_trainer_free(this.handle);
    this.handle = null;
  }
}

export interface VocabArrays {
  kinds: Uint8Array;
  left: Int32Array;
  right: Int32Array;
  /** All token bytes back to back; token i is bytes[offsets[i], offsets[i+1]). */
  bytes: Uint8Array;
  offsets: BigInt64Array;
}

/** A vocabulary loaded into C for encoding and decoding. */
export class NativeEncoder {
  private readonly handle: Pointer;

  constructor(v: VocabArrays) {
    ensureClasses();
    const n = v.kinds.length;
    if (v.left.length !== n || v.right.length !== n || v.offsets.length !== n + 1) {
      throw new RangeError("NativeEncoder: arrays of different lengths");
    }
    if (n < 1 || Number(v.offsets[n]) > v.bytes.length) throw new RangeError("NativeEncoder: offsets beyond the bytes");
    const status = new Int32Array(1);
    const bytes = v.bytes.length ? v.bytes : new Uint8Array(1);
    const h = S.tv_bpe_encoder_new(v.kinds, v.left, v.right, bytes, v.offsets, n, status);
    if (!h) throw new NativeError("tv_bpe_encoder_new", status[0]!);
    this.handle = h as Pointer;
    encoderRegistry.register(this, this.handle);
  }

  /** Ids of `text`; `out` (if given) must hold at least text.length ids. */
  encode(text: Uint8Array, out?: Uint32Array): Uint32Array {
    if (text.length === 0) return new Uint32Array(0);
    const buf = out ?? new Uint32Array(text.length);
    if (buf.length < text.length) throw new RangeError("encode: out holds fewer ids than text has bytes");
    const n = check("tv_bpe_encode", S.tv_bpe_encode(this.handle, buf, buf.length, text, text.length) as number);
    return out ? buf.subarray(0, n) : buf.slice(0, n);
  }

  decodeBytes(ids: Uint32Array): Uint8Array {
    if (ids.length === 0) return new Uint8Array(0);
    const len = check("tv_bpe_decode", S.tv_bpe_decode(this.handle, null, 0, ids, ids.length) as number);
    const out = new Uint8Array(len + 16);
    const n = check("tv_bpe_decode", S.tv_bpe_decode(this.handle, out, out.length, ids, ids.length) as number);
    return out.subarray(0, n);
  }
}
