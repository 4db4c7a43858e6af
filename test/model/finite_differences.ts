/** The whole model's backward pass against central finite differences of its forward pass, one
 * direction per tensor (gradcheck.test.ts for GPT-2 blocks, llama.test.ts for Llama's). */
import { GPT } from "../../src/model/gpt.ts";
import { initParameters } from "../../src/model/init.ts";
import { type Architecture, tensorSpecs } from "../../src/model/layout.ts";
import { Xoshiro128 } from "../../src/base/rng.ts";

/** Directional derivative along d, per tensor: analytic g·d against (L(p+εd) − L(p−εd)) / 2ε. */
export function checkEveryTensor(arch: Architecture, eps: number): { name: string; analytic: number; numeric: number }[] {
  const rng = Xoshiro128.fromSeed(7);
  const params = initParameters(arch, rng);
  // Larger than the init so every tensor's gradient is well above float32 rounding.
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
    const p = model.params.subarray(spec.offset, spec.offset + spec.size);
    const saved = p.slice();
    for (let i = 0; i < p.length; i++) p[i] = saved[i]! + eps * d[i]!;
    const up = model.forward(B, T, true);
    for (let i = 0; i < p.length; i++) p[i] = saved[i]! - eps * d[i]!;
    const down = model.forward(B, T, true);
    p.set(saved);
    results.push({ name: spec.name, analytic, numeric: (up - down) / (2 * eps) });
  }
  return results;
}
