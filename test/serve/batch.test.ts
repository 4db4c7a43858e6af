/** Batched decode (BatchDecoder) against the batch-1 engine: the same logits row by row, for
 * sequences at different positions, GPT-2 and Llama blocks; a prompt fed as rows in one call, in
 * pieces, or beside other sequences' rows: the engine's cache and logits. */
import { describe, expect, test } from "bun:test";
import { BatchDecoder, KvCache } from "../../src/generate/batch.ts";
import { InferenceEngine } from "../../src/generate/engine.ts";
import type { Architecture } from "../../src/model/layout.ts";
import { Xoshiro128 } from "../../src/base/rng.ts";
import { archFor, randomParams } from "../generate/fixtures.ts";

const V = 60;
const variants: Record<string, Architecture> = {
  gpt2: archFor(V),
  llama: archFor(V, { attention_bias: false, block: "llama", rope_theta: 10000, norm_eps: 1e-5, tied_embeddings: false }),
};

/** B sequences with prompts of different lengths, decoded `steps` tokens both ways. Returns the
 * largest difference relative to the logits' scale, and whether every row was bit-identical. */
function compare(arch: Architecture, B: number, steps: number): { exact: boolean; relative: number; compared: number } {
  const params = randomParams(arch, 3);
  const rng = Xoshiro128.fromSeed(B * 101 + steps);
  const token = () => Math.floor(rng.nextFloat32() * V) % V;
  const prefiller = new InferenceEngine(arch, params);
  const singles = Array.from({ length: B }, () => new InferenceEngine(arch, params));
  const caches = Array.from({ length: B }, () => new KvCache(arch));
  for (let b = 0; b < B; b++) {
    const prompt = Array.from({ length: 2 + ((b * 3) % 7) }, token);
    singles[b]!.prefill(prompt);
    prefiller.prefill(prompt);
    prefiller.copyCacheTo(caches[b]!.k, caches[b]!.v);
    caches[b]!.length = prompt.length;
  }
  const decoder = new BatchDecoder(arch, prefiller.weights, B);
  let exact = true, relative = 0, compared = 0;
  for (let s = 0; s < steps; s++) {
    const feed = Array.from({ length: B }, token);
    const batched = decoder.step(caches, feed, B);
    for (let b = 0; b < B; b++) {
      const ref = singles[b]!.step(feed[b]!);
      const row = batched.subarray(b * V, (b + 1) * V);
      let scale = 0, diff = 0;
      for (let i = 0; i < V; i++) {
        scale = Math.max(scale, Math.abs(ref[i]!));
        diff = Math.max(diff, Math.abs(ref[i]! - row[i]!));
        if (!Object.is(ref[i], row[i])) exact = false;
      }
      relative = Math.max(relative, diff / scale);
      compared++;
      expect(caches[b]!.length).toBe(singles[b]!.length);
    }
  }
  return { exact, relative, compared };
}

