/**
 * What identifies training data, read in one pass over the files:
 * - the data fingerprint: a hash of the files' bytes in listing order (their names and places do not
 *   matter, so a moved or renamed copy is the same data). Stored in the training plan: resume
 *   continues an interrupted stage only on the same data.
 * - each file's content hash, which keys its ids in the token store (src/data/store.ts).
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { UserError } from "../base/errors.ts";
import { PassProgress } from "./progress.ts";

/** Content hashes are XXH64 chained over pieces of this size (part of the hash's definition): the size
 * of the tokenizer's reads (src/tokenizer/encode_file.ts), so that they hash without a copy. */
export const HASH_PIECE = 4 << 20;

/** One source file as read in the hashing pass. */
export interface ScannedFile {
  path: string;
  size: number;
  mtimeMs: number;
  /** XXH64 chained over HASH_PIECE pieces (contentHash), 16 hex digits. */
  hash: string;
}

export interface ScannedData {
  fingerprint: string;
  files: ScannedFile[];
}

/**
 * Chained XXH64 over fixed pieces: h = XXH64(piece, seed = h), from h = size of the file. Bun's
 * XXH64 is native and runs at memory speed; the same one checksums checkpoints.
 */
export class ContentHash {
  private h: bigint;
  private pending = 0;
  private stage: Uint8Array | null = null;

  /** `seed`: the file's size for a content hash. `stage`: HASH_PIECE bytes to reuse for unfinished pieces. */
  constructor(seed: number | bigint, stage?: Uint8Array) {
    this.h = BigInt(seed);
    if (stage) this.stage = stage;
  }

  /** Bytes in file order, in any cutting: they are hashed in HASH_PIECE pieces. */
  update(bytes: Uint8Array): void {
    let at = 0;
    if (this.pending > 0) {
      at = Math.min(bytes.length, HASH_PIECE - this.pending);
      this.stageBytes(bytes.subarray(0, at));
      if (this.pending === HASH_PIECE) {
        this.h = BigInt(Bun.hash.xxHash64(this.stage!.subarray(0, HASH_PIECE), this.h));
        this.pending = 0;
      }
    }
    while (bytes.length - at >= HASH_PIECE) {
      this.h = BigInt(Bun.hash.xxHash64(bytes.subarray(at, at + HASH_PIECE), this.h));
      at += HASH_PIECE;
    }
    if (at < bytes.length) this.stageBytes(bytes.subarray(at));
  }

  /** Keep bytes of an unfinished piece; the stage grows as needed, so many small files allocate little. */
  private stageBytes(bytes: Uint8Array): void {
    const need = this.pending + bytes.length;
    if (!this.stage || this.stage.length < need) {
      const grown = new Uint8Array(Math.min(HASH_PIECE, Math.max(need, 2 * (this.stage?.length ?? 0))));
      if (this.stage) grown.set(this.stage.subarray(0, this.pending));
      this.stage = grown;
    }
    this.stage.set(bytes, this.pending);
    this.pending = need;
  }

  /** The hash, after `tail` (the file's last bytes, if not given to update). */
  hex(tail?: Uint8Array): string {
    if (tail && tail.length > 0) {
      if (this.pending === 0 && tail.length <= HASH_PIECE) this.h = BigInt(Bun.hash.xxHash64(tail, this.h));
      else this.update(tail);
    }
    if (this.pending > 0) {
      this.h = BigInt(Bun.hash.xxHash64(this.stage!.subarray(0, this.pending), this.h));
      this.pending = 0;
    }
    return BigInt.asUintN(64, this.h).toString(16).padStart(16, "0");
  }
}

/** The data fingerprint and every file's content hash, with progress (files, MB/s, ETA) on long passes. */
export function scanData(files: string[], what = "--data"): ScannedData {
  const fp = new Bun.CryptoHasher("sha256");
  const buf = new Uint8Array(HASH_PIECE);
  const sizeBytes = new DataView(new ArrayBuffer(8));
  const out: ScannedFile[] = [];
  const sizes: number[] = [];
  for (const file of files) {
    const fd = openData(file, what);
    try {
      sizes.push(fstatSync(fd).size);
    } finally {
      closeSync(fd);
    }
  }
  const progress = new PassProgress("hashing", files.length, sizes.reduce((a, b) => a + b, 0));
  try {
    files.forEach((file, i) => {
      const fd = openData(file, what);
      try {
        const st = fstatSync(fd);
        const content = new ContentHash(st.size);
        let total = 0;
        let tail: Uint8Array | undefined;
        for (;;) {
          // Whole pieces, so each read is hashed without staging.
          let n = 0;
          while (n < buf.length) {
            const r = readSync(fd, buf, n, buf.length - n, null);
            if (r === 0) break;
            n += r;
          }
          if (n === 0) break;
          const piece = buf.subarray(0, n);
          fp.update(piece);
          total += n;
          progress.advance(n);
          if (n < buf.length) {
            tail = piece;
            break;
          }
          content.update(piece);
        }
        if (total !== st.size) {
          throw new UserError(`${what} ${file}: it changed while it was being read (${st.size} bytes when opened, ${total} read). Run again once it no longer changes.`);
        }
        // Each file's length closes it, so where one file ends and the next begins is part of the hash.
        sizeBytes.setFloat64(0, total, true);
        fp.update(new Uint8Array(sizeBytes.buffer));
        out.push({ path: file, size: total, mtimeMs: st.mtimeMs, hash: content.hex(tail) });
        progress.fileDone(i + 1);
      } finally {
        closeSync(fd);
      }
    });
  } finally {
    progress.done();
  }
  return { fingerprint: fp.digest("hex").slice(0, 32), files: out };
}

/** The data fingerprint alone. */
export function dataFingerprint(files: string[]): string {
  return scanData(files).fingerprint;
}

function openData(file: string, what: string): number {
  try {
    return openSync(file, "r");
  } catch (err) {
    throw new UserError(`${what} ${file}: cannot read it (${(err as Error).message}).`);
  }
}
