/**
 * GPT-2 initialisation, driven by the run's seeded RNG: matrices N(0, 0.02), position embeddings
 * N(0, 0.01), the two projections that write into the residual stream scaled by 1/√(2·num_layers)
 * (so the stream's variance does not grow with depth), biases 0, LayerNorm weights 1.
 */
import type { Xoshiro128 } from "../base/rng.ts";
import { type Architecture, parameterCount, tensorSpecs } from "./layout.ts";

export function initParameters(arch: Architecture, rng: Xoshiro128): Float32Array {
  const params = new Float32Array(parameterCount(arch));
  const residualStd = 0.02 / Math.sqrt(2 * arch.num_layers);
  for (const spec of tensorSpecs(arch)) {
    const view = params.subarray(spec.offset, spec.offset + spec.size);
    if (/\.ln_\d\.weight$|^ln_f\.weight$/.test(spec.name)) view.fill(1);
    else if (spec.name.endsWith(".bias")) view.fill(0);
    else {
      const std = spec.name === "wpe" ? 0.01 : /\.(attn|mlp)\.proj\.weight$/.test(spec.name) ? residualStd : 0.02;
      // Runs once per fresh run: a plain loop is fine here (a few million draws).
      for (let i = 0; i < view.length; i++) view[i] = rng.normal() * std;
    }
  }
  return params;
}
