/**
 * The one random-number generator: xoshiro128** seeded through splitmix32, for initialisation, data
 * order, sampling and test data alike. 32-bit integer arithmetic only, which JavaScript does exactly,
 * so a seed gives the same stream on every machine. Its whole state is four 32-bit words, written
 * into checkpoints as hex, so a resumed run draws exactly what the uninterrupted one would have
 * drawn. Math.random cannot be seeded or saved; this can.
 */
export class Xoshiro128 {
  private readonly s = new Uint32Array(4);

  private constructor() {}

  static fromSeed(seed: number): Xoshiro128 {
    const r = new Xoshiro128();
    // splitmix32 spreads any seed (0 included) over the four words; the state is never all zero.
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      r.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
    return r;
  }

  /** Several values mixed into one seed: e.g. (seed, stage, epoch) for an epoch's data order. */
  static derive(...parts: number[]): Xoshiro128 {
    let h = 0x811c9dc5;
    for (const p of parts) {
      h = Math.imul(h ^ (p >>> 0), 0x01000193) >>> 0;
      h = (h ^ (h >>> 15)) >>> 0;
      h = Math.imul(h ^ Math.floor(p / 0x100000000), 0x01000193) >>> 0;
    }
    return Xoshiro128.fromSeed(h);
  }

  /** "xoshiro128**:" then 32 hex digits. */
  serialize(): string {
    return "xoshiro128**:" + Array.from(this.s, (w) => w.toString(16).padStart(8, "0")).join("");
  }

  static deserialize(text: string): Xoshiro128 {
    const m = /^xoshiro128\*\*:([0-9a-f]{32})$/.exec(text);
    if (!m) throw new Error(`not a saved xoshiro128** state: ${JSON.stringify(text)}`);
    const r = new Xoshiro128();
    for (let i = 0; i < 4; i++) r.s[i] = parseInt(m[1].slice(8 * i, 8 * i + 8), 16);
    if (r.s.every((w) => w === 0)) throw new Error("a saved xoshiro128** state cannot be all zero");
    return r;
  }

  nextU32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform in [0, 1), 53 bits (two draws). */
  nextFloat(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform in [0, 1), 32 bits (one draw): the sampler's stream, pinned by recorded outputs. */
  nextFloat32(): number {
    return this.nextU32() / 0x100000000;
  }

  /** Uniform integer in [0, n), without modulo bias. */
  below(n: number): number {
    if (n <= 1) return 0;
    if (n <= 0x100000000) {
      const limit = 0x100000000 - (0x100000000 % n);
      for (;;) {
        const x = this.nextU32();
        if (x < limit) return x % n;
      }
    }
    return Math.floor(this.nextFloat() * n);
  }

  /** Standard normal (Box–Muller; one value per call keeps the state simple to save). */
  normal(): number {
    let u = this.nextFloat();
    while (u === 0) u = this.nextFloat();
    const v = this.nextFloat();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
