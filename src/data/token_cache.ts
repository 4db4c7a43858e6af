/**
 * Token ids of the training data, cached in the output folder so a second run (or a resume) does
 * not tokenize again. A cache file is keyed by the data's and the vocabulary's fingerprints: any
 * change to either makes a new key, and a damaged file is ignored and rebuilt.
 *
 *   "TVTOKENS" · u32 version · u32 0 · u32 count lo · u32 count hi · 32-byte ASCII key · 8 bytes 0
 *   then count × u32 little-endian ids
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { atomicWrite } from "../base/files.ts";
import { encodeFiles, type Tokenizer } from "../tokenizer/index.ts";

const MAGIC = "TVTOKENS";
const VERSION = 1;
const HEADER = 64;

export function cacheKey(dataFingerprint: string, tokenizerFingerprint: string): string {
  const h = new Bun.CryptoHasher("sha256");
  h.update(`tokens v${VERSION}\0${dataFingerprint}\0${tokenizerFingerprint}`);
  return h.digest("hex").slice(0, 32);
}

export function cachePath(dir: string, key: string): string {
  return join(dir, `tokens-${key.slice(0, 16)}.bin`);
}

/** The cached ids, or null when there is no valid cache for this key. */
export function readTokenCache(path: string, key: string): Uint32Array | null {
  if (!existsSync(path)) return null;
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(path));
  } catch {
    return null;
  }
  if (bytes.length < HEADER || (bytes.length - HEADER) % 4 !== 0) return null;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, HEADER);
  const text = new TextDecoder();
  if (text.decode(bytes.subarray(0, 8)) !== MAGIC || dv.getUint32(8, true) !== VERSION) return null;
  const count = dv.getUint32(16, true) + dv.getUint32(20, true) * 0x100000000;
  if (text.decode(bytes.subarray(24, 56)) !== key || bytes.length !== HEADER + 4 * count) return null;
  // readFileSync's buffer may start at any offset: copy into an aligned array.
  return new Uint32Array(bytes.slice(HEADER).buffer);
}

export function writeTokenCache(path: string, key: string, ids: Uint32Array): void {
  const header = new Uint8Array(HEADER);
  const dv = new DataView(header.buffer);
  header.set(new TextEncoder().encode(MAGIC), 0);
  dv.setUint32(8, VERSION, true);
  dv.setUint32(16, ids.length % 0x100000000, true);
  dv.setUint32(20, Math.floor(ids.length / 0x100000000), true);
  header.set(new TextEncoder().encode(key), 24);
  atomicWrite(path, [header, ids]);
}

export interface TokenizedData {
  ids: Uint32Array;
  fromCache: boolean;
  cacheFile: string;
}

/** Ids of the data files (end-of-text between documents), from the cache when it matches. Synchronous:
 * no signal handler runs meanwhile, so SIGINT/SIGTERM end the process here (nothing is worth saving; a
 * cache write cut short leaves only a temp file, removed by the next run that takes the lock). */
export function tokenizeWithCache(
  files: string[], tokenizer: Tokenizer, dataFp: string, cacheDir: string,
): TokenizedData {
  const key = cacheKey(dataFp, tokenizer.fingerprint);
  const file = cachePath(cacheDir, key);
  const cached = readTokenCache(file, key);
  if (cached) return { ids: cached, fromCache: true, cacheFile: file };
  const ids = encodeFiles(tokenizer, files);
  writeTokenCache(file, key, ids);
  return { ids, fromCache: false, cacheFile: file };
}
