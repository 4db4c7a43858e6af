/**
 * The token store: the ids of every data file tokenized with one vocabulary, kept in a folder (the
 * output folder, or --token-cache DIR shared by runs) so that no run tokenizes a file twice. Ids are
 * written as they are produced, 2 bytes each when the vocabulary has at most 65,536 tokens, and a run
 * memory-maps them: the store is never read whole. Format and rules: docs/data.md.
 *
 *   tokens-<vocab>.json                   the index: one entry per file content (replaced atomically)
 *   tokens-<vocab>-<pid>-<stamp>.ids      parts: a 64-byte header, then ids appended
 *
 * Crash safety: a file's ids are synced to disk before the index that names them replaces the old
 * one, so a killed build leaves the files finished so far (kept) and an unnamed tail (never read);
 * parts that no index names and whose writer is dead are removed by the next run.
 */
import { closeSync, existsSync, fstatSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, statSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { UserError } from "../base/errors.ts";
import { atomicWrite, describeFsError, errCode, tempFileWriter } from "../base/files.ts";
import { encodeBuffers, streamEncodeFile } from "../tokenizer/encode_file.ts";
import type { Tokenizer } from "../tokenizer/index.ts";
import { ContentHash, HASH_PIECE, type ScannedFile } from "./fingerprint.ts";
import { PassProgress } from "./progress.ts";
import type { Document, Documents } from "./windows.ts";

export const STORE_FORMAT = "train-vocab token store";
export const STORE_VERSION = 1;
const PART_MAGIC = "TVTOKIDS";
const PART_HEADER = 64;
/** A part is closed and the next one begun past this size, so that every map stays below 2^31 bytes. */
const PART_LIMIT = 1 << 30;
/** The index is rewritten after a file once this much time or this many bytes passed since the last time. */
const COMMIT_MS = 1000;
const COMMIT_BYTES = 64 << 20;
/** Test hook, as in src/base/files.ts: a pause after each file's ids, so kill tests can catch a build midway. */
const WRITE_DELAY_MS = Math.min(10_000, Math.max(0, Number(process.env.TRAIN_VOCAB_TEST_WRITE_DELAY_MS) || 0));

const hex16 = z.string().regex(/^[0-9a-f]{16}$/);
const whole = z.number().int().min(0);
const chunkSchema = z.object({ part: z.string().regex(/^tokens-[0-9a-f]{16}-\d+-[0-9a-z]+\.ids$/), offset: whole, count: whole }).strict();
const entrySchema = z.object({
  hash: hex16, size: whole, path: z.string(), mtime_ms: z.number(), count: whole, checksum: hex16, chunks: z.array(chunkSchema),
}).strict();
const indexSchema = z.object({
  format: z.literal(STORE_FORMAT), version: z.literal(STORE_VERSION), vocab_fingerprint: z.string(), id_bytes: z.union([z.literal(2), z.literal(4)]),
  entries: z.array(entrySchema),
  parts: z.record(z.string(), z.object({ size: whole, mtime_ms: z.number() }).strict()),
  checksum: hex16,
}).strict();

export type StoreEntry = z.infer<typeof entrySchema>;
type StoreIndex = z.infer<typeof indexSchema>;
/** A finished part's size and modification time, as its writer left it. */
type PartStat = { size: number; mtime_ms: number };

/** The index's checksum: XXH64 of its entries' and parts' JSON. */
export function indexChecksum(entries: unknown, parts: unknown): string {
  return xxhHex(JSON.stringify(entries) + JSON.stringify(parts));
}

/** Ids per file: 2 bytes for vocabularies of at most 65,536 tokens, else 4. */
export function idBytesFor(vocabSize: number): 2 | 4 {
  return vocabSize <= 65536 ? 2 : 4;
}

export interface StoredTokens extends Documents {
  /** Ids in the documents joined: theirs and the end-of-text ids between them. */
  tokens: number;
  /** Files tokenized by this run (the others came from the store). */
  tokenized: number;
  /** The store's index file. */
  index: string;
  /** Bytes of text tokenized, and per second of the tokenizing pass (0 when nothing was tokenized). */
  tokenizedBytes: number;
  rate: number;
}

/**
 * The ids of `files` (as scanned, in listing order): from the store where it has them, tokenized and
 * added to it where not. `note` hears about what was rebuilt and why.
 */
export function storedTokens(files: ScannedFile[], tokenizer: Tokenizer, dir: string, note: (message: string) => void, what = "--data"): StoredTokens {
  const store = new TokenStore(dir, tokenizer, note);
  const seen = new Set<string>();
  // A content listed twice (two copies of a file) is tokenized once.
  const missing = files.filter((f) => !store.usable(f) && !seen.has(keyOf(f)) && seen.add(keyOf(f)));
  const rate = missing.length > 0 ? store.tokenize(missing, tokenizer, what) : 0;
  store.recordCheckedParts();
  const documents = files.map((f) => store.document(f));
  const separators = tokenizer.endOfTextId === null ? 0 : Math.max(0, documents.length - 1);
  return {
    documents, endOfText: tokenizer.endOfTextId, tokens: separators + documents.reduce((s, d) => s + d.reduce((t, p) => t + p.length, 0), 0),
    tokenized: missing.length, index: store.indexPath, tokenizedBytes: missing.reduce((s, f) => s + f.size, 0), rate,
  };
}

const keyOf = (f: { hash: string; size: number }) => `${f.hash}:${f.size}`;
/** The ids' checksum starts from the file's key, so ids can never pass for another file's. */
const idsSeed = (f: { hash: string; size: number }) => BigInt.asUintN(64, BigInt(`0x${f.hash}`) ^ BigInt(f.size));

export class TokenStore {
  readonly indexPath: string;
  readonly idBytes: 2 | 4;
  private readonly prefix: string;
  private readonly vocab: string;
  private entries = new Map<string, StoreEntry>();
  /** Finished parts as their writers left them: ids in an unchanged part are not read again to check them. */
  private parts = new Map<string, PartStat>();
  private readonly verified = new Set<string>();
  private readonly maps = new Map<string, Uint8Array>();
  private readonly partStats = new Map<string, PartStat | null>();
  /** check()'s reads and its hash's stage, reused. */
  private readBuffers: Uint8Array[] | null = null;
  /** Paths the index has seen, to tell a changed file from a new one. */
  private paths: Set<string> | null = null;

  constructor(readonly dir: string, tokenizer: Tokenizer, private readonly note: (message: string) => void) {
    this.vocab = tokenizer.fingerprint;
    this.idBytes = idBytesFor(tokenizer.vocabSize);
    this.prefix = `tokens-${this.vocab.replace(/[^0-9a-f]/g, "").padEnd(16, "0").slice(0, 16)}`;
    this.indexPath = join(dir, `${this.prefix}.json`);
    try {
      mkdirSync(dir, { recursive: true });
    } catch (err) {
      throw new UserError(`Could not create the token store folder ${dir}: ${describeFsError(err)}.`);
    }
    const index = this.readIndex();
    for (const e of index.entries) this.entries.set(keyOf(e), e);
    for (const [name, stat] of Object.entries(index.parts)) this.parts.set(name, stat);
    this.sweep();
  }

  /** Whether the store holds this file's ids, whole and as written (checked once per run). */
  usable(f: ScannedFile): boolean {
    const e = this.entries.get(keyOf(f));
    if (!e) {
      this.paths ??= new Set([...this.entries.values()].map((x) => x.path));
      if (this.paths.has(f.path)) this.note(`Note: ${f.path} changed since it was tokenized: tokenizing it again.`);
      return false;
    }
    if (this.verified.has(keyOf(f))) return true;
    const problem = this.check(e);
    if (problem) {
      this.note(`Note: the token store's ids of ${f.path} are ${problem}: tokenizing it again.`);
      this.entries.delete(keyOf(f));
      return false;
    }
    this.verified.add(keyOf(f));
    return true;
  }

  /** A usable file's ids, as views into the maps of its parts. */
  document(f: ScannedFile): Document {
    const e = this.entries.get(keyOf(f));
    if (!e) throw new Error(`token store: no entry for ${f.path}`);
    return e.chunks.filter((c) => c.count > 0).map((c) => {
      const map = this.map(c.part);
      const at = map.byteOffset + c.offset;
      return this.idBytes === 2 ? new Uint16Array(map.buffer, at, c.count) : new Uint32Array(map.buffer, at, c.count);
    });
  }

  /** Tokenize `files` into a new part (or several), committing as it goes; returns bytes per second. */
  tokenize(files: ScannedFile[], tok: Tokenizer, what: string): number {
    const writer = new PartWriter(this.dir, this.prefix, this.vocab, this.idBytes);
    const progress = new PassProgress("tokenizing", files.length, files.reduce((s, f) => s + f.size, 0));
    const fresh: StoreEntry[] = [];
    let lastCommit = performance.now();
    let sinceCommit = 0;
    const maxId = this.idBytes === 2 ? 0xffff : 0xffffffff;
    const buffers = encodeBuffers();
    const stages = [new Uint8Array(HASH_PIECE), new Uint8Array(HASH_PIECE)];
    try {
      files.forEach((f, i) => {
        const content = new ContentHash(f.size, stages[0]);
        const checksum = new ContentHash(idsSeed(f), stages[1]);
        let count = 0;
        const start = writer.begin();
        const read = streamEncodeFile(tok, f.path, {
          read(bytes) {
            content.update(bytes);
            progress.advance(bytes.length);
          },
          ids(ids) {
            for (let k = 0; k < ids.length; k++) if (ids[k]! > maxId) throw new Error(`token store: id ${ids[k]} does not fit ${maxId}`);
            const out = writer.write(ids);
            checksum.update(out);
            count += ids.length;
          },
        }, what, buffers);
        if (read !== f.size || content.hex() !== f.hash) {
          throw new UserError(
            `${what} ${f.path}: it changed while it was being read (it is not what was hashed a moment ago). ` +
              "Run again once it no longer changes; the ids stored so far are kept.",
          );
        }
        const chunks = writer.chunksSince(start);
        fresh.push({ hash: f.hash, size: f.size, path: f.path, mtime_ms: f.mtimeMs, count, checksum: checksum.hex(), chunks });
        progress.fileDone(i + 1);
        sinceCommit += f.size;
        if (WRITE_DELAY_MS > 0) Bun.sleepSync(WRITE_DELAY_MS);
        const last = i === files.length - 1;
        if (last || WRITE_DELAY_MS > 0 || sinceCommit >= COMMIT_BYTES || performance.now() - lastCommit >= COMMIT_MS) {
          writer.sync();
          this.commit(fresh.splice(0), last ? writer.finished() : []);
          lastCommit = performance.now();
          sinceCommit = 0;
        }
      });
    } catch (err) {
      // The files finished before the failure are whole: keep them if the disk still lets us.
      try {
        if (fresh.length > 0) {
          writer.sync();
          this.commit(fresh.splice(0));
        }
      } catch {
        // the failure being reported is what matters
      }
      writer.abandon();
      if (err instanceof UserError || errCode(err) === undefined) throw err;
      throw new UserError(
        `Could not write the token store in ${this.dir}: ${describeFsError(err)}. ` +
          "Free some space, or give --token-cache a folder on another disk; the ids stored so far are kept.",
      );
    } finally {
      progress.done();
    }
    writer.close();
    return progress.rate();
  }

  /**
   * Parts whose writer died before finishing them are not in the index's `parts`, so their ids are
   * read to check them at every use. Once every entry in such a part has been checked in this run, the
   * part is recorded as it is now, and later runs trust it while it stays so.
   */
  recordCheckedParts(): void {
    const byPart = new Map<string, StoreEntry[]>();
    for (const e of this.entries.values()) for (const c of e.chunks) byPart.set(c.part, [...(byPart.get(c.part) ?? []), e]);
    const checked = [...byPart].filter(([name, entries]) => {
      const writer = new RegExp(`^${this.prefix}-(\\d+)-`).exec(name);
      return !this.parts.has(name) && writer !== null && !alive(Number(writer[1])) && entries.every((e) => this.verified.has(keyOf(e)));
    }).map(([name]) => name);
    if (checked.length === 0) return;
    try {
      this.commit([], checked);
    } catch {
      // a store that cannot be written now is only checked again next time
    }
  }

  /** Add entries to the index on disk (merged with what other runs sharing the store added meanwhile). */
  private commit(added: StoreEntry[], finished: string[] = []): void {
    const onDisk = this.readIndex(true);
    for (const e of onDisk.entries) if (!this.entries.has(keyOf(e))) this.entries.set(keyOf(e), e);
    for (const [name, stat] of Object.entries(onDisk.parts)) if (!this.parts.has(name)) this.parts.set(name, stat);
    for (const name of finished) {
      const st = statSync(join(this.dir, name));
      this.parts.set(name, { size: st.size, mtime_ms: st.mtimeMs });
    }
    for (const e of added) {
      this.entries.set(keyOf(e), e);
      this.verified.add(keyOf(e));
    }
    const entries = [...this.entries.values()];
    // Only parts some entry names are worth keeping track of.
    const named = new Set(entries.flatMap((e) => e.chunks.map((c) => c.part)));
    const parts = Object.fromEntries([...this.parts].filter(([name]) => named.has(name)));
    const index: StoreIndex = {
      format: STORE_FORMAT, version: STORE_VERSION, vocab_fingerprint: this.vocab, id_bytes: this.idBytes, entries, parts,
      checksum: indexChecksum(entries, parts),
    };
    atomicWrite(this.indexPath, JSON.stringify(index));
  }

  /** The index's entries and parts; a missing index is empty, a damaged one is said and started afresh. */
  private readIndex(quiet = false): { entries: StoreEntry[]; parts: Record<string, PartStat> } {
    const empty = { entries: [], parts: {} };
    if (!existsSync(this.indexPath)) return empty;
    let problem: string;
    try {
      const parsed = indexSchema.safeParse(JSON.parse(readFileSync(this.indexPath, "utf8")));
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        problem = `not a token store index (${issue?.path.length ? `${issue.path.join(".")}: ` : ""}${issue?.message})`;
      }
      else if (parsed.data.checksum !== indexChecksum(parsed.data.entries, parsed.data.parts)) problem = "damaged (its checksum does not match)";
      else if (parsed.data.vocab_fingerprint !== this.vocab || parsed.data.id_bytes !== this.idBytes) problem = "for another vocabulary";
      else return parsed.data;
    } catch (err) {
      problem = errCode(err) === undefined ? "damaged (not JSON)" : `unreadable (${describeFsError(err)})`;
    }
    if (!quiet) this.note(`Note: the token store index ${this.indexPath} is ${problem}: its files are tokenized again.`);
    return empty;
  }

  /** Remove parts no entry names whose writer is dead, and dead writers' temp files of the index. */
  private sweep(): void {
    const named = new Set([...this.entries.values()].flatMap((e) => e.chunks.map((c) => c.part)));
    const partName = new RegExp(`^${this.prefix}-(\\d+)-[0-9a-z]+\\.ids$`);
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return;
    }
    for (const name of names) {
      const part = partName.exec(name);
      const pid = part ? Number(part[1]) : name.startsWith(`.${this.prefix}.json.`) ? tempFileWriter(name) : null;
      if (pid === null || (part && named.has(name)) || alive(pid)) continue;
      try {
        unlinkSync(join(this.dir, name));
      } catch {
        // gone already, or not ours to remove: harmless either way
      }
    }
  }

  /**
   * What is wrong with an entry's ids, or null. Their places are always checked against the parts'
   * sizes; their checksum too unless every part is as its writer left it (size and modification
   * time). The ids are read with read(2), not through a map, so they do not count in the run's memory.
   */
  private check(e: StoreEntry): string | null {
    let unchanged = e.chunks.reduce((s, c) => s + c.count, 0) === e.count;
    for (const c of e.chunks) {
      const st = this.partStat(c.part);
      if (st === null) return `missing (${c.part} cannot be read, or is not this store's)`;
      if (c.offset < PART_HEADER || c.offset % this.idBytes !== 0 || c.offset + c.count * this.idBytes > st.size) return `incomplete (${c.part} is too short)`;
      const left = this.parts.get(c.part);
      if (!left || left.size !== st.size || left.mtime_ms !== st.mtime_ms) unchanged = false;
    }
    if (unchanged) return null;
    let total = 0;
    this.readBuffers ??= [new Uint8Array(HASH_PIECE), new Uint8Array(HASH_PIECE)];
    const [buf, stage] = this.readBuffers;
    const sum = new ContentHash(idsSeed(e), stage);
    for (const c of e.chunks) {
      const bytes = c.count * this.idBytes;
      const fd = openSync(join(this.dir, c.part), "r");
      try {
        for (let done = 0; done < bytes;) {
          const n = readSync(fd, buf, 0, Math.min(buf.length, bytes - done), c.offset + done);
          if (n === 0) return `incomplete (${c.part} is too short)`;
          sum.update(buf.subarray(0, n));
          done += n;
        }
      } finally {
        closeSync(fd);
      }
      total += c.count;
    }
    if (total !== e.count) return "inconsistent (their count does not add up)";
    if (sum.hex() !== e.checksum) return "damaged (their checksum does not match)";
    return null;
  }

  /** A part's size and modification time if its header is this store's, else null. */
  private partStat(part: string): PartStat | null {
    if (this.partStats.has(part)) return this.partStats.get(part)!;
    let stat: PartStat | null = null;
    try {
      const fd = openSync(join(this.dir, part), "r");
      try {
        const head = new Uint8Array(PART_HEADER);
        if (readSync(fd, head, 0, PART_HEADER, 0) === PART_HEADER && partHeaderMatches(head, this.vocab, this.idBytes)) {
          const st = fstatSync(fd);
          stat = { size: st.size, mtime_ms: st.mtimeMs };
        }
      } finally {
        closeSync(fd);
      }
    } catch {
      stat = null;
    }
    this.partStats.set(part, stat);
    return stat;
  }

  private map(part: string): Uint8Array {
    let m = this.maps.get(part);
    if (!m) {
      // Private and read-only in use: nothing written to the array could reach the file.
      m = Bun.mmap(join(this.dir, part), { shared: false });
      this.maps.set(part, m);
    }
    return m;
  }
}

