/** Bulk encoding of files: read in large pieces cut where the pre-tokenizer always cuts, encode in C. */
import { BpeTokenizer } from "./bpe.ts";
import { Progress } from "./progress.ts";
import type { Tokenizer } from "./types.ts";
import { readFileLimited, readInSafePieces } from "./files.ts";

const CHUNK = 16 << 20;

/** Ids of a whole file (one document: no end-of-text added). */
export function encodeFile(tok: Tokenizer, path: string): Uint32Array {
  if (!(tok instanceof BpeTokenizer)) return tok.encode(readFileLimited(path, 2 ** 31 - 1, "data file"));
  const parts: Uint32Array[] = [];
  const progress = new Progress();
  const ids = new Uint32Array(CHUNK);
  try {
    readInSafePieces(path, new Uint8Array(CHUNK), (piece, read) => {
      parts.push(tok.encodeInto(piece, ids).slice());
      progress.update(`encoding ${path}: ${(read / 1e6).toFixed(1)} MB`);
    });
  } finally {
    progress.done();
  }
  return concat(parts);
}

/** Ids of several files, with the end-of-text id between documents when the tokenizer has one. */
export function encodeFiles(tok: Tokenizer, paths: string[]): Uint32Array {
  const parts: Uint32Array[] = [];
  paths.forEach((p, i) => {
    if (i > 0 && tok.endOfTextId !== null) parts.push(Uint32Array.of(tok.endOfTextId));
    parts.push(encodeFile(tok, p));
  });
  return concat(parts);
}

export function concat(parts: Uint32Array[]): Uint32Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint32Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
