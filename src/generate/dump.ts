/**
 * Reference dumps: the full token sequence and the logits each generated token was sampled from, in a
 * small safetensors file any language reads with a JSON parser (scripts/verify_hf_export.py compares
 * them with an independent PyTorch forward of the same tokens).
 *   tokens  I32 [n]        prompt followed by the generated tokens
 *   logits  F32 [s, V]     row i: logits at position first_position + i
 */
import { closeSync, existsSync, openSync, readSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { atomicWrite } from "../base/files.ts";
import { encodeHeader } from "../checkpoint/index.ts";
import { UserError } from "../base/errors.ts";

const FORMAT = "train-vocab-logits";

/**
 * Before generating: the dump can be written at `path`. An earlier dump is replaced freely (the same
 * command makes it again); any other file there may be of value and is left alone.
 */
export function checkDumpPath(path: string, flag: string): void {
  const folder = dirname(path);
  if (!existsSync(folder) || !statSync(folder).isDirectory()) {
    throw new UserError(`${flag} ${path}: the folder ${folder} does not exist. Create it first or give another ${flag}.`);
  }
  if (!existsSync(path)) return;
  if (statSync(path).isDirectory()) throw new UserError(`${flag} ${path}: a folder is in the way of the file to write. Give a file path.`);
  if (!isLogitsDump(path)) {
    throw new UserError(`${flag}: ${path} already exists and is not a logits dump; it was left as it is. Give another ${flag} path.`);
  }
}

/** Whether the file starts like a dump this module wrote (the safetensors header names the format). */
export function isLogitsDump(path: string): boolean {
  let fd: number | null = null;
  try {
    fd = openSync(path, "r");
    const head = new Uint8Array(8 + 256);
    const n = readSync(fd, head, 0, head.length, 0);
    // The header's JSON is short and names the format in its first few hundred bytes.
    return n > 8 && new TextDecoder().decode(head.subarray(8, n)).includes(`"format":"${FORMAT}"`);
  } catch {
    return false;
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

export function writeLogitsDump(path: string, tokens: number[], firstPosition: number, logits: Float32Array[], vocab: number): void {
  const tokenData = Int32Array.from(tokens);
  const rows = new Float32Array(logits.length * vocab);
  logits.forEach((row, i) => rows.set(row.subarray(0, vocab), i * vocab));
  const header = encodeHeader(
    { format: FORMAT, first_position: String(firstPosition) },
    [
      { name: "tokens", dtype: "I32", shape: [tokenData.length] },
      { name: "logits", dtype: "F32", shape: [logits.length, vocab] },
    ],
  );
  atomicWrite(path, [header.bytes, tokenData, rows]);
}
