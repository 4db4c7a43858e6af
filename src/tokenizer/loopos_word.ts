/**
 * LoopOS's word-level vocabulary, read so that its users can resume their runs:
 *
 *   # Tokenizer Vocabulary            ('#' lines and blank lines are skipped)
 *   vocab_size=<N>                    (before "---" only next_id= and total_tokens= matter)
 *   ---
 *   0<TAB><pad>                       (then <id><TAB><word>, ids 0..5 are LoopOS's specials)
 *
 * Tokenization follows LoopOS: ASCII-lowercase; split on ASCII whitespace and on every ASCII
 * punctuation byte (each one a token); bytes >= 0x80 are word characters; unknown words are id 1.
 */
import { UserError } from "../base/errors.ts";
import { fingerprintOf } from "./fingerprint.ts";
import type { Tokenizer } from "./types.ts";

export const LOOPOS_UNK_ID = 1;
/** <pad> <unk> <bos> <eos> <|user|> <|assistant|>: skipped when decoding. */
export const LOOPOS_SPECIALS = 6;

const enc = new TextEncoder();
const dec = new TextDecoder();

const PUNCT = new Uint8Array(256);
for (const c of "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~") PUNCT[c.charCodeAt(0)] = 1;
const SPACE = new Uint8Array(256);
for (const c of [0x20, 0x09, 0x0a, 0x0b, 0x0c, 0x0d]) SPACE[c] = 1;

export class LoopOSWordTokenizer implements Tokenizer {
  readonly type = "loopos-word" as const;
  readonly vocabSize: number;
  readonly fingerprint: string;
  readonly endOfTextId = null;
  /** Word per id (its UTF-8 bytes as a latin1 string, so any byte is a key). */
  readonly words: string[];
  private readonly ids: Map<string, number>;

  constructor(words: string[]) {
    this.words = words;
    this.vocabSize = words.length;
    this.ids = new Map(words.map((w, i) => [w, i]));
    // The tag is hashed as it was before the rename: checkpoints and token caches hold these fingerprints.
    this.fingerprint = fingerprintOf(["seed-word v1\n", words.join("\n")]);
  }

  encode(text: string | Uint8Array): Uint32Array {
    const b = typeof text === "string" ? enc.encode(text) : text;
    const out: number[] = [];
    let word = "";
    const flush = () => {
      if (word) out.push(this.ids.get(word) ?? LOOPOS_UNK_ID);
      word = "";
    };
    for (let i = 0; i < b.length; i++) {
      let c = b[i]!;
      if (SPACE[c]) flush();
      else if (PUNCT[c]) {
        flush();
        out.push(this.ids.get(String.fromCharCode(c)) ?? LOOPOS_UNK_ID);
      } else {
        if (c >= 0x41 && c <= 0x5a) c += 32;
        word += String.fromCharCode(c);
      }
    }
    flush();
    return Uint32Array.from(out);
  }

  decode(ids: ArrayLike<number>): string {
    let out = "";
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new RangeError(`token id ${id} at position ${i} is outside the vocabulary (0..${this.vocabSize - 1})`);
      }
      if (id < LOOPOS_SPECIALS) continue;
      const w = this.words[id]!;
      const startsWithPunct = w.length > 0 && PUNCT[w.charCodeAt(0)] === 1;
      if (out.length > 0 && !startsWithPunct) out += " ";
      out += w;
    }
    return dec.decode(latin1Bytes(out));
  }

  decodeBytes(ids: ArrayLike<number>): Uint8Array {
    return enc.encode(this.decode(ids));
  }
}

function latin1Bytes(s: string): Uint8Array {
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
  return b;
}

/** Does this file look like LoopOS's format (first meaningful line a comment or key=value)? */
export function looksLikeLoopOSVocab(bytes: Uint8Array): boolean {
  const head = dec.decode(bytes.subarray(0, 256)); // drops a byte order mark
  return head.startsWith("# Tokenizer Vocabulary") || /^(#[^\n]*\n|\s*\n)*(vocab_size|next_id|total_tokens)=/.test(head) || /^(#[^\n]*\n|\s*\n)*---\r?\n/.test(head);
}

/** Parse a LoopOS .vocab file; every problem names its line. */
export function parseLoopOSVocab(bytes: Uint8Array, path: string): LoopOSWordTokenizer {
  const fail = (line: number, msg: string): never => {
    throw new UserError(`${path}:${line}: ${msg}. This looks like a LoopOS word vocabulary; rebuild it or restore the original file`);
  };
  // Split into lines by bytes: words may be any bytes >= 0x80. A byte order mark, as some editors
  // save, is not part of the first line.
  const text = latin1String(bytes.subarray(startsWithBom(bytes) ? 3 : 0));
  const lines = text.split("\n");
  if (lines.length && lines[lines.length - 1] === "") lines.pop();
  let i = 0;
  let sawSeparator = false;
  for (; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, "");
    if (line === "" || line.startsWith("#")) continue;
    if (line === "---") {
      sawSeparator = true;
      i++;
      break;
    }
    const kv = /^([a-z_]+)=(.*)$/.exec(line);
    if (!kv) fail(i + 1, `expected key=value or "---" in the header, found ${JSON.stringify(line.slice(0, 40))}`);
    if ((kv![1] === "next_id" || kv![1] === "total_tokens") && !/^\d{1,15}$/.test(kv![2]!)) {
      fail(i + 1, `${kv![1]} must be a whole number`);
    }
  }
  if (!sawSeparator) fail(lines.length || 1, 'the "---" line that ends the header is missing');
  const byId = new Map<number, { word: string; line: number }>();
  const byWord = new Map<string, number>();
  for (; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, "");
    if (line === "" || line.startsWith("#")) continue;
    const tab = line.indexOf("\t");
    if (tab < 0) fail(i + 1, "expected <id><TAB><word>");
    const idText = line.slice(0, tab);
    if (!/^\d{1,8}$/.test(idText)) fail(i + 1, `"${idText.slice(0, 20)}" is not an id`);
    const id = Number(idText);
    let word = line.slice(tab + 1);
    const tab2 = word.indexOf("\t"); // an optional frequency column
    if (tab2 >= 0) word = word.slice(0, tab2);
    if (word === "") fail(i + 1, "the word is empty");
    if (byId.has(id)) fail(i + 1, `id ${id} appears twice (first on line ${byId.get(id)!.line})`);
    if (byWord.has(word)) fail(i + 1, `the word appears twice (also id ${byWord.get(word)})`);
    byId.set(id, { word, line: i + 1 });
    byWord.set(word, id);
  }
  const n = byId.size;
  if (n <= LOOPOS_SPECIALS) fail(lines.length || 1, `only ${n} entries (LoopOS's 6 specials and at least one word are needed)`);
  const words: string[] = new Array(n);
  for (const [id, { word, line }] of byId) {
    if (id >= n) fail(line, `id ${id} is out of range: the file has ${n} entries, so ids must be 0..${n - 1}`);
    words[id] = word;
  }
  return new LoopOSWordTokenizer(words);
}

function startsWithBom(b: Uint8Array): boolean {
  return b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf;
}

function latin1String(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192));
  return s;
}
