/** Bulk encoding of files: read in large pieces cut where the pre-tokenizer always cuts, encode in C. */
import { closeSync, openSync, readSync } from "node:fs";
import { UserError } from "../base/errors.ts";
import { BpeTokenizer } from "./bpe.ts";
import { safeCut } from "./native_bpe.ts";
import { Progress } from "./progress.ts";
import type { Tokenizer } from "./types.ts";
import { readFileLimited } from "./files.ts";

const CHUNK = 16 << 20;

/** Ids of a whole file (one document: no end-of-text added). */
export function encodeFile(tok: Tokenizer, path: string): Uint32Array {
  if (!(tok instanceof BpeTokenizer)) return tok.encode(readFileLimited(path, 2 ** 31 - 1, "data file"));
  const parts: Uint32Array[] = [];
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (err) {
    throw new UserError(`${path}: cannot read it (${(err as Error).message}).`);
  }
  const progress = new Progress();
  try {
    const buf = new Uint8Array(CHUNK);
    const ids = new Uint32Array(CHUNK);
    let filled = 0, read = 0;
    for (;;) {
      const n = readSync(fd, buf, filled, buf.length - filled, null);
      filled += n;
      read += n;
      if (n === 0 || filled === buf.length) {
        let cut = n === 0 ? filled : safeCut(buf.subarray(0, filled));
        if (cut === 0) cut = filled;
        parts.push(tok.encodeInto(buf.subarray(0, cut), ids).slice());
        buf.copyWithin(0, cut, filled);
        filled -= cut;
        progress.update(`encoding ${path}: ${(read / 1e6).toFixed(1)} MB`);
      }
      if (n === 0) break;
    }
  } finally {
    progress.done();
    closeSync(fd);
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
