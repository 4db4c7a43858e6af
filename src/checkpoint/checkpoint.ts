/**
 * model_checkpoint.bin: a safetensors file holding the weights (tensorSpecs names), optionally the
 * AdamW moments (`adam.m.<name>`, `adam.v.<name>`), and in __metadata__:
 *   format              "train-vocab-checkpoint"
 *   train_vocab         JSON: {format, version, arch, tokenizer, training} (see schema.ts)
 *   checksum_algorithm  "xxh64-chain" (see checksum.ts)
 *   checksum            16 hex digits over train_vocab and every tensor
 * Weights, m and v are written straight from their flat buffers (tensorSpecs order is file order),
 * and read straight into freshly allocated flat buffers once the header has been fully checked.
 * LoopOS's LOPOS files are recognised by their magic and converted on read.
 */
import { closeSync } from "node:fs";
import { UserError } from "../base/errors.ts";
import { type Architecture, parameterCount, type TensorSpec, tensorSpecs, viewsOf } from "../model/layout.ts";
import { atomicWrite } from "../base/files.ts";
import { ChainedChecksum, CHECKSUM_ALGORITHM } from "./checksum.ts";
import { openForRead, readExactly } from "./io.ts";
import { isLopos, readLopos, readLoposHeader } from "./lopos.ts";
import { encodeHeader, readHeader, type SafetensorsHeader, type TensorEntry } from "./safetensors.ts";
import {
  CHECKPOINT_FORMAT,
  CHECKPOINT_VERSION,
  type CheckpointMetadata,
  describeIssues,
  metadataSchema,
  type TokenizerIdentity,
  type TrainingState,
} from "./schema.ts";

export interface AdamMoments {
  m: Float32Array;
  v: Float32Array;
}

export interface CheckpointInput {
  arch: Architecture;
  tokenizer: TokenizerIdentity | null;
  training: TrainingState | null;
  /** Flat, tensorSpecs order. */
  params: Float32Array;
  adam?: AdamMoments | null;
}

export interface ChecksumInfo {
  algorithm: string;
  value: string;
  /** true/false once checked; null when not checked (header-only read, verify off, or none stored). */
  verified: boolean | null;
}

export type CheckpointFormat = typeof CHECKPOINT_FORMAT | "lopos";

export interface CheckpointHeader {
  path: string;
  format: CheckpointFormat;
  version: number;
  arch: Architecture;
  tokenizer: TokenizerIdentity | null;
  training: TrainingState | null;
  /** Whether the file holds AdamW moments. */
  hasAdam: boolean;
  checksum: ChecksumInfo;
  fileSize: number;
}

export interface LoadedCheckpoint extends CheckpointHeader {
  params: Float32Array;
  adam: AdamMoments | null;
}

/** The same contents as named tensors (views, no copies). */
export interface CheckpointData {
  format: CheckpointFormat;
  version: number;
  arch: Architecture;
  tokenizer: TokenizerIdentity | null;
  training: TrainingState | null;
  tensors: Map<string, Float32Array>;
}

export const ADAM_M_PREFIX = "adam.m.";
export const ADAM_V_PREFIX = "adam.v.";

const NO_CHECKSUM: ChecksumInfo = { algorithm: "none", value: "", verified: null };

export function notFoundMessage(path: string): string {
  return `Checkpoint file not found: ${path}`;
}

// ---------------------------------------------------------------------------------------------- write

