/**
 * Packed training windows over one stream of token ids: window i is ids[i·T … i·T+T] (T+1 ids:
 * inputs and next-token targets), so windows overlap by one id and every id is a target once.
 * The last `valCount` windows are held out for validation; the rest are shuffled per epoch.
 */
import { UserError } from "../base/errors.ts";

export class TokenWindows {
  readonly count: number;
  readonly trainCount: number;
  readonly valCount: number;

  constructor(readonly ids: Uint32Array, readonly T: number, valFraction: number) {
    this.count = ids.length > T ? Math.floor((ids.length - 1) / T) : 0;
    if (this.count === 0) {
      throw new UserError(
        `--data holds ${ids.length} tokens, too few for one training sequence of --max-length ${T} (${T + 1} tokens needed). ` +
          "Give more text or a smaller --max-length.",
      );
    }
    this.valCount = valFraction > 0 && this.count >= 2 ? Math.min(this.count - 1, Math.max(1, Math.round(this.count * valFraction))) : 0;
    this.trainCount = this.count - this.valCount;
  }

  /** Copy windows `indices` (of the whole range, train then val) into rows of tokens/targets [B, T]. */
  fill(indices: ArrayLike<number>, tokens: Int32Array, targets: Int32Array): void {
    const T = this.T;
    for (let b = 0; b < indices.length; b++) {
      const start = indices[b]! * T;
      tokens.set(this.ids.subarray(start, start + T), b * T);
      targets.set(this.ids.subarray(start + 1, start + T + 1), b * T);
    }
  }
}

/**
 * The order of the training windows in one epoch: a Fisher–Yates shuffle from an RNG derived from
 * (seed, stage, epoch), so the order of any epoch can be rebuilt on resume without saving it.
 */
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
