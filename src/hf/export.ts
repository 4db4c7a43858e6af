/**
 * A checkpoint as a folder transformers loads with GPT2LMHeadModel.from_pretrained (a Llama model:
 * LlamaForCausalLM): config.json, model.safetensors (HF names and layouts, written with the checkpoint
 * module's container code) and the tokenizer files. Every file is written atomically.
 */
import { existsSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { atomicWrite, type Chunk } from "../base/files.ts";
import { encodeHeader } from "../checkpoint/index.ts";
import { UserError } from "../base/errors.ts";
import { refuseToReplace } from "../base/overwrite.ts";
import { type Architecture, blockOf, tensorSpecs, viewsOf } from "../model/layout.ts";
import { BpeTokenizer, type Tokenizer } from "../tokenizer/index.ts";
import { hfConfig } from "./config.ts";
import { hfTensors, transpose } from "./names.ts";
import { tokenizerFiles } from "./tokenizer_files.ts";

/** Every file an export may write, in the order it writes them. */
export const HF_FILES = [
  "model.safetensors", "config.json", "generation_config.json",
  "tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json",
] as const;

/** Weight files of other exports: a folder holding one already holds a model. */
const OTHER_WEIGHTS = ["model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json"];

/**
 * Before any slow work: `dir` can take an export. It may be missing or hold unrelated files, but one
 * that already holds a model is only written into with --overwrite.
 */
export function checkHfOut(dir: string, overwrite: boolean): void {
  if (!existsSync(dir)) return;
  if (!statSync(dir).isDirectory()) throw new UserError(`--out ${dir}: exists and is not a folder. Give a folder for the HuggingFace files.`);
  for (const name of [...HF_FILES, ...OTHER_WEIGHTS]) {
    refuseToReplace(join(dir, name), overwrite, {
      what: name === "model.safetensors" || OTHER_WEIGHTS.includes(name) ? "a model" : "a file of an exported model",
      flag: "--out",
      waysOut: ["give another --out folder"],
    });
  }
}

export interface ExportResult {
  files: string[];
  notices: string[];
}

/** The HF state dict of a flat parameter buffer: HF key → [shape, data] (views where no transpose is needed). */
export function hfStateDict(arch: Architecture, params: Float32Array): Map<string, { shape: number[]; data: Float32Array }> {
  const views = viewsOf(params, arch);
  const shapes = new Map(tensorSpecs(arch).map((s) => [s.name, s.shape]));
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const t of hfTensors(arch)) {
    const view = views.get(t.ours);
    if (!view) {
      if (t.zeroIfAbsent === undefined) throw new Error(`hfStateDict: ${t.ours} missing`);
      out.set(t.hf, { shape: [t.zeroIfAbsent], data: new Float32Array(t.zeroIfAbsent) });
      continue;
    }
    const shape = shapes.get(t.ours)!;
    if (t.transposed) {
      const [rows, cols] = shape as [number, number];
      out.set(t.hf, { shape: [cols, rows], data: transpose(view, rows, cols) });
    } else if (t.rows) {
      const [start, count] = t.rows;
      const cols = shape[1]!;
      out.set(t.hf, { shape: [count, cols], data: view.subarray(start * cols, (start + count) * cols) });
    } else {
      out.set(t.hf, { shape, data: view });
    }
  }
  return out;
}

export function exportHf(arch: Architecture, params: Float32Array, tok: Tokenizer | null, outDir: string): ExportResult {
  prepareFolder(outDir);
  const notices: string[] = [];
  const files: string[] = [];
  const write = (name: string, chunks: Chunk | Chunk[]) => {
    atomicWrite(join(outDir, name), chunks);
    files.push(name);
  };

  const state = hfStateDict(arch, params);
  const decls = [...state].map(([name, t]) => ({ name, dtype: "F32", shape: t.shape }));
  // transformers refuses safetensors files whose metadata lacks format "pt".
  const header = encodeHeader({ format: "pt" }, decls);
  write("model.safetensors", [header.bytes, ...[...state.values()].map((t) => t.data)]);
  if (!arch.attention_bias && blockOf(arch) === "gpt2") notices.push("This model has no attention biases: GPT-2's c_attn/c_proj biases are exported as zeros.");

  const eot = tok?.endOfTextId ?? null;
  write("config.json", JSON.stringify(hfConfig(arch, eot), null, 2) + "\n");
  write("generation_config.json", JSON.stringify({ bos_token_id: eot, eos_token_id: eot }, null, 2) + "\n");
  if (tok instanceof BpeTokenizer) {
    for (const f of tokenizerFiles(tok, arch.max_seq_len)) write(f.name, f.text);
  } else if (tok) {
    notices.push(`The ${tok.type} vocabulary has no HuggingFace equivalent: the folder holds the model only, no tokenizer files.`);
  }
  return { files, notices };
}

function prepareFolder(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw new UserError(`--out ${dir}: cannot create the folder (${(err as Error).message}).`);
  }
  if (!statSync(dir).isDirectory()) throw new UserError(`--out ${dir}: exists and is not a folder. Give a folder for the HuggingFace files.`);
}