/** Write atomically; the previous file at `path` survives any failure. */
export function writeCheckpoint(path: string, ckpt: CheckpointInput): void {
  const specs = tensorSpecs(ckpt.arch);
  const n = parameterCount(ckpt.arch);
  if (ckpt.params.length !== n) throw new Error(`writeCheckpoint: params has ${ckpt.params.length} floats, the architecture has ${n}`);
  const adam = ckpt.adam ?? null;
  if (adam && (adam.m.length !== n || adam.v.length !== n)) throw new Error("writeCheckpoint: AdamW moments do not match the parameter count");

  const parsed = metadataSchema.safeParse({
    format: CHECKPOINT_FORMAT,
    version: CHECKPOINT_VERSION,
    arch: ckpt.arch,
    tokenizer: ckpt.tokenizer,
    training: ckpt.training,
  });
  // A state we could not read back is a bug upstream, not the user's doing.
  if (!parsed.success) throw new Error(`writeCheckpoint: refusing to write invalid metadata: ${describeIssues(parsed.error)}`);
  const metaJson = JSON.stringify(parsed.data);

  const groups: { prefix: string; buffer: Float32Array }[] = [{ prefix: "", buffer: ckpt.params }];
  if (adam) groups.push({ prefix: ADAM_M_PREFIX, buffer: adam.m }, { prefix: ADAM_V_PREFIX, buffer: adam.v });

  const checksum = new ChainedChecksum().update(metaJson);
  const decls = [];
  for (const { prefix, buffer } of groups) {
    for (const s of specs) {
      decls.push({ name: prefix + s.name, dtype: "F32", shape: s.shape });
      checksum.update(buffer.subarray(s.offset, s.offset + s.size));
    }
  }
  const header = encodeHeader(
    { format: CHECKPOINT_FORMAT, train_vocab: metaJson, checksum_algorithm: CHECKSUM_ALGORITHM, checksum: checksum.hex() },
    decls,
  );
  atomicWrite(path, [header.bytes, ...groups.map((g) => g.buffer)]);
}

// ----------------------------------------------------------------------------------------------- read

/** Where one file tensor goes: which flat buffer, at which element offset. */
interface Placement {
  entry: TensorEntry;
  target: 0 | 1 | 2; // params, m, v
  offset: number;
  size: number;
}

interface Parsed {
  header: CheckpointHeader;
  container: SafetensorsHeader;
  metaJson: string;
  placements: Placement[];
}

function problemFor(path: string) {
  return (what: string, hint?: string) => new UserError(`Cannot read checkpoint ${path}: ${what}${hint ? ` (${hint})` : ""}.`);
}

/** Architecture, tokenizer, training state and checksum; reads only the header (for `inspect`). */
export function readCheckpointHeader(path: string): CheckpointHeader {
  const file = openForRead(path, notFoundMessage(path));
  try {
    if (sniffLopos(file.fd, file.size)) {
      const arch = readLoposHeader(file.fd, file.size, path);
      return loposHeader(path, arch, file.size);
    }
    return parse(path, file.fd, file.size).header;
  } finally {
    closeSync(file.fd);
  }
}

/** Everything, with the checksum checked unless `verify` is false. */
export function readCheckpoint(path: string, opts: { verify?: boolean } = {}): LoadedCheckpoint {
  const verify = opts.verify ?? true;
  const file = openForRead(path, notFoundMessage(path));
  try {
    if (sniffLopos(file.fd, file.size)) {
      const { arch, params } = readLopos(file.fd, file.size, path);
      return { ...loposHeader(path, arch, file.size), params, adam: null };
    }
    const { header, container, metaJson, placements } = parse(path, file.fd, file.size);
    const problem = problemFor(path);
    if (verify && header.checksum.algorithm !== CHECKSUM_ALGORITHM) {
      throw problem(`its checksum algorithm "${header.checksum.algorithm}" is not one this version knows`, "it may be from a newer train-vocab");
    }

    // Sizes below were checked against the architecture and the file length: these allocations are
    // bounded by the file's size.
    const n = parameterCount(header.arch);
    const buffers = [new Float32Array(n), header.hasAdam ? new Float32Array(n) : null, header.hasAdam ? new Float32Array(n) : null];
    readPlacements(file.fd, container.dataStart, placements, buffers, problem);

    if (verify) {
      const sum = new ChainedChecksum().update(metaJson);
      for (const p of placements) sum.update(buffers[p.target]!.subarray(p.offset, p.offset + p.size));
      if (sum.hex() !== header.checksum.value) {
        throw problem(
          `checksum mismatch (stored ${header.checksum.value}, computed ${sum.hex()}): the contents changed after the file was written`,
          "the file is damaged; restore it from a copy",
        );
      }
    }
    return {
      ...header,
      checksum: { ...header.checksum, verified: verify ? true : null },
      params: buffers[0]!,
      adam: buffers[1] && buffers[2] ? { m: buffers[1], v: buffers[2] } : null,
    };
  } finally {
    closeSync(file.fd);
  }
}

