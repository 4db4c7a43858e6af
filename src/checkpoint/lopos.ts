/**
 * LoopOS's checkpoint, `LOPOS` version 1 (little-endian, no padding, no checksum):
 *
 *   "LOPOS" (5 ASCII bytes) · u32 version = 1
 *   i32 d_model, num_heads, num_layers, d_ff, vocab_size, max_seq_len        (33 bytes so far)
 *   matrices, each u32 rows · u32 cols · rows×cols f32 row-major (vectors are 1×N), in the order
 *   of `loposMatrices` below.
 *
 * LoopOS computes y = x·W, so its weights are [in, out]; ours are nn.Linear's [out, in]. Each
 * linear weight is therefore transposed on the way in and out. W_qkv's column blocks Q|K|V become
 * our qkv rows Q|K|V, so the per-head split of the columns carries over unchanged. LoopOS's model
 * has no attention biases and an output projection separate from the token embedding; LoopOS
 * always wrote max_seq_len 512.
 */
import { UserError } from "../base/errors.ts";
import { type Architecture, parameterCount, tensorSpecs } from "../model/layout.ts";
import { atomicWrite, type Chunk } from "../base/files.ts";
import { readExactly } from "./io.ts";
import { architectureSchema, describeIssues } from "./schema.ts";

export const LOPOS_MAGIC = "LOPOS";
export const LOPOS_VERSION = 1;
const HEADER_BYTES = 33;
const MATRIX_HEADER_BYTES = 8;

interface LoposMatrix {
  /** LoopOS's name for it, for error messages. */
  label: string;
  rows: number;
  cols: number;
  /** Our tensor that holds it. */
  name: string;
  /** Stored as [in, out]: our tensor is its transpose. */
  transposed: boolean;
}

/** The file's matrices in order: the one description of the layout, used by reader and writer. */
export function loposMatrices(arch: Architecture): LoposMatrix[] {
  const { d_model: C, d_ff: F, vocab_size: V, max_seq_len: P } = arch;
  const list: LoposMatrix[] = [
    { label: "token_embedding", rows: V, cols: C, name: "wte", transposed: false },
    { label: "position_embedding", rows: P, cols: C, name: "wpe", transposed: false },
  ];
  for (let l = 0; l < arch.num_layers; l++) {
    const h = `h.${l}`;
    const at = (label: string) => `layer ${l} ${label}`;
    list.push(
      { label: at("W_qkv"), rows: C, cols: 3 * C, name: `${h}.attn.qkv.weight`, transposed: true },
      { label: at("W_o"), rows: C, cols: C, name: `${h}.attn.proj.weight`, transposed: true },
      { label: at("W1"), rows: C, cols: F, name: `${h}.mlp.fc.weight`, transposed: true },
      { label: at("b1"), rows: 1, cols: F, name: `${h}.mlp.fc.bias`, transposed: false },
      { label: at("W2"), rows: F, cols: C, name: `${h}.mlp.proj.weight`, transposed: true },
      { label: at("b2"), rows: 1, cols: C, name: `${h}.mlp.proj.bias`, transposed: false },
      { label: at("norm1 gamma"), rows: 1, cols: C, name: `${h}.ln_1.weight`, transposed: false },
      { label: at("norm1 beta"), rows: 1, cols: C, name: `${h}.ln_1.bias`, transposed: false },
      { label: at("norm2 gamma"), rows: 1, cols: C, name: `${h}.ln_2.weight`, transposed: false },
      { label: at("norm2 beta"), rows: 1, cols: C, name: `${h}.ln_2.bias`, transposed: false },
    );
  }
  list.push(
    { label: "final_norm gamma", rows: 1, cols: C, name: "ln_f.weight", transposed: false },
    { label: "final_norm beta", rows: 1, cols: C, name: "ln_f.bias", transposed: false },
    // For a tied model the writer stores wteᵀ here; a reader always gets a separate lm_head.
    { label: "output_projection", rows: C, cols: V, name: arch.tied_embeddings ? "wte" : "lm_head.weight", transposed: true },
  );
  return list;
}

