/**
 * The parameter views one forward pass needs, resolved once by name so the per-token loop does no
 * map lookups. Biases the architecture lacks (the seed's attention) are null: the matmul kernel then
 * adds nothing, which is what a zero bias would do, without reading one.
 */
import { type Architecture, parameterCount, viewsOf } from "../model/layout.ts";

export interface LayerWeights {
  ln1w: Float32Array; ln1b: Float32Array;
  qkvW: Float32Array; qkvB: Float32Array | null;
  projW: Float32Array; projB: Float32Array | null;
  ln2w: Float32Array; ln2b: Float32Array;
  fcW: Float32Array; fcB: Float32Array;
  mlpProjW: Float32Array; mlpProjB: Float32Array;
}

export interface ModelWeights {
  arch: Architecture;
  wte: Float32Array;
  wpe: Float32Array;
  layers: LayerWeights[];
  lnfw: Float32Array;
  lnfb: Float32Array;
  /** [V, C]: wte itself when the embeddings are tied. */
  lmHead: Float32Array;
}

export function resolveWeights(arch: Architecture, params: Float32Array): ModelWeights {
  const expected = parameterCount(arch);
  if (params.length !== expected) {
    throw new Error(`resolveWeights: ${params.length} parameters, the architecture has ${expected}`);
  }
  const v = viewsOf(params, arch);
  const get = (name: string): Float32Array => {
    const t = v.get(name);
    if (!t) throw new Error(`resolveWeights: no tensor ${name}`);
    return t;
  };
  const opt = (name: string): Float32Array | null => v.get(name) ?? null;
  const layers: LayerWeights[] = [];
  for (let l = 0; l < arch.num_layers; l++) {
    const h = `h.${l}`;
    layers.push({
      ln1w: get(`${h}.ln_1.weight`), ln1b: get(`${h}.ln_1.bias`),
      qkvW: get(`${h}.attn.qkv.weight`), qkvB: opt(`${h}.attn.qkv.bias`),
      projW: get(`${h}.attn.proj.weight`), projB: opt(`${h}.attn.proj.bias`),
      ln2w: get(`${h}.ln_2.weight`), ln2b: get(`${h}.ln_2.bias`),
      fcW: get(`${h}.mlp.fc.weight`), fcB: get(`${h}.mlp.fc.bias`),
      mlpProjW: get(`${h}.mlp.proj.weight`), mlpProjB: get(`${h}.mlp.proj.bias`),
    });
  }
  return {
    arch,
    wte: get("wte"),
    wpe: get("wpe"),
    layers,
    lnfw: get("ln_f.weight"),
    lnfb: get("ln_f.bias"),
    lmHead: arch.tied_embeddings ? get("wte") : get("lm_head.weight"),
  };
}
