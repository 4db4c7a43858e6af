import { expect, test } from "bun:test";
import { activationFloats, allocateActivations } from "../../src/model/activations.ts";
import type { Architecture } from "../../src/model/layout.ts";

test("the arena is exactly as large as the tensors carved from it", () => {
  const arch: Architecture = { d_model: 8, num_heads: 2, num_layers: 3, d_ff: 24, vocab_size: 50, max_seq_len: 16, tied_embeddings: true, attention_bias: true };
  const a = allocateActivations(arch, 2, 5);
  const floats = [...a.blocks.flatMap((b) => Object.values(b)), a.encoded, a.lnf, a.lnfMean, a.lnfRstd, a.logits, a.losses, a.dResidual, a.dLn, a.dAtty, a.dQkv, a.dFch];
  const arena = a.encoded.buffer;
  expect(floats.every((t) => t.buffer === arena)).toBe(true);
  expect(floats.reduce((n, t) => n + t.length, 0)).toBe(activationFloats(arch, 2, 5));
  expect(arena.byteLength).toBe(4 * activationFloats(arch, 2, 5));
});
