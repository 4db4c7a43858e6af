/**
 * The safetensors container, independent of what we store in it:
 *   8 bytes  N, u64 little-endian
 *   N bytes  JSON header {"__metadata__": {str: str}, name: {dtype, shape, data_offsets: [begin, end]}}
 *   rest     tensor bytes; offsets are relative to the end of the header
 * The spec requires the tensors to cover the data section exactly (no holes, no overlaps: no room for
 * hidden content), so we write them back to back and reject anything else. The header is padded with
 * spaces (the spec allows trailing whitespace) so the data section starts 8-byte aligned; every tensor
 * then starts at a multiple of its element size (of 8 bytes whenever the preceding sizes are even).
 */
import { UserError } from "../base/errors.ts";
import { readExactly } from "./io.ts";

/** Bytes per element for the dtypes the safetensors spec defines. */
export const DTYPE_SIZES: Readonly<Record<string, number>> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, F8_E4M3: 1, F8_E5M2: 1,
  I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1,
};

/** The reference implementation refuses headers above 100 MB; so do we (a header is kilobytes). */
export const MAX_HEADER_BYTES = 100_000_000;

export interface TensorEntry {
  name: string;
  dtype: string;
  shape: number[];
  /** Byte offsets relative to the start of the data section. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  /** Absolute file offset of the data section (8 + N). */
  dataStart: number;
  dataLength: number;
  metadata: Record<string, string>;
  /** Sorted by offset: the order of the bytes in the file. */
  tensors: TensorEntry[];
}

export interface TensorDecl {
  name: string;
  dtype: string;
  shape: number[];
}

/** Reports a broken file; the caller decides the wording's subject (e.g. "Checkpoint <path>"). */
export type Problem = (what: string, hint?: string) => UserError;

/** Encode the 8-byte length plus the padded JSON header for tensors stored back to back in `tensors` order. */
export function encodeHeader(metadata: Record<string, string>, tensors: TensorDecl[]): { bytes: Uint8Array; dataLength: number } {
  const json: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of tensors) {
    const size = DTYPE_SIZES[t.dtype];
    if (size === undefined) throw new Error(`unknown dtype ${t.dtype}`);
    const bytes = t.shape.reduce((a, b) => a * b, 1) * size;
    json[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const text = new TextEncoder().encode(JSON.stringify(json));
  const padded = Math.ceil((8 + text.byteLength) / 8) * 8 - 8;
  const bytes = new Uint8Array(8 + padded).fill(0x20);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(padded), true);
  bytes.set(text, 8);
  return { bytes, dataLength: offset };
}

/**
 * Read and check the header of an open file of `fileSize` bytes. Reads only the header bytes; checks
 * that every entry is well formed and that the entries tile the data section exactly, so later reads
 * of tensor data can trust the offsets and never allocate more than the file holds.
 */
export function readHeader(fd: number, fileSize: number, problem: Problem): SafetensorsHeader {
  if (fileSize < 8) {
    throw problem(`the file is only ${fileSize} bytes, too short for a header`, "it may be from an interrupted copy");
  }
  const lenBytes = new Uint8Array(8);
  readExactly(fd, lenBytes, 0);
  const declared = new DataView(lenBytes.buffer).getBigUint64(0, true);
  if (declared > BigInt(fileSize - 8)) {
    throw problem(
      `the header length field says ${declared} bytes but only ${fileSize - 8} bytes follow it`,
      "the file is truncated or is not a safetensors checkpoint",
    );
  }
  const headerLength = Number(declared);
  if (headerLength > MAX_HEADER_BYTES) throw problem(`the header is ${headerLength} bytes, more than any checkpoint needs`);
  if (headerLength < 2) throw problem("the header is empty", "the file is not a safetensors checkpoint");

  const raw = new Uint8Array(headerLength);
  if (readExactly(fd, raw, 8) !== headerLength) throw problem("the file ended while reading the header");
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(raw);
  } catch {
    throw problem("the header is not valid UTF-8", "the file is damaged or is not a safetensors checkpoint");
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    throw problem(`the header is not valid JSON (${detail})`, "the file is damaged or is not a safetensors checkpoint");
  }
  if (!isRecord(parsed)) throw problem("the header is not a JSON object");

  const dataStart = 8 + headerLength;
  const dataLength = fileSize - dataStart;
  let metadata: Record<string, string> = {};
  const tensors: TensorEntry[] = [];
  for (const [name, value] of Object.entries(parsed)) {
    if (name === "__metadata__") {
      metadata = checkMetadata(value, problem);
      continue;
    }
    tensors.push(checkEntry(name, value, problem));
  }
  tensors.sort((a, b) => a.begin - b.begin || a.end - b.end);
  checkTiling(tensors, dataLength, problem);
  return { dataStart, dataLength, metadata, tensors };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function checkMetadata(value: unknown, problem: Problem): Record<string, string> {
  if (!isRecord(value)) throw problem("__metadata__ is not an object of strings");
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== "string") throw problem(`__metadata__.${k} is not a string (safetensors metadata values are strings)`);
    out[k] = v;
  }
  return out;
}

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

function checkEntry(name: string, value: unknown, problem: Problem): TensorEntry {
  if (!isRecord(value)) throw problem(`tensor "${name}" has no {dtype, shape, data_offsets} entry`);
  const { dtype, shape, data_offsets: offsets } = value;
  if (typeof dtype !== "string" || DTYPE_SIZES[dtype] === undefined) {
    throw problem(`tensor "${name}" has unknown dtype ${JSON.stringify(dtype)}`);
  }
  if (!Array.isArray(shape) || !shape.every(isCount)) {
    throw problem(`tensor "${name}" has a bad shape ${JSON.stringify(shape)} (expected a list of non-negative integers)`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
    throw problem(`tensor "${name}" has bad data_offsets ${JSON.stringify(offsets)} (expected [begin, end])`);
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) throw problem(`tensor "${name}" ends (${end}) before it begins (${begin})`);
  // Multiply step by step so a huge declared shape is caught before it loses precision.
  let bytes = DTYPE_SIZES[dtype]!;
  for (const d of shape as number[]) {
    bytes *= d;
    if (!Number.isSafeInteger(bytes)) throw problem(`tensor "${name}" declares an impossible size (shape [${shape.join(", ")}])`);
  }
  if (bytes !== end - begin) {
    throw problem(`tensor "${name}" has shape [${shape.join(", ")}] (${bytes} bytes of ${dtype}) but data_offsets span ${end - begin} bytes`);
  }
  return { name, dtype, shape: shape as number[], begin, end };
}

function checkTiling(sorted: TensorEntry[], dataLength: number, problem: Problem): void {
  let expected = 0;
  for (const t of sorted) {
    if (t.begin < expected) throw problem(`tensor "${t.name}" overlaps the tensor before it (offset ${t.begin} < ${expected})`);
    if (t.begin > expected) throw problem(`there is a gap of ${t.begin - expected} bytes before tensor "${t.name}" (safetensors data must be contiguous)`);
    expected = t.end;
  }
  if (expected > dataLength) {
    throw problem(
      `the file is truncated: the header says ${expected} bytes of tensors, the file has ${dataLength}`,
      "it may be from an interrupted copy or write",
    );
  }
  if (expected < dataLength) {
    throw problem(`the file has ${dataLength - expected} unexpected bytes after the last tensor`, "it may have been appended to or damaged");
  }
}