/** Named views of a loaded checkpoint: weights by tensorSpecs name, moments as adam.m./adam.v. names. */
export function toCheckpointData(ckpt: LoadedCheckpoint): CheckpointData {
  const tensors = viewsOf(ckpt.params, ckpt.arch);
  if (ckpt.adam) {
    for (const [name, t] of viewsOf(ckpt.adam.m, ckpt.arch)) tensors.set(ADAM_M_PREFIX + name, t);
    for (const [name, t] of viewsOf(ckpt.adam.v, ckpt.arch)) tensors.set(ADAM_V_PREFIX + name, t);
  }
  const { format, version, arch, tokenizer, training } = ckpt;
  return { format, version, arch, tokenizer, training, tensors };
}

function sniffLopos(fd: number, size: number): boolean {
  const first = new Uint8Array(Math.min(5, size));
  readExactly(fd, first, 0);
  return isLopos(first);
}

function loposHeader(path: string, arch: Architecture, fileSize: number): CheckpointHeader {
  return { path, format: "lopos", version: 1, arch, tokenizer: null, training: null, hasAdam: false, checksum: NO_CHECKSUM, fileSize };
}

/** Recognise files people might pass by mistake, so the error says what they are. */
function foreignFormat(fd: number, size: number): string | null {
  const first = new Uint8Array(Math.min(512, size));
  const n = readExactly(fd, first, 0);
  const text = new TextDecoder().decode(first.subarray(0, 4));
  if (text.startsWith("PK")) return "a zip archive (a PyTorch .pt/.bin file?); convert it to safetensors and use import";
  if (text === "GGUF") return "a GGUF file (llama.cpp); it cannot be loaded here";
  if (new TextDecoder().decode(first.subarray(0, 17)) === "train-vocab vocab") return "a train-vocab vocabulary (.vocab), not a checkpoint; give it as --vocab";
  // Tabs, newlines and printable bytes only (UTF-8 and Latin-1 text alike), and plain ASCII where a
  // safetensors file has its length field (as text, that length would be beyond any file): a text file.
  const textByte = (b: number) => b === 0x09 || b === 0x0a || b === 0x0d || (b >= 0x20 && b !== 0x7f);
  if (n > 0 && first.subarray(0, n).every(textByte) && first.subarray(0, 8).every((b) => b < 0x7f)) {
    return "a text file, not a checkpoint (training text, a config or a vocab file?)";
  }
  return null;
}

function parse(path: string, fd: number, fileSize: number): Parsed {
  const problem = problemFor(path);
  let container: SafetensorsHeader;
  try {
    container = readHeader(fd, fileSize, problem);
  } catch (err) {
    const foreign = err instanceof UserError ? foreignFormat(fd, fileSize) : null;
    if (foreign) throw problem(`the file is ${foreign}`);
    throw err;
  }
  const meta = container.metadata;
  if (meta.train_vocab === undefined) {
    throw problem("it is a safetensors file but not a train-vocab checkpoint (no train_vocab metadata)", "to use another model's weights, import them");
  }
  const metaJson = meta.train_vocab;
  const metadata = parseMetadata(metaJson, problem);
  const placements = placeTensors(container.tensors, metadata.arch, problem);
  const hasAdam = placements.some((p) => p.target !== 0);
  const header: CheckpointHeader = {
    path,
    format: CHECKPOINT_FORMAT,
    version: metadata.version,
    arch: metadata.arch,
    tokenizer: metadata.tokenizer,
    training: metadata.training,
    hasAdam,
    checksum: meta.checksum === undefined ? NO_CHECKSUM : { algorithm: meta.checksum_algorithm ?? "unknown", value: meta.checksum, verified: null },
    fileSize,
  };
  return { header, container, metaJson, placements };
}

