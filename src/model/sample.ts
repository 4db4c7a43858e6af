/**
 * A small sampler without a KV cache: each new token runs the whole (recent) context through the
 * training model's forward pass. Quadratic in the context, which is fine for the short continuations
 * the demo prints; `generate` has the cached, fast path.
 */
import type { Xoshiro128 } from "../base/rng.ts";
import { GPT } from "./gpt.ts";

export interface SampleOptions {
  maxTokens: number;
  /** 0 = greedy (always the most likely token). */
  temperature: number;
  /** Sample among the k most likely tokens (0 = all). */
  topK: number;
  /** Stop early on this id (e.g. end-of-text), if not null. */
  stopId: number | null;
}

export function sampleContinuation(model: GPT, prompt: ArrayLike<number>, opts: SampleOptions, rng: Xoshiro128): number[] {
  const { vocab_size: V, max_seq_len: P } = model.arch;
  if (prompt.length === 0) throw new Error("sampleContinuation: the prompt needs at least one token");
  model.reserve(1, P);
  const context = Array.from(prompt);
  const out: number[] = [];
  for (let n = 0; n < opts.maxTokens; n++) {
    const window = context.slice(-P);
    const T = window.length;
    model.inputs.tokens.set(window);
    model.forward(1, T, false);
    const row = model.logits.subarray((T - 1) * V, T * V);
    const id = opts.temperature === 0 ? argmax(row) : drawFrom(row, opts.temperature, opts.topK, rng);
    if (opts.stopId !== null && id === opts.stopId) break;
    out.push(id);
    context.push(id);
  }
  return out;
}

function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i]! > row[best]!) best = i;
  return best;
}

function drawFrom(row: Float32Array, temperature: number, topK: number, rng: Xoshiro128): number {
  let ids = Array.from(row.keys());
  if (topK > 0 && topK < ids.length) ids = ids.sort((a, b) => row[b]! - row[a]!).slice(0, topK);
  const max = Math.max(...ids.map((i) => row[i]!));
  const weights = ids.map((i) => Math.exp((row[i]! - max) / temperature));
  let r = rng.nextFloat() * weights.reduce((a, b) => a + b, 0);
  for (let k = 0; k < ids.length; k++) {
    r -= weights[k]!;
    if (r <= 0) return ids[k]!;
  }
  return ids[ids.length - 1]!;
}
