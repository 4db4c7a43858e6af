/**
 * Whole training steps (forward, backward, gradient norm, AdamW): the same bytes for any thread
 * count, including more threads than cores (where the pool's callers run the parts of workers that
 * have not started); bf16 matmuls close to fp32 and exactly fp32 where BF16 is unavailable; and the
 * step profile accounting for every native call.
 */
import { afterAll, expect, test } from "bun:test";
import * as native from "../../src/native.ts";
import { GPT, type Precision } from "../../src/model/gpt.ts";
import { initParameters } from "../../src/model/init.ts";
import type { Architecture } from "../../src/model/layout.ts";
import { StepProfile } from "../../src/model/profile.ts";
import { AdamW } from "../../src/train/optimizer.ts";
import { Xoshiro128 } from "../../src/base/rng.ts";

const threadsBefore = native.getThreads();
const isaBefore = native.isaCurrent();
afterAll(() => {
  native.setThreads(threadsBefore);
  native.setIsa(isaBefore);
});

const arch: Architecture = {
  d_model: 64, num_heads: 4, num_layers: 2, d_ff: 128, vocab_size: 97, max_seq_len: 40,
  tied_embeddings: true, attention_bias: true,
};
const B = 3, T = 40;

/** Trains `steps` steps on a fixed learnable stream; returns the losses and the final parameters. */
function train(steps: number, precision: Precision, profile: StepProfile | null = null) {
  const model = new GPT(arch, initParameters(arch, Xoshiro128.fromSeed(5)), { precision });
  model.profile = profile;
  const opt = new AdamW(arch);
  model.reserve(B, T);
  const { tokens, targets } = model.inputs;
  const rng = Xoshiro128.fromSeed(9);
  const hyper = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.1, grad_clip: 1.0 };
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    // Next token = (7·previous + 3) mod V most of the time: quickly learnable.
    for (let b = 0; b < B; b++) {
      let t = rng.below(arch.vocab_size);
      for (let i = 0; i <= T; i++) {
        const next = rng.below(8) === 0 ? rng.below(arch.vocab_size) : (7 * t + 3) % arch.vocab_size;
        if (i < T) tokens[b * T + i] = t;
        if (i > 0) targets[b * T + i - 1] = t;
        t = next;
      }
    }
    model.zeroGrad();
    losses.push(model.forward(B, T, true));
    model.backward();
    const norm = AdamW.gradNorm(model.grads);
    opt.step(model.params, model.grads, norm, 3e-3, s + 1, hyper);
  }
  return { losses, params: model.params };
}

test("training steps give the same bytes with 1, 2, 3 and 5 threads", () => {
  native.setIsa(native.isaBest());
  native.setThreads(1);
  const one = train(4, "fp32");
  for (const n of [2, 3, 5]) {
    native.setThreads(n);
    const other = train(4, "fp32");
    expect(other.losses).toEqual(one.losses);
    expect(Buffer.from(other.params.buffer).equals(Buffer.from(one.params.buffer))).toBe(true);
  }
});

test("bf16 matmuls train to within 1% of fp32's loss, and bf16 is exactly fp32 where the CPU level has no BF16", () => {
  native.setThreads(2);
  native.setIsa(native.isaBest());
  const fp32 = train(30, "fp32");
  const bf16 = train(30, "bf16");
  const last = (x: number[]) => x[x.length - 1]!;
  expect(last(fp32.losses)).toBeLessThan(fp32.losses[0]! * 0.8); // it learned something
  expect(Math.abs(last(bf16.losses) - last(fp32.losses)) / last(fp32.losses)).toBeLessThan(0.01);
  if (native.hasBf16()) expect(bf16.losses).not.toEqual(fp32.losses); // bf16 really ran

  // AVX2 has no BF16 dot products: the bf16 wrappers fall back to the fp32 kernels.
  if (native.supportedIsas().includes("avx2")) {
    native.setIsa("avx2");
    const a = train(3, "fp32"), b = train(3, "bf16");
    expect(b.losses).toEqual(a.losses);
    native.setIsa(native.isaBest());
  }
});

test("the step profile times every kernel call of forward and backward under its label", () => {
  native.setThreads(2);
  const prof = new StepProfile();
  const plain = train(2, "fp32");
  const profiled = train(2, "fp32", prof);
  expect(profiled.losses).toEqual(plain.losses); // timing never changes the math
  const calls = Object.fromEntries(prof.calls);
  // Per step: per layer 2 layernorms, 4 matmuls, attention, 2 residuals, GELU, each forward and
  // (but the residuals) backward; plus the final layernorm, the LM head, cross-entropy, the encoder.
  expect(calls["attention fwd"]).toBe(2 * arch.num_layers);
  expect(calls["attention bwd"]).toBe(2 * arch.num_layers);
  expect(calls["layernorm fwd"]).toBe(2); // the first; the others are fused with the residual adds
  expect(calls["residual+layernorm fwd"]).toBe(2 * 2 * arch.num_layers);
  expect(calls["layernorm bwd"]).toBe(2 * (2 * arch.num_layers + 1));
  expect(calls["lm head fwd"]).toBe(2);
  expect(calls["lm head bwd"]).toBe(2);
  expect(calls["cross-entropy fwd+bwd"]).toBe(2);
  expect(calls["encoder fwd"]).toBe(2);
  expect(calls["encoder bwd"]).toBe(2);
  for (const v of prof.ms.values()) expect(v).toBeGreaterThanOrEqual(0);
  expect(prof.total()).toBeGreaterThan(0);
});
