/** The whole model's backward pass against central finite differences of its forward pass. */
import { expect, test } from "bun:test";
import { GPT } from "../../src/model/gpt.ts";
import { initParameters } from "../../src/model/init.ts";
import { type Architecture, tensorSpecs } from "../../src/model/layout.ts";
import { Xoshiro128 } from "../../src/base/rng.ts";

function tinyArch(over: Partial<Architecture> = {}): Architecture {
  return { d_model: 16, num_heads: 2, num_layers: 2, d_ff: 32, vocab_size: 23, max_seq_len: 8, tied_embeddings: true, attention_bias: true, ...over };
}

/** Directional derivative along d, per tensor: analytic g·d against (L(p+εd) − L(p−εd)) / 2ε. */
function checkEveryTensor(arch: Architecture): { name: string; analytic: number; numeric: number }[] {
  const rng = Xoshiro128.fromSeed(7);
  const params = initParameters(arch, rng);
  // Larger than GPT-2 init so every tensor's gradient is well above float32 rounding.
  for (let i = 0; i < params.length; i++) params[i] = params[i]! * 5 + (rng.nextFloat() - 0.5) * 0.1;
  const model = new GPT(arch, params);
  const B = 2, T = 8;
  model.reserve(B, T);
  const { tokens, targets } = model.inputs;
  for (let i = 0; i < B * T; i++) {
    tokens[i] = rng.below(arch.vocab_size);
    targets[i] = i % 5 === 4 ? -1 : rng.below(arch.vocab_size); // some ignored rows too
  }
  model.zeroGrad();
  model.forward(B, T, true);
  model.backward();
  const grads = model.grads.slice();
  const loss = (): number => {
    const v = model.forward(B, T, true);
    return v;
  };
  const results = [];
  for (const spec of tensorSpecs(arch)) {
    const g = grads.subarray(spec.offset, spec.offset + spec.size);
    let gnorm = 0;
    for (const x of g) gnorm += x * x;
    gnorm = Math.sqrt(gnorm);
    // Half along the gradient, half random: a wrong direction or a wrong size both show.
    const d = new Float64Array(spec.size);
    let rnorm = 0;
    for (let i = 0; i < d.length; i++) { d[i] = rng.normal(); rnorm += d[i]! * d[i]!; }
    rnorm = Math.sqrt(rnorm);
    let analytic = 0;
    for (let i = 0; i < d.length; i++) {
      d[i] = 0.5 * (gnorm > 0 ? g[i]! / gnorm : 0) + 0.5 * d[i]! / rnorm;
      analytic += g[i]! * d[i]!;
    }
    const eps = 1e-2;
    const p = model.params.subarray(spec.offset, spec.offset + spec.size);
    const saved = p.slice();
    for (let i = 0; i < p.length; i++) p[i] = saved[i]! + eps * d[i]!;
    const up = loss();
    for (let i = 0; i < p.length; i++) p[i] = saved[i]! - eps * d[i]!;
    const down = loss();
    p.set(saved);
    results.push({ name: spec.name, analytic, numeric: (up - down) / (2 * eps) });
  }
  return results;
}

for (const [label, arch] of [
  ["GPT-2 (tied head, attention biases)", tinyArch()],
  ["LoopOS's model (untied head, no attention biases)", tinyArch({ tied_embeddings: false, attention_bias: false })],
] as const) {
  test(`every parameter's gradient matches finite differences: ${label}`, () => {
    const rows = checkEveryTensor(arch);
    if (process.env.SHOW) console.table(rows);
    expect(rows.length).toBe(tensorSpecs(arch).length);
    for (const r of rows) {
      const tol = 2e-3 + 2e-2 * Math.abs(r.numeric);
      if (Math.abs(r.analytic - r.numeric) > tol) throw new Error(`${r.name}: analytic ${r.analytic}, numeric ${r.numeric}`);
      expect(Math.abs(r.analytic)).toBeGreaterThan(1e-3); // every tensor really receives a gradient
    }
  });
}
