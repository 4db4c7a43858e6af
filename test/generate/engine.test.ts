import { describe, expect, test } from "bun:test";
import { InferenceEngine } from "../../src/generate/engine.ts";
import { archFor, randomParams } from "./fixtures.ts";
import { maxAbsDiff, referenceLogits } from "./reference.ts";

const variants = {
  "GPT-2 shaped (tied, attention biases)": archFor(50),
  "LoopOS-shaped (untied, no attention biases)": archFor(50, { tied_embeddings: false, attention_bias: false, num_layers: 3 }),
};
const tokens = [3, 17, 42, 0, 49, 8, 8, 23, 5, 11, 30, 2];

describe("InferenceEngine", () => {
  for (const [label, arch] of Object.entries(variants)) {
    const params = randomParams(arch, 7);

    test(`${label}: prefill logits of every position equal a plain double-precision forward`, () => {
      const engine = new InferenceEngine(arch, params);
      const all = new Float32Array(tokens.length * arch.vocab_size);
      const last = engine.prefill(tokens, all);
      const ref = referenceLogits(arch, params, tokens);
      for (let t = 0; t < tokens.length; t++) {
        expect(maxAbsDiff(all.subarray(t * arch.vocab_size, (t + 1) * arch.vocab_size), ref[t]!)).toBeLessThan(1e-4);
      }
      expect(maxAbsDiff(last, ref[tokens.length - 1]!)).toBeLessThan(1e-4);
    });

    test(`${label}: each KV-cache step equals recomputing the whole prefix`, () => {
      const cached = new InferenceEngine(arch, params);
      const full = new InferenceEngine(arch, params);
      cached.prefill(tokens.slice(0, 3));
      for (let t = 3; t < tokens.length; t++) {
        const step = cached.step(tokens[t]!).slice();
        const recomputed = full.prefill(tokens.slice(0, t + 1));
        expect(cached.length).toBe(t + 1);
        expect(maxAbsDiff(step, recomputed)).toBeLessThan(1e-5);
      }
    });

    test(`${label}: a one-token prefill then steps matches the reference at every position`, () => {
      const engine = new InferenceEngine(arch, params);
      const ref = referenceLogits(arch, params, tokens);
      expect(maxAbsDiff(engine.prefill(tokens.slice(0, 1)), ref[0]!)).toBeLessThan(1e-4);
      for (let t = 1; t < tokens.length; t++) expect(maxAbsDiff(engine.step(tokens[t]!), ref[t]!)).toBeLessThan(1e-4);
    });
  }

  test("step refuses a full cache and tokens outside the vocabulary", () => {
    const arch = archFor(50, { max_seq_len: 4 });
    const engine = new InferenceEngine(arch, randomParams(arch));
    engine.prefill([1, 2, 3, 4]);
    expect(() => engine.step(5)).toThrow(/cache is full/);
    engine.prefill([1]);
    expect(() => engine.step(50)).toThrow(/outside/);
    expect(() => engine.prefill([1, 2, 3, 4, 5])).toThrow(/context holds/);
    expect(() => engine.prefill([-1])).toThrow(/outside/);
  });

  test("a wrong parameter count is refused", () => {
    const arch = archFor(50);
    expect(() => new InferenceEngine(arch, new Float32Array(10))).toThrow(/parameters/);
  });
});