/** Appends ids to parts of the store: the current part, and a new one when it grows past PART_LIMIT. */
class PartWriter {
  private fd: number | null = null;
  private name = "";
  private size = 0;
  private readonly chunks: { part: string; offset: number; count: number }[] = [];
  private readonly written: string[] = [];
  private committed = 0;
  private out16: Uint16Array = new Uint16Array(0);
  /** The next write begins a chunk (a new file, or a new part). */
  private newChunk = true;

  constructor(private readonly dir: string, private readonly prefix: string, private readonly vocab: string, private readonly idBytes: 2 | 4) {}

  /** Where the next file's chunks begin. */
  begin(): number {
    this.newChunk = true;
    return this.chunks.length;
  }

  /** Append ids; returns the bytes written (for the checksum). */
  write(ids: Uint32Array): Uint8Array {
    if (this.fd === null || this.size >= PART_LIMIT) this.open();
    let bytes: Uint8Array;
    if (this.idBytes === 2) {
      if (this.out16.length < ids.length) this.out16 = new Uint16Array(ids.length);
      const out = this.out16.subarray(0, ids.length);
      out.set(ids);
      bytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
    } else {
      bytes = new Uint8Array(ids.buffer, ids.byteOffset, ids.byteLength);
    }
    writeAll(this.fd!, bytes);
    if (this.newChunk) this.chunks.push({ part: this.name, offset: this.size, count: ids.length });
    else this.chunks.at(-1)!.count += ids.length;
    this.newChunk = false;
    this.size += bytes.length;
    return bytes;
  }

