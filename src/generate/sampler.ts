/**
 * Picking the next token from logits: greedy (temperature 0), or sampling from softmax(logits / T)
 * restricted to the k most likely tokens (top-k) and then to the smallest set whose probability
 * reaches p (top-p, nucleus). Ties go to the lower id, so greedy decoding is fully determined.
 *
 * Cost per token is one pass over the vocabulary plus a sort of the candidates only: top-k computes
 * probabilities only for the tokens that can be among the k best and keeps k of them, and top-p first
 * drops tokens too unlikely to ever be in the nucleus (the llama2.c trick), so the full vocabulary is
 * never sorted. The passes over the whole vocabulary (the arg-max, the k-th largest logit and the
 * tokens near it) are native (csrc/isa/sample.c), with the answers of the plain loops: at a batch of
 * 16 in the server they were a tenth of the step's time as TypeScript loops.
 */
import { Xoshiro128 } from "../base/rng.ts";
import { argmax, topKCandidates } from "../native.ts";

export interface SamplerOptions {
  /** 0 = greedy. */
  temperature: number;
  /** 0 = off. */
  topK: number;
  /** 1 = off. */
  topP: number;
  seed: number;
}

/** A sampler's work buffers, grown to the vocabulary on first use. */
export class SamplerScratch {
  probs = new Float32Array(0);
  order = new Int32Array(0);
  heap = new Float32Array(0);
}

export class Sampler {
  private readonly rng: Xoshiro128;
  private readonly w: SamplerScratch;

  /** `scratch`: work buffers shared with other samplers used one at a time (the server's sequences). */
  constructor(readonly options: SamplerOptions, scratch = new SamplerScratch()) {
    this.w = scratch;
    const { temperature, topK, topP } = options;
    if (!(temperature >= 0) || !Number.isFinite(temperature)) throw new RangeError(`temperature ${temperature} must be >= 0`);
    if (!Number.isInteger(topK) || topK < 0) throw new RangeError(`topK ${topK} must be a whole number >= 0`);
    if (!(topP > 0 && topP <= 1)) throw new RangeError(`topP ${topP} must be in (0, 1]`);
    this.rng = Xoshiro128.fromSeed(options.seed);
  }

  /** The next token id. `vocab` limits the choice to ids below it (a model may have spare rows). */
  sample(logits: Float32Array, vocab = logits.length): number {
    if (this.options.temperature === 0) return argmax(logits, vocab);
    return this.sampleTempered(logits, vocab);
  }

  private sampleTempered(logits: Float32Array, n: number): number {
    const { temperature, topK, topP } = this.options;
    if (this.w.probs.length < n) {
      this.w.probs = new Float32Array(n);
      this.w.order = new Int32Array(n);
    }
    const probs = this.w.probs;
    const max = logits[argmax(logits, n)]!;
    const k = topK > 0 && topK < n ? topK : n;
    if (k < n) {
      const m = this.nearTopK(logits, n, k, max);
      if (m >= 0) return this.drawSorted(m > k ? this.selectTop(probs, m, k) : this.w.order.subarray(0, m), topP);
    }
    // softmax(logits / T) in double accumulation, shifted by the maximum for stability.
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const e = Math.exp((logits[i]! - max) / temperature);
      probs[i] = e;
      sum += e;
    }
    if (k === n && topP >= 1) return this.draw(probs, sum, n);

