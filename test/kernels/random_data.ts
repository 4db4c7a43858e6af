// Seeded kernel-test inputs drawn from the repository's one generator: the same seed gives the same
// data on every run, so a failing shape can be replayed exactly.
import { Xoshiro128 } from "../../src/base/rng.ts";

export class RandomData {
  private readonly rng: Xoshiro128;
  constructor(seed: number) {
    this.rng = Xoshiro128.fromSeed(seed);
  }
  /** Uniform in [0, 1). */
  next(): number {
    return this.rng.nextFloat32();
  }
  /** Uniform in [lo, hi). */
  uniform(lo = -1, hi = 1): number {
    return lo + (hi - lo) * this.next();
  }
  /** Float32Array of n values uniform in [lo, hi). */
  floats(n: number, lo = -1, hi = 1): Float32Array {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = this.uniform(lo, hi);
    return a;
  }
  /** Int32Array of n values in [0, hi). */
  ints(n: number, hi: number): Int32Array {
    const a = new Int32Array(n);
    for (let i = 0; i < n; i++) a[i] = this.rng.below(hi);
    return a;
  }
}
