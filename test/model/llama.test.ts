/** The Llama block type: its layout, its initialisation, and its whole backward pass against
 * central finite differences of its forward pass (as gradcheck.test.ts does for GPT-2). */
import { expect, test } from "bun:test";
import { GPT } from "../../src/model/gpt.ts";
import { initParameters } from "../../src/model/init.ts";
import { type Architecture, parameterCount, tensorSpecs } from "../../src/model/layout.ts";
import { Xoshiro128 } from "../../src/base/rng.ts";
import { checkEveryTensor } from "./finite_differences.ts";

function llamaArch(over: Partial<Architecture> = {}): Architecture {
  return {
    d_model: 16, num_heads: 2, num_layers: 2, d_ff: 24, vocab_size: 23, max_seq_len: 8, tied_embeddings: true,
    attention_bias: false, block: "llama", rope_theta: 10000, norm_eps: 1e-5, ...over,
  };
}

test("layout: GPT-2's names for the same roles, fused gate|up, no biases, no wpe", () => {
  const arch = llamaArch({ num_layers: 1 });
  const specs = tensorSpecs(arch).map((s) => `${s.name} [${s.shape.join(", ")}]${s.decay ? " decay" : ""}`);
  expect(specs).toEqual([
    "wte [23, 16] decay",
    "h.0.ln_1.weight [16]",
    "h.0.attn.qkv.weight [48, 16] decay",
    "h.0.attn.proj.weight [16, 16] decay",
    "h.0.ln_2.weight [16]",
    "h.0.mlp.fc.weight [48, 16] decay",
    "h.0.mlp.proj.weight [16, 24] decay",
    "ln_f.weight [16]",
  ]);
  const untied = tensorSpecs(llamaArch({ num_layers: 1, tied_embeddings: false }));
  expect(untied.at(-1)!.name).toBe("lm_head.weight");
  expect(parameterCount(llamaArch({ num_layers: 1, tied_embeddings: false }))).toBe(parameterCount(arch) + 23 * 16);
});

test("init: norm weights 1, matrices N(0, 0.02), residual projections scaled by 1/√(2L)", () => {
  const arch = llamaArch({ d_model: 64, num_heads: 4, d_ff: 128, num_layers: 4 });
  const params = initParameters(arch, Xoshiro128.fromSeed(1));
  const std = (a: Float32Array) => Math.sqrt(a.reduce((s, x) => s + x * x, 0) / a.length);
  for (const s of tensorSpecs(arch)) {
    const v = params.subarray(s.offset, s.offset + s.size);
    if (s.shape.length === 1) expect(v.every((x) => x === 1)).toBe(true);
    else {
      const want = /\.proj\.weight$/.test(s.name) ? 0.02 / Math.sqrt(8) : 0.02;
      expect(Math.abs(std(v) / want - 1), s.name).toBeLessThan(0.1);
    }
  }
});

for (const [label, arch] of [
  ["tied head", llamaArch()],
  ["untied head, rope_theta 500000, three layers", llamaArch({ tied_embeddings: false, rope_theta: 500000, num_layers: 3 })],
] as const) {
  test(`Llama: every parameter's gradient matches finite differences (${label})`, () => {
    // ε smaller than GPT-2's 1e-2: at these inflated weights the loss bends sharply enough that
    // 1e-2's third-order error alone reaches 6% on h.0.attn.proj (it shrinks as ε², to 0.06% here).
    const rows = checkEveryTensor(arch, 1e-3);
    if (process.env.SHOW) console.table(rows);
    expect(rows.length).toBe(tensorSpecs(arch).length);
    for (const r of rows) {
      const tol = 2e-3 + 2e-2 * Math.abs(r.numeric);
      if (Math.abs(r.analytic - r.numeric) > tol) throw new Error(`${r.name}: analytic ${r.analytic}, numeric ${r.numeric}`);
      expect(Math.abs(r.analytic)).toBeGreaterThan(1e-3);
    }
  });
}

test("Llama: rotary positions make the model see order (a shifted window changes the logits)", () => {
  // Without wpe, only RoPE can tell positions apart: the same token at two positions after a
  // different prefix must give different logits, and a permuted prefix must too.
  const arch = llamaArch();
  const model = new GPT(arch, initParameters(arch, Xoshiro128.fromSeed(2)));
  model.reserve(1, 4);
  const run = (ids: number[]) => {
    model.inputs.tokens.set(ids);
    model.forward(1, 4, false);
    return model.logits.slice(3 * arch.vocab_size, 4 * arch.vocab_size);
  };
  const a = run([1, 2, 3, 4]);
  const b = run([2, 1, 3, 4]);
  expect(a.some((x, i) => x !== b[i])).toBe(true);
});

test("an odd head size is refused for rotary positions", () => {
  expect(() => new GPT(llamaArch({ d_model: 18, num_heads: 2 }))).toThrow(/even head size/);
});

test("the checkpoint's architecture schema: absent block = gpt2 as written, llama's fields required with it", async () => {
  const { architectureSchema } = await import("../../src/checkpoint/schema.ts");
  const gpt2 = { d_model: 16, num_heads: 2, num_layers: 1, d_ff: 24, vocab_size: 23, max_seq_len: 8, tied_embeddings: true, attention_bias: true };
  expect(architectureSchema.parse(gpt2)).toEqual(gpt2); // no key added: old files keep their bytes
  expect(architectureSchema.parse(llamaArch())).toEqual(llamaArch());
  const { rope_theta: _t, ...noTheta } = llamaArch();
  expect(architectureSchema.safeParse(noTheta).success).toBe(false);
  expect(architectureSchema.safeParse({ ...gpt2, rope_theta: 10000 }).success).toBe(false);
  expect(architectureSchema.safeParse(llamaArch({ attention_bias: true })).success).toBe(false);
  expect(architectureSchema.safeParse(llamaArch({ d_model: 18 })).success).toBe(false);
  expect(architectureSchema.safeParse({ ...llamaArch(), block: "gpt3" }).success).toBe(false);
});