    // Candidates: a token below this share of the mass can be neither in the top-k nor in the nucleus
    // unless fewer than k tokens survive the cut, in which case everything is kept.
    let cutoff = topP < 1 ? ((1 - topP) / Math.max(1, n - 1)) * sum : 0;
    let m = this.collect(probs, n, cutoff);
    if (m < k && cutoff > 0) {
      cutoff = 0;
      m = this.collect(probs, n, 0);
    }
    const keep = Math.min(k, m);
    return this.drawSorted(keep < m ? this.selectTop(probs, m, keep) : this.w.order.subarray(0, m), topP);
  }

  /**
   * With top-k, the draw depends only on the k most likely tokens, so only the tokens that can be
   * among them need a probability. The k-th largest logit bounds them: a token more than 1e-5·T below
   * it has a probability smaller by a factor e^−1e-5, a gap float32 rounding cannot close, so it can
   * neither tie with the k-th nor pass it. Computes the probabilities of the tokens within that margin
   * (as the full pass would: same expression, same float32 rounding), lists them in the order buffer and
   * returns how many; −1 where the k-th probability falls in float32's subnormal range, where that
   * argument does not hold (the full pass then decides).
   */
  private nearTopK(logits: Float32Array, n: number, k: number, max: number): number {
    const T = this.options.temperature;
    if (!(1e-5 * T <= 1e30)) return -1; // beyond the native pass's margin: the full pass decides
    if (this.w.heap.length < k) this.w.heap = new Float32Array(k);
    const { kth, count } = topKCandidates(this.w.order, this.w.heap, logits, n, k, 1e-5 * T);
    if (Math.fround(Math.exp((kth - max) / T)) < MIN_NORMAL_F32) return -1;
    for (let j = 0; j < count; j++) {
      const i = this.w.order[j]!;
      this.w.probs[i] = Math.exp((logits[i]! - max) / T);
    }
    return count;
  }

  /** Sort the candidates (higher probability, then lower id), apply top-p within them, draw. */
  private drawSorted(cand: Int32Array, topP: number): number {
    const probs = this.w.probs;
    if (cand.length <= SMALL_SORT) sortSmall(cand, probs);
    else cand.sort((a, b) => probs[b]! - probs[a]! || a - b);
    let keep = cand.length;
    let kept = 0;
    for (let i = 0; i < keep; i++) kept += probs[cand[i]!]!;
    if (topP < 1) {
      const target = topP * kept;
      let acc = 0;
      for (let i = 0; i < keep; i++) {
        acc += probs[cand[i]!]!;
        if (acc >= target) {
          keep = i + 1;
          kept = acc;
          break;
        }
      }
    }
    let r = this.rng.nextFloat32() * kept;
    for (let i = 0; i < keep; i++) {
      r -= probs[cand[i]!]!;
      if (r < 0) return cand[i]!;
    }
    return cand[keep - 1]!; // rounding left a sliver of mass: the last kept token
  }

  /**
   * The `k` best of the `m` candidates in the order buffer (higher probability first, then lower id: the
   * order the sort gives), moved to its front in no particular order. A heap of k keeps this at
   * m·log k instead of sorting all m candidates, which at top-k 40 over thousands of survivors
   * would cost more than the token's forward.
   */
  private selectTop(probs: Float32Array, m: number, k: number): Int32Array {
    const heap = this.w.order; // heap[0..k) holds the best so far, the worst of them at the root
    const worse = (a: number, b: number) => probs[a]! < probs[b]! || (probs[a] === probs[b] && a > b);
    const siftDown = (i: number) => {
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let w = i;
        if (l < k && worse(heap[l]!, heap[w]!)) w = l;
        if (r < k && worse(heap[r]!, heap[w]!)) w = r;
        if (w === i) return;
        const t = heap[i]!;
        heap[i] = heap[w]!;
        heap[w] = t;
        i = w;
      }
    };
    for (let i = (k >> 1) - 1; i >= 0; i--) siftDown(i);
    for (let j = k; j < m; j++) {
      const c = heap[j]!;
      if (worse(heap[0]!, c)) {
        heap[j] = heap[0]!;
        heap[0] = c;
        siftDown(0);
      }
    }
    return heap.subarray(0, k);
  }

  private collect(probs: Float32Array, n: number, cutoff: number): number {
    let m = 0;
    for (let i = 0; i < n; i++) if (probs[i]! >= cutoff) this.w.order[m++] = i;
    return m;
  }

  /** Inverse-CDF draw over all n ids. */
  private draw(probs: Float32Array, sum: number, n: number): number {
    let r = this.rng.nextFloat32() * sum;
    for (let i = 0; i < n; i++) {
      r -= probs[i]!;
      if (r < 0) return i;
    }
    for (let i = n - 1; i >= 0; i--) if (probs[i]! > 0) return i;
    return 0;
  }
}

const MIN_NORMAL_F32 = 2 ** -126;

/** Up to this many candidates (top-k's usual 40) are sorted by insertion, without a comparator call
 * per comparison: the same order, as it is a total one. */
const SMALL_SORT = 64;

/** Higher probability first, then lower id. */
function sortSmall(cand: Int32Array, probs: Float32Array): void {
  for (let i = 1; i < cand.length; i++) {
    const id = cand[i]!, p = probs[id]!;
    let j = i - 1;
    while (j >= 0) {
      const o = cand[j]!;
      if ((probs[o]! - p || id - o) > 0) break; // the comparator of the larger sort: o stays first
      cand[j + 1] = o;
      j--;
    }
    cand[j + 1] = id;
  }
}
