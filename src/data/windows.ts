/**
 * Packed training windows over token ids. The documents (one per data file, in listing order) are
 * joined with the end-of-text id between them into two streams, one for training and one held out
 * for validation; window i of a stream is ids[i·T … i·T+T] (T+1 ids: inputs and next-token
 * targets), so windows overlap by one id and every id is a target once.
 *
 * The held-out share is taken from each document on its own (docs/data.md), so adding files never
 * moves text between training and validation:
 * - a document of c ≥ 2 windows of its own holds out its last v = round(c × fraction) windows
 *   (at least 1, at most c − 1): its ids [0, T·(c−v)] train and [T·(c−v), n) validate;
 * - a document of one window holds out nothing;
 * - a shorter one holds out its last round(n × fraction) ids.
 * For one document this is exactly the split of the whole stream's last windows.
 *
 * The streams are never assembled: they are lists of views (into the token store's maps, or of an
 * array in memory), and fill() copies a batch's windows out of them.
 */
import { UserError } from "../base/errors.ts";

export type IdArray = Uint16Array | Uint32Array;
/** A document's ids, in pieces. */
export type Document = IdArray[];

export interface Documents {
  documents: Document[];
  /** The id between documents (null: none, as in LoopOS's word vocabulary). */
  endOfText: number | null;
}

/** A stream of ids that is a list of pieces, read without joining them. */
class PieceStream {
  readonly length: number;
  private readonly pieces: IdArray[] = [];
  /** starts[p] = where piece p begins in the stream; starts[pieces] = length. */
  private readonly starts: Float64Array;

  constructor(pieces: IdArray[]) {
    for (const p of pieces) if (p.length > 0) this.pieces.push(p);
    this.starts = new Float64Array(this.pieces.length + 1);
    let at = 0;
    this.pieces.forEach((p, i) => {
      this.starts[i] = at;
      at += p.length;
    });
    this.starts[this.pieces.length] = at;
    this.length = at;
  }

  /** Copy ids [start, start + out.length) into out. */
  copy(start: number, out: Int32Array): void {
    // The last piece that begins at or before `start`.
    let lo = 0, hi = this.pieces.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.starts[mid]! <= start) lo = mid;
      else hi = mid - 1;
    }
    let o = 0;
    for (let p = lo; o < out.length; p++) {
      const piece = this.pieces[p]!;
      const from = start + o - this.starts[p]!;
      const take = Math.min(piece.length - from, out.length - o);
      out.set(piece.subarray(from, from + take), o);
      o += take;
    }
  }
}

/** Where document of n ids is split: ids [0, s] train and [s, n) validate (s = n: all train). */
export function splitPoint(n: number, T: number, valFraction: number): number {
  if (valFraction <= 0) return n;
  const c = n > T ? Math.floor((n - 1) / T) : 0;
  if (c >= 2) return T * (c - Math.min(c - 1, Math.max(1, Math.round(c * valFraction))));
  if (c === 1) return n;
  return n - Math.round(n * valFraction);
}

export class TokenWindows {
  readonly count: number;
  readonly trainCount: number;
  readonly valCount: number;
  /** Ids in all documents (end-of-text ids between them not counted). */
  readonly tokens: number;
  private readonly train: PieceStream;
  private readonly val: PieceStream;
  private readonly scratch: Int32Array;

  /** `source`: one document as an array, or documents from the token store. */
  constructor(source: IdArray | Documents, readonly T: number, valFraction: number) {
    const { documents, endOfText } = ArrayBuffer.isView(source) ? { documents: [[source]], endOfText: null } : source;
    const eot = endOfText === null ? null : Uint32Array.of(endOfText);
    const trainPieces: IdArray[] = [];
    const valPieces: IdArray[] = [];
    let tokens = 0;
    let valDocs = 0;
    documents.forEach((doc, i) => {
      const n = doc.reduce((s, p) => s + p.length, 0);
      tokens += n;
      const s = splitPoint(n, T, valFraction);
      if (i > 0 && eot) trainPieces.push(eot);
      trainPieces.push(...slice(doc, 0, Math.min(n, s + 1)));
      if (s < n) {
        if (valDocs++ > 0 && eot) valPieces.push(eot);
        valPieces.push(...slice(doc, s, n));
      }
    });
    this.tokens = tokens;
    this.train = new PieceStream(trainPieces);
    this.val = new PieceStream(valPieces);
    const windowsOf = (len: number) => (len > T ? Math.floor((len - 1) / T) : 0);
    this.trainCount = windowsOf(this.train.length);
    this.valCount = windowsOf(this.val.length);
    this.count = this.trainCount + this.valCount;
    if (this.trainCount === 0) {
      throw new UserError(
        `--data holds ${tokens} tokens, too few for one window of --max-length ${T} (${T + 1} tokens needed). ` +
          "Give more text or a smaller --max-length.",
      );
    }
    this.scratch = new Int32Array(T + 1);
  }

