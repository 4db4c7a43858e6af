/**
 * Named views into a flat parameter (or gradient) buffer, resolved once so the forward and backward
 * passes and the per-token decode loop do no map lookups. The same function gives the parameters'
 * views and the gradients' views, so `w.blocks[l].qkvW` and `g.blocks[l].qkvW` always describe the
 * same tensor. Biases the architecture lacks (LoopOS's attention, every bias of a Llama block) and
 * Llama's absent wpe are null: the matmul kernel then adds nothing, which is what a zero bias would
 * do, without reading one.
 */
import { type Architecture, parameterCount, viewsOf } from "./layout.ts";

export interface BlockTensors {
  ln1w: Float32Array; ln1b: Float32Array | null;
  qkvW: Float32Array; qkvB: Float32Array | null;
  attnProjW: Float32Array; attnProjB: Float32Array | null;
  ln2w: Float32Array; ln2b: Float32Array | null;
  fcW: Float32Array; fcB: Float32Array | null;
  mlpProjW: Float32Array; mlpProjB: Float32Array | null;
}

export interface ModelTensors {
  wte: Float32Array;
  wpe: Float32Array | null;
  blocks: BlockTensors[];
  lnfw: Float32Array;
  lnfb: Float32Array | null;
  /** [V, C]; the very same view as wte when the embeddings are tied. */
  lmHead: Float32Array;
}

export function modelTensors(arch: Architecture, buffer: Float32Array): ModelTensors {
  if (buffer.length !== parameterCount(arch)) {
    throw new Error(`modelTensors: the buffer holds ${buffer.length} floats, the architecture has ${parameterCount(arch)} parameters`);
  }
  const views = viewsOf(buffer, arch);
  const get = (name: string): Float32Array => {
    const t = views.get(name);
    if (!t) throw new Error(`modelTensors: no tensor ${name}`);
    return t;
  };
  const maybe = (name: string): Float32Array | null => views.get(name) ?? null;
  const blocks: BlockTensors[] = [];
  for (let l = 0; l < arch.num_layers; l++) {
    const h = `h.${l}`;
    blocks.push({
      ln1w: get(`${h}.ln_1.weight`), ln1b: maybe(`${h}.ln_1.bias`),
      qkvW: get(`${h}.attn.qkv.weight`), qkvB: maybe(`${h}.attn.qkv.bias`),
      attnProjW: get(`${h}.attn.proj.weight`), attnProjB: maybe(`${h}.attn.proj.bias`),
      ln2w: get(`${h}.ln_2.weight`), ln2b: maybe(`${h}.ln_2.bias`),
      fcW: get(`${h}.mlp.fc.weight`), fcB: maybe(`${h}.mlp.fc.bias`),
      mlpProjW: get(`${h}.mlp.proj.weight`), mlpProjB: maybe(`${h}.mlp.proj.bias`),
    });
  }
  return {
    wte: get("wte"),
    wpe: maybe("wpe"),
    blocks,
    lnfw: get("ln_f.weight"),
    lnfb: maybe("ln_f.bias"),
    lmHead: arch.tied_embeddings ? get("wte") : get("lm_head.weight"),
  };
}