  /** The chunks of the file begun at `start` (none for an empty file). */
  chunksSince(start: number): { part: string; offset: number; count: number }[] {
    return this.chunks.slice(start).map((c) => ({ ...c }));
  }

  /** The parts this writer wrote, all finished once it is synced for the last time. */
  finished(): string[] {
    return [...this.written];
  }

  sync(): void {
    if (this.fd !== null) fsyncSync(this.fd);
    this.committed = this.chunks.length;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  /** After a failure: close, and remove the parts that hold nothing committed. */
  abandon(): void {
    try {
      this.close();
    } catch {
      // already failing
    }
    const kept = new Set(this.chunks.slice(0, this.committed).map((c) => c.part));
    for (const name of this.written) {
      if (kept.has(name)) continue;
      try {
        unlinkSync(join(this.dir, name));
      } catch {
        // nothing to remove
      }
    }
  }

  private open(): void {
    if (this.fd !== null) {
      fsyncSync(this.fd);
      this.close();
    }
    const stamp = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
    this.name = `${this.prefix}-${process.pid}-${stamp}.ids`;
    this.fd = openSync(join(this.dir, this.name), "wx", 0o644);
    this.written.push(this.name);
    writeAll(this.fd, partHeader(this.vocab, this.idBytes));
    this.size = PART_HEADER;
    this.newChunk = true;
  }
}

/** "TVTOKIDS" · u32 version · u32 id bytes · 32-byte ASCII vocabulary fingerprint · 16 bytes 0. */
function partHeader(vocab: string, idBytes: number): Uint8Array {
  const head = new Uint8Array(PART_HEADER);
  const dv = new DataView(head.buffer);
  head.set(new TextEncoder().encode(PART_MAGIC), 0);
  dv.setUint32(8, STORE_VERSION, true);
  dv.setUint32(12, idBytes, true);
  head.set(new TextEncoder().encode(vocab.slice(0, 32).padEnd(32, " ")), 16);
  return head;
}

function partHeaderMatches(head: Uint8Array, vocab: string, idBytes: number): boolean {
  const want = partHeader(vocab, idBytes);
  return head.every((b, i) => b === want[i]);
}

function writeAll(fd: number, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.length;) {
    const n = writeSync(fd, bytes, done, bytes.length - done);
    if (n <= 0) throw Object.assign(new Error("write made no progress"), { code: "EIO" });
    done += n;
  }
}

function xxhHex(text: string): string {
  return BigInt.asUintN(64, BigInt(Bun.hash.xxHash64(text))).toString(16).padStart(16, "0");
}

function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errCode(err) === "EPERM";
  }
}
