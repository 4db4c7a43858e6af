/** Bulk encoding of files: read in large pieces cut where the pre-tokenizer always cuts, encode in C. */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { UserError } from "../base/errors.ts";
import { whyUnreadable } from "../base/files.ts";
import { BpeTokenizer } from "./bpe.ts";
import { readFileLimited } from "./files.ts";
import { safeCut } from "./native_bpe.ts";
import { Progress } from "./progress.ts";
import type { Tokenizer } from "./types.ts";

/** Bytes read per piece (the content hash's piece, src/data/fingerprint.ts). Each piece is encoded by
 * all the library's threads at once (csrc/bpe.c). */
const CHUNK = 4 << 20;

/** Where a streamed encoding goes. */
export interface EncodeSink {
  /** The file's bytes as they are read, in order and each once (to hash them on the way). */
  read(bytes: Uint8Array): void;
  /** The next ids, in order. The array is reused once this returns. */
  ids(ids: Uint32Array): void;
}

/** The working memory of streamEncodeFile: a piece and the unfinished word carried over, and its ids. */
export interface EncodeBuffers {
  text: Uint8Array;
  ids: Uint32Array;
}

export function encodeBuffers(): EncodeBuffers {
  return { text: new Uint8Array(2 * CHUNK), ids: new Uint32Array(2 * CHUNK) };
}

/**
 * Encode one file (one document: no end-of-text added) in pieces, with memory that does not grow
 * with the file. Returns the bytes read. Pass `buffers` to reuse them across files.
 */
export function streamEncodeFile(tok: Tokenizer, path: string, sink: EncodeSink, what = "data file", buffers = encodeBuffers()): number {
  if (!(tok instanceof BpeTokenizer)) {
    const text = readFileLimited(path, 2 ** 31 - 1, what);
    sink.read(text);
    sink.ids(tok.encode(text));
    return text.length;
  }
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (err) {
    throw new UserError(`${what} ${path}: cannot read it (${whyUnreadable(err)}).`);
  }
  // A folder opens for reading on Linux; only the first read would fail (EISDIR).
  if (fstatSync(fd).isDirectory()) {
    closeSync(fd);
    throw new UserError(`${what} ${path}: that is a folder, not a file. Give a text file.`);
  }
  const { text: buf, ids } = buffers;
  let filled = 0;
  let total = 0;
  try {
    for (;;) {
      let n = 0;
      while (n < CHUNK) {
        const r = readSync(fd, buf, filled + n, CHUNK - n, null);
        if (r === 0) break;
        n += r;
      }
      if (n > 0) sink.read(buf.subarray(filled, filled + n));
      filled += n;
      total += n;
      const atEnd = n < CHUNK;
      if (filled === 0) break;
      let cut = atEnd ? filled : safeCut(buf.subarray(0, filled));
      // No safe cut in a whole piece (or one that would leave more than a piece behind): accept a split word.
      if (cut === 0 || filled - cut > CHUNK) cut = filled;
      sink.ids(tok.encodeInto(buf.subarray(0, cut), ids));
      buf.copyWithin(0, cut, filled);
      filled -= cut;
      if (atEnd && filled === 0) break;
    }
  } finally {
    closeSync(fd);
  }
  return total;
}

/** Ids of a whole file (one document: no end-of-text added). */
export function encodeFile(tok: Tokenizer, path: string, buffers?: EncodeBuffers): Uint32Array {
  const parts: Uint32Array[] = [];
  const progress = new Progress();
  let read = 0;
  try {
    streamEncodeFile(tok, path, {
      read(bytes) {
        read += bytes.length;
      },
      ids(ids) {
        parts.push(ids.slice());
        progress.update(`encoding ${path}: ${(read / 1e6).toFixed(1)} MB`);
      },
    }, undefined, buffers);
  } finally {
    progress.done();
  }
  return concat(parts);
}

/** Ids of several files, with the end-of-text id between documents when the tokenizer has one. */
export function encodeFiles(tok: Tokenizer, paths: string[]): Uint32Array {
  const parts: Uint32Array[] = [];
  const buffers = encodeBuffers();
  paths.forEach((p, i) => {
    if (i > 0 && tok.endOfTextId !== null) parts.push(Uint32Array.of(tok.endOfTextId));
    parts.push(encodeFile(tok, p, buffers));
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
