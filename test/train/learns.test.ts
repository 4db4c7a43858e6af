/** The model, optimizer and loop learn: on a repeating pattern the loss falls far below ln(V). */
import { expect, test } from "bun:test";
import { GPT } from "../../src/model/gpt.ts";
import { initParameters } from "../../src/model/init.ts";
import type { Architecture } from "../../src/model/layout.ts";
import { setThreads } from "../../src/native.ts";
import { AdamW } from "../../src/train/optimizer.ts";
import { Xoshiro128 } from "../../src/base/rng.ts";

test("loss goes down on a small learnable sequence (AdamW, clipping, full backward)", () => {
  setThreads(1);
  const arch: Architecture = { d_model: 32, num_heads: 2, num_layers: 2, d_ff: 64, vocab_size: 20, max_seq_len: 16, tied_embeddings: true, attention_bias: true };
  const model = new GPT(arch, initParameters(arch, Xoshiro128.fromSeed(3)));
  const opt = new AdamW(arch);
  const B = 4, T = 16;
  model.reserve(B, T);
  const { tokens, targets } = model.inputs;
  // a cycle of 7 tokens, each row starting elsewhere: next token is always predictable from context
  const cycle = [3, 1, 4, 1, 5, 9, 2];
  const losses: number[] = [];
  for (let step = 1; step <= 150; step++) {
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) {
        tokens[b * T + t] = cycle[(b + step + t) % 7]!;
        targets[b * T + t] = cycle[(b + step + t + 1) % 7]!;
      }
    }
    model.zeroGrad();
    losses.push(model.forward(B, T, true));
    model.backward();
    opt.step(model.params, model.grads, AdamW.gradNorm(model.grads), 3e-3, step, { beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.01, grad_clip: 1 });
  }
  expect(losses[0]!).toBeGreaterThan(Math.log(20) * 0.8);
  expect(losses[losses.length - 1]!).toBeLessThan(0.3);
});