  /** Copy windows `indices` (of the whole range, train then val) into rows of tokens/targets [B, T]. */
  fill(indices: ArrayLike<number>, tokens: Int32Array, targets: Int32Array): void {
    const T = this.T;
    const w = this.scratch;
    for (let b = 0; b < indices.length; b++) {
      const i = indices[b]!;
      if (i < this.trainCount) this.train.copy(i * T, w);
      else this.val.copy((i - this.trainCount) * T, w);
      tokens.set(w.subarray(0, T), b * T);
      targets.set(w.subarray(1), b * T);
    }
  }
}

/** Ids [from, to) of a document in pieces, as views. */
function slice(doc: Document, from: number, to: number): IdArray[] {
  const out: IdArray[] = [];
  let at = 0;
  for (const p of doc) {
    const a = Math.max(from, at), b = Math.min(to, at + p.length);
    if (a < b) out.push(p.subarray(a - at, b - at));
    at += p.length;
  }
  return out;
}

/** The order of one epoch's training windows: windows first … end−1 of it. */
export interface WindowOrder {
  readonly length: number;
  range(first: number, end: number): Uint32Array;
}

/**
 * Up to this many windows the order is an array (a Fisher–Yates shuffle, 4 bytes a window);
 * above it, a seeded bijective permutation computed a window at a time (no memory per window).
 */
export const ORDER_ARRAY_LIMIT = 1 << 22;

/** The order of an epoch from an RNG derived from (seed, stage, epoch): rebuilt on resume, never saved. */
export function windowOrder(n: number, rng: { below(n: number): number }): WindowOrder {
  if (n <= ORDER_ARRAY_LIMIT) {
    const order = epochOrder(n, rng);
    return { length: n, range: (first, end) => order.subarray(first, end) };
  }
  return new PermutationOrder(n, rng);
}

/** A Fisher–Yates shuffle of 0 … n−1. */
export function epochOrder(n: number, rng: { below(n: number): number }): Uint32Array {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = rng.below(i + 1);
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  return order;
}

const ROUNDS = 6;

/**
 * A seeded permutation of 0 … n−1 (n < 2^32): a balanced Feistel network over the smallest even
 * number of bits that holds n, with cycle walking back into [0, n). Any position is computed
 * alone, so an epoch of 10^9 windows needs no array.
 */
export class PermutationOrder implements WindowOrder {
  private readonly half: number;
  private readonly mask: number;
  private readonly keys = new Uint32Array(ROUNDS);
  private out = new Uint32Array(0);

  constructor(readonly length: number, rng: { below(n: number): number }) {
    if (!Number.isInteger(length) || length < 1 || length > 0xffffffff) throw new RangeError(`PermutationOrder: ${length} windows`);
    let bits = 1;
    while (2 ** bits < length) bits++;
    this.half = Math.ceil(bits / 2);
    this.mask = (1 << this.half) - 1;
    for (let r = 0; r < ROUNDS; r++) this.keys[r] = rng.below(0x100000000);
  }

  /** The window at position i of the epoch. */
  at(i: number): number {
    let x = i;
    do x = this.encrypt(x);
    while (x >= this.length);
    return x;
  }

  range(first: number, end: number): Uint32Array {
    if (this.out.length < end - first) this.out = new Uint32Array(end - first);
    const out = this.out.subarray(0, end - first);
    for (let k = 0; k < out.length; k++) out[k] = this.at(first + k);
    return out;
  }

  private encrypt(x: number): number {
    const h = this.half, m = this.mask;
    let left = Math.floor(x / 2 ** h) & m;
    let right = x & m;
    for (let r = 0; r < ROUNDS; r++) {
      const next = (left ^ mix(right, this.keys[r]!)) & m;
      left = right;
      right = next;
    }
    return left * 2 ** h + right;
  }
}

/** murmur3's 32-bit finaliser over x ^ key. */
function mix(x: number, key: number): number {
  let h = (x ^ key) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
