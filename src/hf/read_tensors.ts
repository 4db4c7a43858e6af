/**
 * Reading another program's safetensors files (one, or shards listed in model.safetensors.index.json)
 * through the checkpoint module's container reader, which checks the header and the tiling before any
 * tensor byte is read. Half-precision files are widened to float32 on the way in.
 */
import { closeSync, existsSync, fstatSync, openSync, readSync } from "node:fs";
import { join } from "node:path";
import { readHeader, type TensorEntry } from "../checkpoint/index.ts";
import { UserError } from "../base/errors.ts";
import { readText } from "../base/files.ts";

export interface LazyTensor {
  key: string;
  shape: number[];
  dtype: string;
  /** Reads and converts the data on demand, so tensors we refuse cost no memory. */
  read: () => Float32Array;
}

/** The weight files of a model folder: model.safetensors or the shards of its index. */
export function weightFiles(dir: string): string[] {
  const single = join(dir, "model.safetensors");
  if (existsSync(single)) return [single];
  const index = join(dir, "model.safetensors.index.json");
  if (existsSync(index)) {
    const indexText = readText(index, "the weights index");
    let map: Record<string, string>;
    try {
      map = (JSON.parse(indexText) as { weight_map: Record<string, string> }).weight_map;
    } catch (err) {
      throw new UserError(`${index}: not a safetensors index (${(err as Error).message}).`);
    }
    return [...new Set(Object.values(map))].sort().map((f) => join(dir, f));
  }
  const hint = existsSync(join(dir, "pytorch_model.bin"))
    ? "It has pytorch_model.bin: save it as safetensors first (model.save_pretrained(dir, safe_serialization=True))"
    : "Give the folder written by save_pretrained or by train_vocab export";
  throw new UserError(`${dir}: no model.safetensors. ${hint}.`);
}

export function readSafetensorsFile(path: string): LazyTensor[] {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch {
    throw new UserError(`Cannot open ${path}. Check that the file exists and is readable.`);
  }
  const stat = fstatSync(fd);
  const problem = (what: string, hint?: string) => new UserError(`Cannot read ${path}: ${what}${hint ? ` (${hint})` : ""}.`);
  try {
    if (!stat.isFile()) throw problem("it is not a file", "give the folder written by save_pretrained or by train_vocab export");
    const header = readHeader(fd, stat.size, problem);
    return header.tensors.map((entry) => ({
      key: entry.name,
      shape: entry.shape,
      dtype: entry.dtype,
      read: () => readTensor(path, header.dataStart, entry, problem),
    }));
  } finally {
    closeSync(fd);
  }
}

function readTensor(path: string, dataStart: number, e: TensorEntry, problem: (w: string, h?: string) => UserError): Float32Array {
  const bytes = new Uint8Array(e.end - e.begin);
  const fd = openSync(path, "r");
  try {
    let done = 0;
    while (done < bytes.length) {
      const n = readSync(fd, bytes, done, Math.min(bytes.length - done, 1 << 30), dataStart + e.begin + done);
      if (n <= 0) throw problem(`the file ended inside tensor "${e.name}"`, "it is truncated");
      done += n;
    }
  } finally {
    closeSync(fd);
  }
  return toFloat32(bytes, e.dtype, e.name, problem);
}

function toFloat32(bytes: Uint8Array, dtype: string, name: string, problem: (w: string, h?: string) => UserError): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case "F32":
      return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    case "F64":
      return Float32Array.from({ length: bytes.byteLength / 8 }, (_, i) => view.getFloat64(8 * i, true));
    case "BF16": {
      // bfloat16 is the top half of a float32.
      const out = new Uint32Array(bytes.byteLength / 2);
      for (let i = 0; i < out.length; i++) out[i] = view.getUint16(2 * i, true) << 16;
      return new Float32Array(out.buffer);
    }
    case "F16": {
      const out = new Float32Array(bytes.byteLength / 2);
      for (let i = 0; i < out.length; i++) out[i] = halfToFloat(view.getUint16(2 * i, true));
      return out;
    }
    default:
      throw problem(`tensor "${name}" is ${dtype}; only F32, F64, F16 and BF16 weights can be imported`);
  }
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