function parseMetadata(json: string, problem: ReturnType<typeof problemFor>): CheckpointMetadata {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    throw problem("its train_vocab metadata is not valid JSON", "the header is damaged");
  }
  if (typeof raw === "object" && raw !== null && "version" in raw) {
    const version = (raw as { version: unknown }).version;
    if (typeof version === "number" && version > CHECKPOINT_VERSION) {
      throw problem(`it is format version ${version}; this train-vocab reads version ${CHECKPOINT_VERSION}`, "upgrade train-vocab to read it");
    }
  }
  const parsed = metadataSchema.safeParse(raw);
  if (!parsed.success) throw problem(`its metadata is invalid: ${describeIssues(parsed.error)}`, "the header is damaged");
  return parsed.data;
}

function archSummary(a: Architecture): string {
  return `d_model ${a.d_model}, num_layers ${a.num_layers}, d_ff ${a.d_ff}, vocab_size ${a.vocab_size}, max_seq_len ${a.max_seq_len}`;
}

/** Match every file tensor to a spec (name, dtype, shape) and require all weights; moments all or none. */
function placeTensors(entries: TensorEntry[], arch: Architecture, problem: ReturnType<typeof problemFor>): Placement[] {
  const specs = new Map<string, TensorSpec>(tensorSpecs(arch).map((s) => [s.name, s]));
  const seen = [new Set<string>(), new Set<string>(), new Set<string>()];
  const placements: Placement[] = [];
  for (const entry of entries) {
    let target: 0 | 1 | 2 = 0;
    let name = entry.name;
    if (name.startsWith(ADAM_M_PREFIX)) [target, name] = [1, name.slice(ADAM_M_PREFIX.length)];
    else if (name.startsWith(ADAM_V_PREFIX)) [target, name] = [2, name.slice(ADAM_V_PREFIX.length)];
    const spec = specs.get(name);
    if (!spec) throw problem(`it has a tensor "${entry.name}" that the architecture (${archSummary(arch)}) does not have`);
    if (entry.dtype !== "F32") throw problem(`tensor "${entry.name}" is ${entry.dtype}; checkpoints store F32`);
    if (entry.shape.length !== spec.shape.length || entry.shape.some((d, i) => d !== spec.shape[i])) {
      throw problem(
        `tensor "${entry.name}" has shape [${entry.shape.join(", ")}] but the architecture (${archSummary(arch)}) needs [${spec.shape.join(", ")}]`,
        "the header is damaged or was edited",
      );
    }
    seen[target]!.add(name);
    placements.push({ entry, target, offset: spec.offset, size: spec.size });
  }
  for (const name of specs.keys()) {
    if (!seen[0]!.has(name)) throw problem(`the weight tensor "${name}" is missing`);
  }
  const moments = seen[1]!.size + seen[2]!.size;
  if (moments !== 0 && moments !== 2 * specs.size) {
    throw problem(`it has AdamW moments for only some tensors (${moments} of ${2 * specs.size})`, "the header is damaged");
  }
  return placements;
}

/** Read tensors in file order, merging neighbours that are also neighbours in memory (in our own
 * files the weights, m and v are each one read). */
function readPlacements(
  fd: number,
  dataStart: number,
  placements: Placement[],
  buffers: (Float32Array | null)[],
  problem: ReturnType<typeof problemFor>,
): void {
  let i = 0;
  while (i < placements.length) {
    const first = placements[i]!;
    let j = i + 1;
    let size = first.size;
    while (j < placements.length) {
      const p = placements[j]!;
      if (p.target !== first.target || p.offset !== first.offset + size) break;
      size += p.size;
      j++;
    }
    const dst = buffers[first.target]!.subarray(first.offset, first.offset + size);
    if (readExactly(fd, dst, dataStart + first.entry.begin) !== dst.byteLength) {
      throw problem("the file got shorter while it was being read", "is another program writing it?");
    }
    i = j;
  }
}
