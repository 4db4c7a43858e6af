/** Inference of Llama models: the KV-cache engine (rotary positions at prefill and at each step)
 * against the training model's full forward pass. */
import { describe, expect, test } from "bun:test";
import { InferenceEngine } from "../../src/generate/engine.ts";
import { GPT } from "../../src/model/gpt.ts";
import type { Architecture } from "../../src/model/layout.ts";
import { archFor, randomParams } from "./fixtures.ts";
import { maxAbsDiff } from "./reference.ts";

const llama = (over: Partial<Architecture> = {}): Architecture =>
  archFor(50, { attention_bias: false, block: "llama", rope_theta: 10000, norm_eps: 1e-5, ...over });

const variants = {
  "tied head": llama(),
  "untied head, rope_theta 500000, three layers": llama({ tied_embeddings: false, rope_theta: 500000, num_layers: 3 }),
};
const tokens = [3, 17, 42, 0, 49, 8, 8, 23, 5, 11, 30, 2];

/** Logits of every position from the training model's forward pass: [T][V]. */
function fullForward(arch: Architecture, params: Float32Array, ids: number[]): Float32Array[] {
  const model = new GPT(arch, params);
  model.reserve(1, ids.length);
  model.inputs.tokens.set(ids);
  model.forward(1, ids.length, false);
  const V = arch.vocab_size;
  return ids.map((_, t) => model.logits.slice(t * V, (t + 1) * V));
}

const argmax = (x: Float32Array) => x.reduce((best, v, i) => (v > x[best]! ? i : best), 0);

describe("InferenceEngine, Llama blocks", () => {
  for (const [label, arch] of Object.entries(variants)) {
    const params = randomParams(arch, 7);

    test(`${label}: prefill logits of every position equal the training model's forward`, () => {
      const engine = new InferenceEngine(arch, params);
      const all = new Float32Array(tokens.length * arch.vocab_size);
      engine.prefill(tokens, all);
      const ref = fullForward(arch, params, tokens);
      for (let t = 0; t < tokens.length; t++) {
        expect(maxAbsDiff(all.subarray(t * arch.vocab_size, (t + 1) * arch.vocab_size), ref[t]!)).toBeLessThan(1e-4);
      }
    });

    test(`${label}: each KV-cache step (rotary turn at its position) equals recomputing the whole prefix`, () => {
      const cached = new InferenceEngine(arch, params);
      const full = new InferenceEngine(arch, params);
      cached.prefill(tokens.slice(0, 3));
      for (let t = 3; t < tokens.length; t++) {
        const step = cached.step(tokens[t]!).slice();
        expect(maxAbsDiff(step, full.prefill(tokens.slice(0, t + 1)))).toBeLessThan(1e-5);
        expect(maxAbsDiff(step, fullForward(arch, params, tokens.slice(0, t + 1))[t]!)).toBeLessThan(1e-4);
      }
    });

    test(`${label}: greedy generation through the cache gives the tokens of a full recomputation per token`, () => {
      const engine = new InferenceEngine(arch, params);
      const prompt = [5, 9, 1];
      const cached: number[] = [];
      let logits = engine.prefill(prompt);
      while (prompt.length + cached.length < arch.max_seq_len) {
        const id = argmax(logits);
        cached.push(id);
        logits = engine.step(id);
      }
      const recomputed: number[] = [];
      const ids = prompt.slice();
      while (ids.length < arch.max_seq_len) {
        const id = argmax(fullForward(arch, params, ids).at(-1)!);
        recomputed.push(id);
        ids.push(id);
      }
      expect(cached).toEqual(recomputed);
      expect(new Set(cached).size).toBeGreaterThan(1); // not a degenerate constant output
    });
  }

  test("positions matter: the same token after the same last token but a permuted prefix gives other logits", () => {
    const arch = llama();
    const engine = new InferenceEngine(arch, randomParams(arch, 3));
    const a = engine.prefill([1, 2, 3, 4]).slice();
    const b = engine.prefill([2, 1, 3, 4]).slice();
    expect(maxAbsDiff(a, b)).toBeGreaterThan(1e-4);
  });
});
