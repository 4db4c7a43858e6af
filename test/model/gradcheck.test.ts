/** The whole model's backward pass against central finite differences of its forward pass. */
import { expect, test } from "bun:test";
import { type Architecture, tensorSpecs } from "../../src/model/layout.ts";
import { checkEveryTensor } from "./finite_differences.ts";

function tinyArch(over: Partial<Architecture> = {}): Architecture {
  return { d_model: 16, num_heads: 2, num_layers: 2, d_ff: 32, vocab_size: 23, max_seq_len: 8, tied_embeddings: true, attention_bias: true, ...over };
}

for (const [label, arch] of [
  ["GPT-2 (tied head, attention biases)", tinyArch()],
  ["LoopOS's model (untied head, no attention biases)", tinyArch({ tied_embeddings: false, attention_bias: false })],
] as const) {
  test(`every parameter's gradient matches finite differences: ${label}`, () => {
    const rows = checkEveryTensor(arch, 1e-2);
    if (process.env.SHOW) console.table(rows);
    expect(rows.length).toBe(tensorSpecs(arch).length);
    for (const r of rows) {
      const tol = 2e-3 + 2e-2 * Math.abs(r.numeric);
      if (Math.abs(r.analytic - r.numeric) > tol) throw new Error(`${r.name}: analytic ${r.analytic}, numeric ${r.numeric}`);
      expect(Math.abs(r.analytic)).toBeGreaterThan(1e-3); // every tensor really receives a gradient
    }
  });
}
