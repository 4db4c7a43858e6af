import { describe, expect, test } from "bun:test";
import { Sampler } from "../../src/generate/sampler.ts";
import { argmax } from "../../src/native.ts";
import { Xoshiro128 } from "../../src/base/rng.ts";

const logitsOf = (probs: number[]) => Float32Array.from(probs.map(Math.log));
const counts = (s: Sampler, logits: Float32Array, n: number) => {
  const c = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const id = s.sample(logits);
    c.set(id, (c.get(id) ?? 0) + 1);
  }
  return c;
};

describe("Xoshiro128 floats", () => {
  for (const method of ["nextFloat32", "nextFloat"] as const) {
    test(`${method}: a seed gives the same stream; different seeds differ; values lie in [0, 1)`, () => {
      const a = Xoshiro128.fromSeed(42), b = Xoshiro128.fromSeed(42), c = Xoshiro128.fromSeed(43);
      const xs = Array.from({ length: 1000 }, () => a[method]());
      expect(Array.from({ length: 1000 }, () => b[method]())).toEqual(xs);
      expect(Array.from({ length: 1000 }, () => c[method]())).not.toEqual(xs);
      expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
      const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
      expect(Math.abs(mean - 0.5)).toBeLessThan(0.05);
    });
  }

  test("nextFloat32 is one 32-bit draw over 2^32", () => {
    const a = Xoshiro128.fromSeed(7), b = Xoshiro128.fromSeed(7);
    for (let i = 0; i < 100; i++) expect(a.nextFloat32()).toBe(b.nextU32() / 2 ** 32);
  });
});

