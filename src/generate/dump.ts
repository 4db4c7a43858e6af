/**
 * Reference dumps: the full token sequence and the logits each generated token was sampled from, in a
 * small safetensors file any language reads with a JSON parser (scripts/verify_hf_export.py compares
 * them with an independent PyTorch forward of the same tokens).
 *   tokens  I32 [n]        prompt followed by the generated tokens
 *   logits  F32 [s, V]     row i: logits at position first_position + i
 */
import { atomicWrite, encodeHeader } from "../checkpoint/index.ts";

export function writeLogitsDump(path: string, tokens: number[], firstPosition: number, logits: Float32Array[], vocab: number): void {
  const tokenData = Int32Array.from(tokens);
  const rows = new Float32Array(logits.length * vocab);
  logits.forEach((row, i) => rows.set(row.subarray(0, vocab), i * vocab));
  const header = encodeHeader(
    { format: "train-vocab-logits", first_position: String(firstPosition) },
    [
      { name: "tokens", dtype: "I32", shape: [tokenData.length] },
      { name: "logits", dtype: "F32", shape: [logits.length, vocab] },
    ],
  );
  atomicWrite(path, [header.bytes, tokenData, rows]);
}
