/**
 * The byte-level BPE tokenizer: 256 byte tokens, specials, and merges. A merge's rank is its id, so
 * encoding applies merges in id order — the same rule HuggingFace's BPE follows with our exported
 * file. Encoding and decoding run in C (csrc/bpe.c); this class holds the vocabulary.
 */
import type { Tokenizer } from "./types.ts";
import { fingerprintOf } from "./fingerprint.ts";
import { KIND_BYTE, KIND_MERGE, KIND_SPECIAL, NativeEncoder } from "./native_bpe.ts";

export const END_OF_TEXT = "<|endoftext|>";
/** The longest token the native encoder accepts (TV_BPE_MAX_TOKEN_BYTES in csrc/train_vocab.h). */
export const MAX_TOKEN_BYTES = 1 << 20;
/** Names the pre-tokenizer in files and in the fingerprint: changing the split changes encode(). */
export const PRETOKENIZER = "gpt2";

export { KIND_BYTE, KIND_MERGE, KIND_SPECIAL };

/** A vocabulary, id by id. Checked by whoever builds it (trainer, file reader, HF importer). */
export interface BpeVocab {
  /** KIND_BYTE | KIND_MERGE | KIND_SPECIAL per id. */
  kinds: Uint8Array;
  /** Merge parents (earlier ids), −1 for bytes and specials. */
  left: Int32Array;
  right: Int32Array;
  /** The bytes of each token. */
  tokens: Uint8Array[];
}

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder();

export class BpeTokenizer implements Tokenizer {
  readonly type = "bpe" as const;
  readonly vocabSize: number;
  readonly fingerprint: string;
  readonly endOfTextId: number | null;
  readonly vocab: BpeVocab;
  private readonly native: NativeEncoder;

  constructor(vocab: BpeVocab) {
    const n = vocab.kinds.length;
    this.vocab = vocab;
    this.vocabSize = n;
    const offsets = new BigInt64Array(n + 1);
    let total = 0;
    for (let i = 0; i < n; i++) {
      total += vocab.tokens[i]!.length;
      offsets[i + 1] = BigInt(total);
    }
    const bytes = new Uint8Array(total);
    for (let i = 0, o = 0; i < n; i++) {
      bytes.set(vocab.tokens[i]!, o);
      o += vocab.tokens[i]!.length;
    }
    this.native = new NativeEncoder({ kinds: vocab.kinds, left: vocab.left, right: vocab.right, bytes, offsets });
    this.fingerprint = bpeFingerprint(vocab);
    let eot: number | null = null;
    for (let i = 0; i < n; i++) if (vocab.kinds[i] === KIND_SPECIAL && this.tokenText(i) === END_OF_TEXT) eot = i;
    this.endOfTextId = eot;
  }

  /** Counts for logs and `inspect`. */
  get mergeCount(): number {
    let m = 0;
    for (const k of this.vocab.kinds) if (k === KIND_MERGE) m++;
    return m;
  }

  /** Ids of the special tokens, in id order. */
  get specialIds(): number[] {
    const out: number[] = [];
    this.vocab.kinds.forEach((k, i) => k === KIND_SPECIAL && out.push(i));
    return out;
  }

  tokenText(id: number): string {
    return utf8Decoder.decode(this.vocab.tokens[id]);
  }

  encode(text: string | Uint8Array): Uint32Array {
    const bytes = typeof text === "string" ? utf8.encode(text) : text;
    return this.native.encode(bytes);
  }

  /** Encode into a caller's buffer (at least text.length ids long); returns the filled view. */
  encodeInto(text: Uint8Array, out: Uint32Array): Uint32Array {
    return this.native.encode(text, out);
  }

  decodeBytes(ids: ArrayLike<number>): Uint8Array {
    let arr: Uint32Array;
    if (ids instanceof Uint32Array) {
      arr = ids;
      for (let i = 0; i < arr.length; i++) if (arr[i]! >= this.vocabSize) throw outOfVocab(arr[i]!, i, this.vocabSize);
    } else {
      arr = new Uint32Array(ids.length);
      for (let i = 0; i < ids.length; i++) {
        const v = ids[i]!;
        if (!Number.isInteger(v) || v < 0 || v >= this.vocabSize) throw outOfVocab(v, i, this.vocabSize);
        arr[i] = v;
      }
    }
    return this.native.decodeBytes(arr);
  }

  decode(ids: ArrayLike<number>): string {
    return utf8Decoder.decode(this.decodeBytes(ids));
  }
}

function outOfVocab(id: number, at: number, size: number): RangeError {
  return new RangeError(`token id ${id} at position ${at} is outside the vocabulary (0..${size - 1})`);
}

/** Hash of the pre-tokenizer name and every entry: kind, parents, bytes. */
export function bpeFingerprint(v: BpeVocab): string {
  const head = `train-vocab byte-level-bpe pretokenizer=${PRETOKENIZER}\n`;
  const n = v.kinds.length;
  let total = 0;
  for (const t of v.tokens) total += t.length;
  const meta = new Int32Array(4 * n);
  for (let i = 0; i < n; i++) {
    meta[4 * i] = v.kinds[i]!;
    meta[4 * i + 1] = v.left[i]!;
    meta[4 * i + 2] = v.right[i]!;
    meta[4 * i + 3] = v.tokens[i]!.length;
  }
  const bytes = new Uint8Array(total);
  for (let i = 0, o = 0; i < n; i++) {
    bytes.set(v.tokens[i]!, o);
    o += v.tokens[i]!.length;
  }
  return fingerprintOf([head, meta, bytes]);
}

/** The trainer's layout: bytes 0..255 are ids 0..255, then the specials, then merges in order. */
export function vocabFromMerges(specials: string[], merges: ArrayLike<number>): BpeVocab {
  const nMerges = merges.length / 2;
  const n = 256 + specials.length + nMerges;
  const kinds = new Uint8Array(n);
  const left = new Int32Array(n).fill(-1);
  const right = new Int32Array(n).fill(-1);
  const tokens: Uint8Array[] = new Array(n);
  for (let b = 0; b < 256; b++) tokens[b] = Uint8Array.of(b);
  specials.forEach((s, k) => {
    kinds[256 + k] = KIND_SPECIAL;
    tokens[256 + k] = utf8.encode(s);
  });
  const first = 256 + specials.length;
  for (let m = 0; m < nMerges; m++) {
    const id = first + m, a = merges[2 * m]!, b = merges[2 * m + 1]!;
    kinds[id] = KIND_MERGE;
    left[id] = a;
    right[id] = b;
    const t = new Uint8Array(tokens[a]!.length + tokens[b]!.length);
    t.set(tokens[a]!);
    t.set(tokens[b]!, tokens[a]!.length);
    tokens[id] = t;
  }
  return { kinds, left, right, tokens };
}
