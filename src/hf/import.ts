/**
 * A HuggingFace GPT-2 or Llama folder (config.json, model.safetensors or shards, tokenizer files) into
 * our architecture and flat parameter buffer. Every tensor the model has must be present with the
 * shape the config implies, and nothing else may be (buffers older files saved excepted), so a model
 * that is not plain GPT-2 or Llama is refused instead of silently mis-run.
 *
 * Two choices are made from the tensors: GPT-2 attention biases that are all exactly zero (our exports
 * of bias-free models) are dropped, which is the same function and gives back the original layout; and
 * a tied config means the embedding is the head, whatever lm_head.weight says (as transformers does).
 */
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../base/errors.ts";
import { count } from "../base/format.ts";
import { type Architecture, parameterCount, tensorSpecs, viewsOf } from "../model/layout.ts";
import type { BpeTokenizer } from "../tokenizer/index.ts";
import { parseHfConfig } from "./config.ts";
import { readText } from "../base/files.ts";
import { canonicalKey, embeddingKey, type HfTensor, hfTensors, isBufferKey, transpose } from "./names.ts";
import { type LazyTensor, readSafetensorsFile, weightFiles } from "./read_tensors.ts";
import { readTokenizerFiles } from "./tokenizer_files.ts";

export interface ImportResult {
  arch: Architecture;
  params: Float32Array;
  tokenizer: BpeTokenizer | null;
  notices: string[];
}

export function importHf(dir: string): ImportResult {
  const configPath = join(dir, "config.json");
  if (!existsSync(dir)) throw new UserError(`Model folder not found: ${dir}. Give a folder saved by save_pretrained or by train_vocab export.`);
  if (!statSync(dir).isDirectory()) throw new UserError(`${dir} is a file, not a folder. Give the folder saved by save_pretrained or by train_vocab export.`);
  if (!existsSync(configPath)) throw new UserError(`${dir}: no config.json. Give a folder saved by save_pretrained or by train_vocab export.`);
  const configText = readText(configPath, "the model's config");
  let configJson: unknown;
  try {
    configJson = JSON.parse(configText);
  } catch (err) {
    throw new UserError(`${configPath}: not valid JSON (${(err as Error).message}).`);
  }
  const { arch: partial, llama } = parseHfConfig(configJson, configPath);
  const notices: string[] = [];
  const model = llama ? "LlamaForCausalLM" : "GPT2LMHeadModel";
  const family = llama ? "Llama" : "GPT-2";
  // The block fields only for Llama, after attention_bias: the key order a trained checkpoint has.
  const shape: Architecture = llama ? { ...partial, attention_bias: false, ...llama } : { ...partial, attention_bias: true };

  const tensors = new Map<string, LazyTensor>();
  for (const file of weightFiles(dir)) {
    for (const t of readSafetensorsFile(file)) {
      if (isBufferKey(t.key, shape)) continue;
      const key = canonicalKey(t.key, shape);
      if (tensors.has(key)) throw new UserError(`${dir}: tensor ${key} appears twice in the weight files.`);
      tensors.set(key, t);
    }
  }
  const biasesZero = !llama && allAttentionBiasesZero(tensors, partial.num_layers);
  const arch: Architecture = llama ? shape : { ...partial, attention_bias: !biasesZero };
  if (biasesZero) notices.push("Every attention bias is zero: imported without attention biases (the same function).");
  if (arch.tied_embeddings && tensors.has("lm_head.weight")) {
    const head = tensors.get("lm_head.weight")!.read();
    const wte = tensors.get(embeddingKey(arch))?.read();
    if (wte && !sameValues(head, wte)) notices.push(`lm_head.weight differs from ${llama ? "embed_tokens" : "wte"} but the config ties them: the embedding is used, as transformers does.`);
    tensors.delete("lm_head.weight");
  }

  // Every tensor the config implies must be in the weight files with its shape before anything is
  // allocated: the files' sizes (checked by the container reader) then bound the parameter buffer,
  // whatever sizes a damaged or hostile config.json declares.
  const shapes = new Map(tensorSpecs(arch).map((s) => [s.name, s.shape]));
  const placed: { spec: HfTensor; t: LazyTensor; expected: number[] }[] = [];
  for (const spec of hfTensors(arch)) {
    const t = tensors.get(spec.hf);
    tensors.delete(spec.hf);
    const ours = shapes.get(spec.ours);
    if (!ours) continue; // a zero bias we dropped
    if (!t) throw new UserError(`${dir}: tensor ${spec.hf} is missing. The folder is not a complete ${model}${spec.hf === "lm_head.weight" ? " (tie_word_embeddings is false but there is no lm_head.weight)" : ""}.`);
    const expected = spec.transposed ? [ours[1]!, ours[0]!] : spec.rows ? [spec.rows[1], ours[1]!] : ours;
    if (t.shape.join() !== expected.join()) {
      throw new UserError(`${dir}: tensor ${spec.hf} has shape [${t.shape}] but config.json implies [${expected}]. The config and the weights do not belong together.`);
    }
    placed.push({ spec, t, expected });
  }
  const params = new Float32Array(parameterCount(arch));
  const views = viewsOf(params, arch);
  for (const { spec, t, expected } of placed) {
    const view = views.get(spec.ours)!;
    const data = t.read();
    if (spec.transposed) transpose(data, expected[0]!, expected[1]!, view);
    else if (spec.rows) view.set(data, spec.rows[0] * expected[1]!);
    else view.set(data);
  }
  for (let l = 0; l < arch.num_layers && !llama; l++) {
    tensors.delete(`transformer.h.${l}.attn.c_attn.bias`);
    tensors.delete(`transformer.h.${l}.attn.c_proj.bias`);
  }
  if (tensors.size > 0) {
    const keys = [...tensors.keys()];
    const extra = keys.slice(0, 3).join(", ");
    const why = llama && keys.some((k) => k.endsWith(".bias")) ? " A Llama block here has no biases." : "";
    throw new UserError(`${dir}: the weights hold tensors ${family} does not have (${extra}${tensors.size > 3 ? ", …" : ""}).${why} Only plain ${family}-shaped models can be imported.`);
  }
  const tokenizer = readTokenizerFiles(dir);
  if (tokenizer && tokenizer.vocabSize > arch.vocab_size) {
    throw new UserError(`${dir}: the tokenizer has ${count(tokenizer.vocabSize, "token")} but the model only ${count(arch.vocab_size, "row")}. They do not belong together.`);
  }
  return { arch, params, tokenizer, notices };
}

function allAttentionBiasesZero(tensors: Map<string, LazyTensor>, layers: number): boolean {
  for (let l = 0; l < layers; l++) {
    for (const name of ["c_attn", "c_proj"]) {
      const t = tensors.get(`transformer.h.${l}.attn.${name}.bias`);
      if (!t) return false; // missing: reported as such when the tensors are placed
      if (t.read().some((x) => x !== 0)) return false;
    }
  }
  return true;
}

function sameValues(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