describe("Sampler", () => {
  test("temperature 0 is greedy and ties go to the lowest id", () => {
    const s = new Sampler({ temperature: 0, topK: 0, topP: 1, seed: 1 });
    expect(s.sample(Float32Array.of(0.1, 3, -2, 3, 1))).toBe(1);
    expect(argmax(Float32Array.of(5, 5, 5))).toBe(0);
  });

  test("the vocab limit keeps ids a tokenizer cannot decode out of reach", () => {
    const s = new Sampler({ temperature: 0, topK: 0, topP: 1, seed: 1 });
    expect(s.sample(Float32Array.of(1, 2, 9), 2)).toBe(1);
  });

  test("same seed, same draws; another seed, other draws", () => {
    const logits = Float32Array.from({ length: 100 }, (_, i) => Math.sin(i));
    const draw = (seed: number) => {
      const s = new Sampler({ temperature: 1, topK: 0, topP: 1, seed });
      return Array.from({ length: 50 }, () => s.sample(logits));
    };
    expect(draw(5)).toEqual(draw(5));
    expect(draw(5)).not.toEqual(draw(6));
  });

  test("plain sampling follows softmax(logits / temperature)", () => {
    const probs = [0.5, 0.3, 0.15, 0.05];
    const c = counts(new Sampler({ temperature: 1, topK: 0, topP: 1, seed: 9 }), logitsOf(probs), 20000);
    probs.forEach((p, i) => expect(Math.abs((c.get(i) ?? 0) / 20000 - p)).toBeLessThan(0.015));
    // temperature 0.5 squares the probabilities (then renormalises)
    const sq = probs.map((p) => p * p), z = sq.reduce((a, b) => a + b, 0);
    const c2 = counts(new Sampler({ temperature: 0.5, topK: 0, topP: 1, seed: 9 }), logitsOf(probs), 20000);
    sq.forEach((p, i) => expect(Math.abs((c2.get(i) ?? 0) / 20000 - p / z)).toBeLessThan(0.015));
  });

  test("top-k keeps exactly the k most likely tokens, in proportion", () => {
    const probs = [0.05, 0.3, 0.15, 0.5];
    const c = counts(new Sampler({ temperature: 1, topK: 2, topP: 1, seed: 3 }), logitsOf(probs), 16000);
    expect([...c.keys()].sort()).toEqual([1, 3]);
    expect(Math.abs(c.get(3)! / 16000 - 0.5 / 0.8)).toBeLessThan(0.02);
    const one = counts(new Sampler({ temperature: 5, topK: 1, topP: 1, seed: 3 }), logitsOf(probs), 200);
    expect([...one.keys()]).toEqual([3]);
  });

  test("top-p keeps the smallest set reaching p, including the token that crosses it", () => {
    const probs = [0.5, 0.3, 0.15, 0.05];
    const c = counts(new Sampler({ temperature: 1, topK: 0, topP: 0.7, seed: 4 }), logitsOf(probs), 16000);
    expect([...c.keys()].sort()).toEqual([0, 1]);
    expect(Math.abs(c.get(0)! / 16000 - 0.5 / 0.8)).toBeLessThan(0.02);
    const exact = counts(new Sampler({ temperature: 1, topK: 0, topP: 0.5, seed: 4 }), logitsOf(probs), 500);
    expect([...exact.keys()]).toEqual([0]);
    const wide = counts(new Sampler({ temperature: 1, topK: 0, topP: 0.96, seed: 4 }), logitsOf(probs), 4000);
    expect([...wide.keys()].sort()).toEqual([0, 1, 2, 3]);
  });

  test("top-k and top-p together: the nucleus is taken within the top k", () => {
    const probs = [0.4, 0.3, 0.2, 0.1];
    const c = counts(new Sampler({ temperature: 1, topK: 3, topP: 0.75, seed: 2 }), logitsOf(probs), 8000);
    // top-3 mass 0.9; 0.75·0.9 = 0.675 is crossed by the second token
    expect([...c.keys()].sort()).toEqual([0, 1]);
  });

  test("top-p over a large flat vocabulary still samples from the whole nucleus", () => {
    const logits = new Float32Array(5000); // uniform: the nucleus at p=0.5 is 2500 tokens
    const c = counts(new Sampler({ temperature: 1, topK: 0, topP: 0.5, seed: 8 }), logits, 1000);
    expect(c.size).toBeGreaterThan(600);
    expect(Math.max(...c.keys())).toBeLessThan(2500);
  });

  test("top-k picks its candidates by selection: the same draws as sorting every candidate", () => {
    // The sampler's rule with a full sort of the candidates (higher probability, then lower id).
    const reference = (logits: Float32Array, T: number, topK: number, topP: number, rng: Xoshiro128) => {
      const n = logits.length, max = logits[argmax(logits)]!;
      const probs = new Float32Array(n);
      let sum = 0;
      for (let i = 0; i < n; i++) sum += probs[i] = Math.exp((logits[i]! - max) / T);
      const k = topK > 0 && topK < n ? topK : n;
      let cutoff = topP < 1 ? ((1 - topP) / Math.max(1, n - 1)) * sum : 0;
      let cand = [...probs.keys()].filter((i) => probs[i]! >= cutoff);
      if (cand.length < k && cutoff > 0) cand = [...probs.keys()];
      cand.sort((a, b) => probs[b]! - probs[a]! || a - b);
      let keep = Math.min(k, cand.length), kept = 0;
      for (let i = 0; i < keep; i++) kept += probs[cand[i]!]!;
      if (topP < 1) {
        let acc = 0;
        for (let i = 0; i < keep; i++) {
          acc += probs[cand[i]!]!;
          if (acc >= topP * kept) { keep = i + 1; kept = acc; break; }
        }
      }
      let r = rng.nextFloat32() * kept;
      for (let i = 0; i < keep; i++) if ((r -= probs[cand[i]!]!) < 0) return cand[i]!;
      return cand[keep - 1]!;
    };
    const data = Xoshiro128.fromSeed(77);
    // The last setting: a low temperature, where most probabilities underflow float32.
    for (const [topK, topP, T] of [[40, 0.95, 0.8], [5, 1, 1], [200, 0.9, 1.2], [1, 1, 1], [3, 0.5, 0.7], [3, 0.9, 0.01]] as const) {
      // Logits on a coarse grid, so that many tokens tie and the id order decides.
      const logits = Float32Array.from({ length: 3000 }, () => Math.round(data.nextFloat32() * 40) / 8);
      const s = new Sampler({ temperature: T, topK, topP, seed: topK });
      const rng = Xoshiro128.fromSeed(topK);
      for (let i = 0; i < 300; i++) expect(s.sample(logits)).toBe(reference(logits, T, topK, topP, rng));
    }
  });

  test("top-k: logits that differ but round to the same probability tie, and the lower id wins", () => {
    // exp(−1.1e-7) and exp(−1e-7) are the same float32; the top 2 are ids 2 and 0, not 2 and 1.
    const logits = Float32Array.of(-1.1e-7, -1e-7, 0, -5, -9);
    expect(Math.fround(Math.exp(logits[0]!))).toBe(Math.fround(Math.exp(logits[1]!)));
    const c = counts(new Sampler({ temperature: 1, topK: 2, topP: 1, seed: 12 }), logits, 400);
    expect([...c.keys()].sort()).toEqual([0, 2]);
  });

  test("bad settings are refused", () => {
    expect(() => new Sampler({ temperature: -1, topK: 0, topP: 1, seed: 0 })).toThrow();
    expect(() => new Sampler({ temperature: 1, topK: 1.5, topP: 1, seed: 0 })).toThrow();
    expect(() => new Sampler({ temperature: 1, topK: 0, topP: 0, seed: 0 })).toThrow();
  });
});