describe("BatchDecoder", () => {
  for (const [name, arch] of Object.entries(variants)) {
    for (const [B, steps] of [[1, 8], [2, 8], [3, 8], [4, 8], [9, 6], [16, 4], [32, 3]] as const) {
      test(`${name}, ${B} sequence(s) at different positions: every row's logits are the batch-1 engine's bytes`, () => {
        const r = compare(arch, B, steps);
        expect(r.compared).toBe(B * steps);
        expect(r.exact).toBe(true);
      });
    }
  }

  for (const [name, arch] of Object.entries(variants)) {
    test(`${name}: a prompt's rows in one call, in pieces, or beside another sequence's decode rows give the engine's cache and logits`, () => {
      const params = randomParams(arch, 5);
      const engine = new InferenceEngine(arch, params);
      const rng = Xoshiro128.fromSeed(7);
      const prompt = Array.from({ length: 23 }, () => Math.floor(rng.nextFloat32() * V) % V);
      const want = engine.prefill(prompt).slice();
      const C = arch.d_model, n = prompt.length * C;
      const decoder = new BatchDecoder(arch, engine.weights, 32);
      for (const piece of [23, 1, 5, 16]) {
        // Another sequence decodes in the same calls; its rows go first, the prompt's after.
        const other = new KvCache(arch);
        other.length = 0;
        const cache = new KvCache(arch);
        let last: Float32Array | null = null;
        for (let t0 = 0; t0 < prompt.length; t0 += piece) {
          const m = Math.min(piece, prompt.length - t0);
          const caches = [other, ...Array.from({ length: m }, () => cache)];
          const tokens = [3, ...prompt.slice(t0, t0 + m)];
          const positions = [other.length, ...Array.from({ length: m }, (_, i) => t0 + i)];
          const logits = decoder.rows(m + 1, caches, tokens, positions, [0, m], 2);
          other.length++;
          last = logits.slice(V, 2 * V);
        }
        const label = `${name} pieces of ${piece}`;
        expect([label, Array.from(last!).every((x, i) => Object.is(x, want[i]))]).toEqual([label, true]);
        const ks = Array.from({ length: arch.num_layers }, () => new Float32Array(arch.max_seq_len * C));
        const vs = Array.from({ length: arch.num_layers }, () => new Float32Array(arch.max_seq_len * C));
        engine.copyCacheTo(ks, vs);
        for (let l = 0; l < arch.num_layers; l++) {
          const same = (a: Float32Array, b: Float32Array) => a.subarray(0, n).every((x, i) => Object.is(x, b[i]));
          expect([label, l, same(cache.k[l]!, ks[l]!), same(cache.v[l]!, vs[l]!)]).toEqual([label, l, true, true]);
        }
      }
    });
  }

  for (const [name, arch] of Object.entries(variants)) {
    test(`${name}: random mixes of prompts in pieces and decoding rows, each sequence the engine's bytes (seeded fuzz)`, () => {
      const params = randomParams(arch, 11);
      const engine = new InferenceEngine(arch, params);
      const decoder = new BatchDecoder(arch, engine.weights, 24);
      const rng = Xoshiro128.fromSeed(Number(process.env.TRAIN_VOCAB_FUZZ_SEED ?? 20261205));
      const int = (n: number) => Math.floor(rng.nextFloat32() * n) % n;
      for (let round = 0; round < 12; round++) {
        // Up to 5 sequences, each a prompt then a few decoded tokens, fed in random turns of up to 24 rows.
        const seqs = Array.from({ length: 1 + int(5) }, () => {
          const prompt = Array.from({ length: 1 + int(arch.max_seq_len - 6) }, () => int(V));
          const extra = Array.from({ length: int(5) }, () => int(V));
          return { prompt, extra, all: [...prompt, ...extra], cache: new KvCache(arch), done: 0, logits: [] as Float32Array[] };
        });
        for (;;) {
          const caches: KvCache[] = [], tokens: number[] = [], positions: number[] = [], want: number[] = [], owners: number[] = [];
          seqs.forEach((q, i) => {
            if (q.done === q.all.length || caches.length >= 24) return;
            // Within the prompt: a random piece; past it, one token per turn (as decoding goes).
            const room = 24 - caches.length;
            const m = q.done < q.prompt.length ? Math.min(1 + int(q.prompt.length - q.done), room) : 1;
            for (let r = 0; r < m; r++) {
              caches.push(q.cache); tokens.push(q.all[q.done + r]!); positions.push(q.done + r);
            }
            q.done += m;
            if (q.done >= q.prompt.length) { want.push(caches.length - 1); owners.push(i); }
          });
          if (caches.length === 0) break;
          const logits = decoder.rows(caches.length, caches, tokens, positions, want, want.length);
          owners.forEach((i, g) => seqs[i]!.logits.push(logits.slice(g * V, (g + 1) * V)));
          seqs.forEach((q) => (q.cache.length = q.done));
        }
        seqs.forEach((q, i) => {
          // The engine: prefill the prompt, then a step per extra token; the same logits at each point.
          const ref = [engine.prefill(q.prompt).slice(), ...q.extra.map((t) => engine.step(t).slice())];
          const label = `round ${round} sequence ${i} (prompt ${q.prompt.length}, extra ${q.extra.length})`;
          expect([label, q.logits.length]).toEqual([label, ref.length]);
          const same = q.logits.every((l, j) => l.every((x, k) => Object.is(x, ref[j]![k])));
          expect([label, same]).toEqual([label, true]);
        });
      }
    });
  }

  test("rows: refuses positions outside the context and wanted rows out of order", () => {
    const arch = variants.gpt2!;
    const engine = new InferenceEngine(arch, randomParams(arch, 1));
    const decoder = new BatchDecoder(arch, engine.weights, 4);
    const c = new KvCache(arch);
    expect(() => decoder.rows(2, [c, c], [1, 2], [0, arch.max_seq_len], [0, 1], 2)).toThrow(new RegExp(`position ${arch.max_seq_len} \\(row 1\\)`));
    expect(() => decoder.rows(2, [c, c], [1, 2], [0, 1], [1, 0], 2)).toThrow(/ascending/);
    expect(() => decoder.rows(2, [c, c], [1, 2], [0, 1], [0], 2)).toThrow(/2 rows of logits/);
    expect(() => decoder.rows(2, [c, c], [1, 2], [0, 1], [0, 2], 2)).toThrow(/ascending row below 2/);
  });

  test("refuses a full cache, a token outside the vocabulary and more rows than it was built for", () => {
    const arch = variants.gpt2!;
    const engine = new InferenceEngine(arch, randomParams(arch, 1));
    const decoder = new BatchDecoder(arch, engine.weights, 2);
    const cache = new KvCache(arch);
    expect(() => decoder.step([cache], [V])).toThrow(/outside 0\.\.59/);
    expect(() => decoder.step([cache, cache, cache], [1, 2, 3])).toThrow(/at most 2/);
    cache.length = arch.max_seq_len;
    expect(() => decoder.step([cache], [1])).toThrow(/full/);
  });
});