/** The exact file length for an architecture. Counted per layer and multiplied so a damaged
 * num_layers cannot make us loop; beyond 2^53 the sum is inexact but can only compare unequal. */
function expectedLength(arch: Architecture): number {
  const { d_model: C, d_ff: F, vocab_size: V, max_seq_len: P } = arch;
  const m = (rows: number, cols: number) => MATRIX_HEADER_BYTES + 4 * rows * cols;
  const perLayer = m(C, 3 * C) + m(C, C) + m(C, F) + m(1, F) + m(F, C) + 5 * m(1, C);
  return HEADER_BYTES + m(V, C) + m(P, C) + arch.num_layers * perLayer + 2 * m(1, C) + m(C, V);
}

export function isLopos(firstBytes: Uint8Array): boolean {
  return firstBytes.byteLength >= 5 && new TextDecoder().decode(firstBytes.subarray(0, 5)) === LOPOS_MAGIC;
}

function problem(path: string, what: string, hint?: string): UserError {
  return new UserError(`Cannot read LoopOS checkpoint ${path} (LOPOS): ${what}${hint ? ` (${hint})` : ""}.`);
}

/** Validate the 33-byte header and the exact file length; reads nothing past the header. */
export function readLoposHeader(fd: number, fileSize: number, path: string): Architecture {
  if (fileSize < HEADER_BYTES) {
    throw problem(path, `the file is ${fileSize} bytes, shorter than the ${HEADER_BYTES}-byte header`, "it may be from an interrupted copy");
  }
  const head = new Uint8Array(HEADER_BYTES);
  readExactly(fd, head, 0);
  const view = new DataView(head.buffer);
  const version = view.getUint32(5, true);
  if (version !== LOPOS_VERSION) {
    throw problem(path, `format version ${version} is not supported (only version ${LOPOS_VERSION})`);
  }
  const fields = ["d_model", "num_heads", "num_layers", "d_ff", "vocab_size", "max_seq_len"] as const;
  const values = fields.map((_, i) => view.getInt32(9 + 4 * i, true));
  fields.forEach((field, i) => {
    if (values[i]! <= 0) throw problem(path, `${field} is ${values[i]}, it must be positive`, "the header is damaged");
  });
  const parsed = architectureSchema.safeParse({
    d_model: values[0], num_heads: values[1], num_layers: values[2], d_ff: values[3],
    vocab_size: values[4], max_seq_len: values[5], tied_embeddings: false, attention_bias: false,
  });
  if (!parsed.success) throw problem(path, `the header's architecture is impossible: ${describeIssues(parsed.error)}`, "the header is damaged");
  const arch = parsed.data;
  const expected = expectedLength(arch);
  if (fileSize !== expected) {
    const hint = fileSize < expected ? "the file is truncated; it may be from an interrupted copy or write" : "the file has extra bytes at the end or a damaged header";
    throw problem(path, `the header's architecture needs exactly ${expected} bytes but the file has ${fileSize}`, hint);
  }
  return arch;
}

/** Read the whole file into our flat parameter layout (tensorSpecs order). */
export function readLopos(fd: number, fileSize: number, path: string): { arch: Architecture; params: Float32Array } {
  const arch = readLoposHeader(fd, fileSize, path);
  // Start the copy 3 bytes into the buffer: every float in the file sits at 33 + 8k + 4j, so with
  // the shift it lands on a multiple of 4 and can be viewed as a Float32Array without copying.
  const shift = 3;
  const buffer = new ArrayBuffer(fileSize + shift);
  const bytes = new Uint8Array(buffer, shift, fileSize);
  if (readExactly(fd, bytes, 0) !== fileSize) throw problem(path, "the file got shorter while it was read");
  const dv = new DataView(buffer, shift);

  const params = new Float32Array(parameterCount(arch));
  const offsets = new Map(tensorSpecs(arch).map((s) => [s.name, s.offset]));
  let pos = HEADER_BYTES;
  for (const m of loposMatrices(arch)) {
    const rows = dv.getUint32(pos, true);
    const cols = dv.getUint32(pos + 4, true);
    if (rows !== m.rows || cols !== m.cols) {
      throw problem(path, `${m.label} at byte ${pos} is ${rows}×${cols} but the header's architecture needs ${m.rows}×${m.cols}`, "the file is damaged");
    }
    const n = rows * cols;
    const src = new Float32Array(buffer, shift + pos + MATRIX_HEADER_BYTES, n);
    const dst = params.subarray(offsets.get(m.name)!, offsets.get(m.name)! + n);
    if (m.transposed) transpose(dst, src, rows, cols);
    else dst.set(src);
    pos += MATRIX_HEADER_BYTES + 4 * n;
  }
  return { arch, params };
}

