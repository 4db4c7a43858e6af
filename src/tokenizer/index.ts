/** The tokenizer module: what the trainer and the CLI use. */
import { existsSync } from "node:fs";
import { UserError } from "../base/errors.ts";
import { BpeTokenizer } from "./bpe.ts";
import { atomicWrite, readFileLimited } from "./files.ts";
import { importHuggingFace, exportHuggingFace } from "./hf.ts";
import { looksLikeLoopOSVocab, LoopOSWordTokenizer, parseLoopOSVocab } from "./loopos_word.ts";
import { trainTokenizer, type TrainOptions } from "./train.ts";
import type { Tokenizer } from "./types.ts";
import { formatVocabFile, MAGIC, parseVocabFile } from "./vocab_file.ts";

export type { Tokenizer, TokenizerType } from "./types.ts";
export { BpeTokenizer, END_OF_TEXT } from "./bpe.ts";
export { LoopOSWordTokenizer } from "./loopos_word.ts";
export { listDataFiles } from "./files.ts";
export { trainTokenizer, type TrainOptions } from "./train.ts";
export { encodeFile, encodeFiles } from "./encode_file.ts";
export { exportHuggingFace, importHuggingFace } from "./hf.ts";

/** Vocab files larger than this are refused before reading (a 16M-token vocabulary is far smaller). */
const MAX_VOCAB_FILE = 1 << 30;

/** Load a .vocab file: ours (byte-level BPE) or LoopOS's word-level format, detected by content. */
export function loadTokenizer(path: string): Tokenizer {
  const bytes = readFileLimited(path, MAX_VOCAB_FILE, "vocab file");
  // Some editors save a UTF-8 byte order mark first; the format starts after it.
  const start = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  const head = new TextDecoder().decode(bytes.subarray(start, start + MAGIC.length));
  if (head === MAGIC) {
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch {
      throw new UserError(`${path}:${firstBadUtf8Line(bytes)}: the line is not valid UTF-8. The file is damaged; rebuild the vocabulary or restore it from a copy.`);
    }
    return parseVocabFile(text, path);
  }
  if (path.endsWith(".json") || bytes[start] === 0x7b) {
    return importHuggingFace(new TextDecoder().decode(bytes), path);
  }
  if (looksLikeLoopOSVocab(bytes)) return parseLoopOSVocab(bytes, path);
  throw new UserError(`${path}:1: not a vocabulary file (expected "${MAGIC} 1", LoopOS's "# Tokenizer Vocabulary" format, or a tokenizer.json).`);
}

/** Write a tokenizer as a .vocab file (atomically). Only our BPE format is written. */
export function saveTokenizer(tok: Tokenizer, path: string): void {
  if (!(tok instanceof BpeTokenizer)) {
    throw new UserError(`cannot save a ${tok.type} tokenizer to ${path}: only byte-level BPE vocabularies are written (keep LoopOS's file as it is).`);
  }
  atomicWrite(path, formatVocabFile(tok));
}

/** LoopOS's flow: load `vocabPath` if it exists, else train from `data` and save it there. */
export function loadOrTrainTokenizer(vocabPath: string, train: TrainOptions): Tokenizer {
  if (existsSync(vocabPath)) return loadTokenizer(vocabPath);
  const tok = trainTokenizer(train);
  saveTokenizer(tok, vocabPath);
  train.log?.(`saved vocabulary to ${vocabPath}`);
  return tok;
}

export function saveHuggingFace(tok: Tokenizer, path: string): void {
  if (!(tok instanceof BpeTokenizer)) throw new UserError(`cannot export a ${tok.type} tokenizer to ${path}: only byte-level BPE has a HuggingFace equivalent here.`);
  atomicWrite(path, exportHuggingFace(tok));
}

export function isLoopOSTokenizer(tok: Tokenizer): tok is LoopOSWordTokenizer {
  return tok instanceof LoopOSWordTokenizer;
}

function firstBadUtf8Line(bytes: Uint8Array): number {
  const dec = new TextDecoder("utf-8", { fatal: true });
  let line = 1, start = 0;
  for (let i = 0; i <= bytes.length; i++) {
    if (i === bytes.length || bytes[i] === 0x0a) {
      try {
        dec.decode(bytes.subarray(start, i));
      } catch {
        return line;
      }
      line++;
      start = i + 1;
    }
  }
  return line;
}
