/**
 * Evaluation: mean next-token loss over the training pipeline's own windows of a token stream
 * (src/data/windows.ts: window i predicts ids[i·T+1 … i·T+T] from ids[i·T … i·T+T−1]), in window
 * order, so the number is deterministic and comparable with the loss training reports. Bits per byte
 * divide the total loss by the bytes those target tokens decode to, which makes models with
 * different vocabularies comparable.
 */
import { TokenWindows } from "../data/windows.ts";
import { crossEntropyForwardBackward } from "../native.ts";
import type { Tokenizer } from "../tokenizer/index.ts";
import type { InferenceEngine } from "./engine.ts";

export interface EvalResult {
  windows: number;
  seqLen: number;
  tokens: number;
  bytes: number;
  meanLoss: number;
  perplexity: number;
  bitsPerByte: number;
}

export function evaluate(
  engine: InferenceEngine, tok: Tokenizer, ids: Uint32Array, seqLen: number,
  opts: { maxWindows?: number; onProgress?: (done: number, total: number) => void } = {},
): EvalResult {
  const V = engine.arch.vocab_size;
  const windows = new TokenWindows(ids, seqLen, 0);
  const total = Math.min(windows.count, opts.maxWindows ?? windows.count);
  const inputs = new Int32Array(seqLen);
  const targets = new Int32Array(seqLen);
  const logits = new Float32Array(seqLen * V);
  const losses = new Float32Array(seqLen);
  let sum = 0;
  let bytes = 0;
  for (let w = 0; w < total; w++) {
    windows.fill([w], inputs, targets);
    engine.prefill(inputs, logits);
    crossEntropyForwardBackward(losses, null, logits, targets, seqLen, V, 1);
    for (let t = 0; t < seqLen; t++) sum += losses[t]!; // seqLen numbers per window: the reduction order is fixed
    bytes += tok.decodeBytes(targets).length;
    opts.onProgress?.(w + 1, total);
  }
  const tokens = total * seqLen;
  const meanLoss = sum / tokens;
  return {
    windows: total,
    seqLen,
    tokens,
    bytes,
    meanLoss,
    perplexity: Math.exp(meanLoss),
    bitsPerByte: bytes > 0 ? sum / Math.LN2 / bytes : NaN,
  };
}