/**
 * Write a LOPOS v1 file from weights in our layout (a flat buffer in tensorSpecs order, or tensors by
 * our names). LoopOS's model has no attention biases; a tied model is written with wteᵀ as its
 * output projection. LoopOS itself only reads max_seq_len 512.
 */
export function writeLopos(path: string, arch: Architecture, weights: Float32Array | Map<string, Float32Array>): void {
  if (arch.attention_bias) {
    throw new UserError(
      `Cannot write ${path} as a LOPOS v1 checkpoint: LoopOS's model has no attention biases and this model has them. ` +
        `Only models without attention biases (trained with --arch gpt2 --attention-bias false, or imported from LoopOS) export to LOPOS v1; use --format hf instead.`,
    );
  }
  const specs = tensorSpecs(arch);
  const byName = new Map<string, Float32Array>();
  if (weights instanceof Float32Array) {
    if (weights.length !== parameterCount(arch)) {
      throw new Error(`writeLopos: ${weights.length} parameters given, the architecture has ${parameterCount(arch)}`);
    }
    for (const s of specs) byName.set(s.name, weights.subarray(s.offset, s.offset + s.size));
  } else {
    for (const s of specs) {
      const t = weights.get(s.name);
      if (!t || t.length !== s.size) throw new Error(`writeLopos: tensor ${s.name} is missing or has the wrong size`);
      byName.set(s.name, t);
    }
  }
  const head = new DataView(new ArrayBuffer(HEADER_BYTES));
  new Uint8Array(head.buffer).set(new TextEncoder().encode(LOPOS_MAGIC), 0);
  head.setUint32(5, LOPOS_VERSION, true);
  [arch.d_model, arch.num_heads, arch.num_layers, arch.d_ff, arch.vocab_size, arch.max_seq_len].forEach((v, i) =>
    head.setInt32(9 + 4 * i, v, true),
  );
  // A generator: at most one transposed matrix exists at a time, however large the model.
  function* chunks(): Generator<Chunk> {
    yield head;
    for (const m of loposMatrices(arch)) {
      const dims = new DataView(new ArrayBuffer(MATRIX_HEADER_BYTES));
      dims.setUint32(0, m.rows, true);
      dims.setUint32(4, m.cols, true);
      yield dims;
      const ours = byName.get(m.name)!;
      if (!m.transposed) {
        yield ours;
        continue;
      }
      const stored = new Float32Array(m.rows * m.cols);
      // ours is [cols, rows] (nn.Linear [out, in]); the file wants [rows, cols] = [in, out].
      transpose(stored, ours, m.cols, m.rows);
      yield stored;
    }
  }
  atomicWrite(path, chunks());
}

/** dst[c, r] = src[r, c] for src of rows×cols, in tiles so both sides stay in cache. Runs once per
 * import or export, so a plain loop is fast enough (about a second per GB). */
function transpose(dst: Float32Array, src: Float32Array, rows: number, cols: number): void {
  const T = 32;
  for (let r0 = 0; r0 < rows; r0 += T) {
    const r1 = Math.min(rows, r0 + T);
    for (let c0 = 0; c0 < cols; c0 += T) {
      const c1 = Math.min(cols, c0 + T);
      for (let r = r0; r < r1; r++) {
        const srow = r * cols;
        for (let c = c0; c < c1; c++) dst[c * rows + r] = src[srow + c]!;
      }
    }
  }
}
