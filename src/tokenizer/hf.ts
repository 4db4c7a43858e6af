/**
 * HuggingFace tokenizer.json (ByteLevel BPE) export and import. HF's ByteLevel pre-tokenizer uses the
 * same GPT-2 split as ours, and its BPE applies merges by rank; we write merges in id order, so HF
 * encodes ordinary text to exactly our ids. (HF also matches special tokens written inside the text;
 * ours never does.)
 */
import { UserError } from "../base/errors.ts";
import { BpeTokenizer, KIND_BYTE, KIND_MERGE, KIND_SPECIAL, MAX_TOKEN_BYTES, type BpeVocab } from "./bpe.ts";

/** GPT-2's byte ↔ printable-character table: printable Latin-1 bytes stand for themselves, the rest
 * map to U+0100 onwards in byte order. */
function byteChars(): string[] {
  const chars: string[] = new Array(256);
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    chars[b] = String.fromCharCode(printable ? b : next++);
  }
  return chars;
}
const BYTE_CHAR = byteChars();
const CHAR_BYTE = new Map(BYTE_CHAR.map((c, b) => [c, b]));
const utf8 = new TextDecoder();

function hfString(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += BYTE_CHAR[b];
  return s;
}

export function exportHuggingFace(tok: BpeTokenizer): string {
  const v = tok.vocab;
  const vocab: Record<string, number> = {};
  const merges: [string, string][] = [];
  const added: object[] = [];
  for (let i = 0; i < tok.vocabSize; i++) {
    if (v.kinds[i] === KIND_SPECIAL) {
      const content = utf8.decode(v.tokens[i]);
      vocab[content] = i;
      added.push({ id: i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
      continue;
    }
    vocab[hfString(v.tokens[i]!)] = i;
    if (v.kinds[i] === KIND_MERGE) merges.push([hfString(v.tokens[v.left[i]!]!), hfString(v.tokens[v.right[i]!]!)]);
  }
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
  const json = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: { ...byteLevel, trim_offsets: false },
    decoder: byteLevel,
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
  return JSON.stringify(json, null, 2) + "\n";
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Read a HF tokenizer.json holding a byte-level BPE; anything we cannot reproduce exactly is refused. */
export function importHuggingFace(text: string, path: string): BpeTokenizer {
  const fail = (msg: string, hint = "Only byte-level BPE tokenizers (GPT-2 style) can be imported"): never => {
    throw new UserError(`${path}: ${msg}. ${hint}.`);
  };
  let root: Json;
  try {
    root = JSON.parse(text) as Json;
  } catch (err) {
    return fail(`not valid JSON (${(err as Error).message})`, "Give a tokenizer.json saved by HuggingFace tokenizers");
  }
  const obj = (x: Json | undefined): x is { [k: string]: Json } => typeof x === "object" && x !== null && !Array.isArray(x);
  if (!obj(root)) return fail("the top level is not a JSON object");
  const model = root.model;
  if (!obj(model)) return fail('there is no "model" object');
  if (model.type !== "BPE") fail(`model.type is ${JSON.stringify(model.type)}, not "BPE"`);
  if (model.dropout != null && model.dropout !== 0) fail("BPE dropout is not supported");
  if (model.continuing_subword_prefix || model.end_of_word_suffix) fail("subword prefixes/suffixes are not supported");
  if (model.ignore_merges === true) fail("ignore_merges=true is not supported");
  if (root.normalizer != null) fail("a normalizer is not supported (ours encodes the raw bytes)");
  const pre = root.pre_tokenizer;
  if (!obj(pre) || pre.type !== "ByteLevel" || pre.use_regex === false || pre.add_prefix_space === true) {
    fail("the pre_tokenizer must be ByteLevel with use_regex=true and add_prefix_space=false");
  }
  const vocabJson = model.vocab;
  if (!obj(vocabJson)) return fail("model.vocab is not an object");
  const entries = Object.entries(vocabJson);
  const added = Array.isArray(root.added_tokens) ? root.added_tokens : [];
  const n = entries.length + added.length; // upper bound; ids must be 0..size-1
  if (n > 1 << 24) fail("the vocabulary is too large");
  const byId: (string | undefined)[] = [];
  const special = new Set<number>();
  const idOf = new Map<string, number>();
  for (const [tokenText, id] of entries) {
    if (typeof id !== "number" || !Number.isInteger(id) || id < 0 || id >= n) fail(`model.vocab ${JSON.stringify(tokenText).slice(0, 40)} has a bad id ${String(id).slice(0, 20)}`);
    if (byId[id as number] !== undefined) fail(`id ${id} is used twice in model.vocab`);
    byId[id as number] = tokenText;
    idOf.set(tokenText, id as number);
  }
  for (const a of added) {
    if (!obj(a) || typeof a.id !== "number" || typeof a.content !== "string") return fail("added_tokens holds a malformed entry");
    if (a.special !== true) fail(`added token ${JSON.stringify(a.content).slice(0, 40)} is not special`);
    const id = a.id as number;
    if (!Number.isInteger(id) || id < 0 || id >= n) fail(`added token id ${id} is out of range`);
    if (byId[id] !== undefined && byId[id] !== a.content) fail(`id ${id} names two different tokens`);
    byId[id] = a.content as string;
    special.add(id);
  }
  const size = byId.length;
  for (let i = 0; i < size; i++) if (byId[i] === undefined) fail(`id ${i} is missing (ids must run 0..${size - 1})`);

  const kinds = new Uint8Array(size).fill(255);
  const left = new Int32Array(size).fill(-1);
  const right = new Int32Array(size).fill(-1);
  const tokens: Uint8Array[] = new Array(size);
  for (let i = 0; i < size; i++) {
    const t = byId[i]!;
    if (special.has(i)) {
      kinds[i] = KIND_SPECIAL;
      tokens[i] = new TextEncoder().encode(t);
      if (tokens[i]!.length > MAX_TOKEN_BYTES) fail(`special token id ${i} is ${tokens[i]!.length} bytes, longer than the ${MAX_TOKEN_BYTES} a token may have`, "The file is damaged or not a tokenizer train-vocab can use");
      continue;
    }
    const bytes = new Uint8Array(t.length);
    let k = 0;
    for (const ch of t) {
      const b = CHAR_BYTE.get(ch);
      if (b === undefined) fail(`token ${JSON.stringify(t).slice(0, 40)} (id ${i}) is not in the byte-level alphabet`);
      bytes[k++] = b!;
    }
    tokens[i] = bytes.subarray(0, k);
    if (k > MAX_TOKEN_BYTES) fail(`token id ${i} is ${k} bytes, longer than the ${MAX_TOKEN_BYTES} a token may have`, "The file is damaged or not a tokenizer train-vocab can use");
    if (k === 1) kinds[i] = KIND_BYTE;
  }
  const merges = model.merges;
  if (!Array.isArray(merges)) return fail("model.merges is not a list");
  let lastChild = -1;
  merges.forEach((m, rank) => {
    let pair: [string, string] | null = null;
    if (typeof m === "string") {
      const parts = m.split(" ");
      if (parts.length === 2) pair = [parts[0]!, parts[1]!];
    } else if (Array.isArray(m) && m.length === 2 && typeof m[0] === "string" && typeof m[1] === "string") {
      pair = [m[0], m[1]];
    }
    if (!pair) return fail(`merge ${rank} is malformed`);
    const a = idOf.get(pair[0]), b = idOf.get(pair[1]), child = idOf.get(pair[0] + pair[1]);
    if (a === undefined || b === undefined || child === undefined) return fail(`merge ${rank} (${JSON.stringify(pair).slice(0, 60)}) uses a token missing from model.vocab`);
    if (special.has(a) || special.has(b) || special.has(child)) return fail(`merge ${rank} involves a special token`);
    if (kinds[child] === KIND_MERGE) return fail(`token id ${child} is made by two merges`, "train-vocab keeps one merge per token");
    if (child <= lastChild || a >= child || b >= child) {
      return fail(`merge ${rank} makes id ${child}, out of id order`, "train-vocab needs merge order = id order (a merge's rank is its id)");
    }
    lastChild = child;
    kinds[child] = KIND_MERGE;
    left[child] = a;
    right[child] = b;
  });
  const seen = new Uint8Array(256);
  for (let i = 0; i < size; i++) {
    if (kinds[i] === 255) fail(`token ${JSON.stringify(byId[i]).slice(0, 40)} (id ${i}) is made by no merge`);
    if (kinds[i] === KIND_BYTE) seen[tokens[i]![0]!] = 1;
  }
  for (let b = 0; b < 256; b++) if (!seen[b]) fail(`byte ${b} has no token`, "A byte-level vocabulary needs all 256 bytes");
  const vocab: BpeVocab = { kinds, left, right, tokens };
  return new BpeTokenizer(vocab);
}
