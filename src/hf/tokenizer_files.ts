/**
 * The tokenizer files of a HuggingFace GPT-2 folder. tokenizer.json comes from the tokenizer module;
 * vocab.json and merges.txt (what GPT2Tokenizer, the slow Python one, reads) are the same vocabulary
 * and merges in the older two-file form; tokenizer_config.json and special_tokens_map.json name
 * <|endoftext|> as GPT-2 does, so AutoTokenizer finds everything.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../base/errors.ts";
import { readText } from "../base/files.ts";
import { END_OF_TEXT, exportHuggingFace, importHuggingFace, type BpeTokenizer } from "../tokenizer/index.ts";

export interface TokenizerFile {
  name: string;
  text: string;
}

interface TokenizerJson {
  added_tokens: { id: number; content: string }[];
  model: { vocab: Record<string, number>; merges: [string, string][] | string[] };
}

export function tokenizerFiles(tok: BpeTokenizer, contextSize: number): TokenizerFile[] {
  const tokenizerJson = exportHuggingFace(tok);
  const parsed = JSON.parse(tokenizerJson) as TokenizerJson;
  const vocab: Record<string, number> = { ...parsed.model.vocab };
  for (const a of parsed.added_tokens) vocab[a.content] = a.id;
  const merges = parsed.model.merges.map((m) => (Array.isArray(m) ? m.join(" ") : m));
  const eot = tok.endOfTextId === null ? null : END_OF_TEXT;
  const specials = eot ? { bos_token: eot, eos_token: eot, unk_token: eot } : {};
  const config = {
    tokenizer_class: "GPT2Tokenizer",
    model_max_length: contextSize,
    add_prefix_space: false,
    add_bos_token: false,
    clean_up_tokenization_spaces: false,
    ...specials,
  };
  const json = (v: unknown) => JSON.stringify(v, null, 2) + "\n";
  return [
    { name: "tokenizer.json", text: tokenizerJson },
    { name: "vocab.json", text: JSON.stringify(vocab) + "\n" },
    { name: "merges.txt", text: `#version: 0.2\n${merges.join("\n")}${merges.length ? "\n" : ""}` },
    { name: "tokenizer_config.json", text: json(config) },
    { name: "special_tokens_map.json", text: json(specials) },
  ];
}

/** Whether readTokenizerFiles finds a tokenizer in the folder (without reading it). */
export function hasTokenizerFiles(dir: string): boolean {
  return existsSync(join(dir, "tokenizer.json")) || (existsSync(join(dir, "vocab.json")) && existsSync(join(dir, "merges.txt")));
}

/** The folder's tokenizer, or null when it has none. tokenizer.json is preferred; vocab.json +
 * merges.txt are converted through the same importer (so the same checks apply). */
export function readTokenizerFiles(dir: string): BpeTokenizer | null {
  const tokenizerJson = join(dir, "tokenizer.json");
  if (existsSync(tokenizerJson)) return importHuggingFace(readText(tokenizerJson, "the tokenizer"), tokenizerJson);
  const vocabPath = join(dir, "vocab.json");
  const mergesPath = join(dir, "merges.txt");
  if (!existsSync(vocabPath) || !existsSync(mergesPath)) return null;
  const vocabText = readText(vocabPath, "the tokenizer's vocabulary");
  let vocab: Record<string, number>;
  try {
    vocab = JSON.parse(vocabText) as Record<string, number>;
  } catch (err) {
    throw new UserError(`${vocabPath}: not valid JSON (${(err as Error).message}). Give the vocab.json saved with the model.`);
  }
  const merges = readText(mergesPath, "the tokenizer's merges")
    .split("\n")
    .filter((line) => line.length > 0 && !line.startsWith("#version"));
  // Special tokens are plain entries of vocab.json; they are the ones spelled like <|…|>.
  const added = Object.entries(vocab)
    .filter(([content]) => /^<\|.*\|>$/.test(content))
    .map(([content, id]) => ({ id, content, special: true }));
  const plain = Object.fromEntries(Object.entries(vocab).filter(([content]) => !/^<\|.*\|>$/.test(content)));
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
  const synthetic = { added_tokens: added, normalizer: null, pre_tokenizer: byteLevel, model: { type: "BPE", vocab: plain, merges } };
  return importHuggingFace(JSON.stringify(synthetic), `${vocabPath} + merges.txt`);
}
