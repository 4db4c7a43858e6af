/**
 * Our .vocab file: readable text, checked line by line on load.
 *
 *   train-vocab vocab 1
 *   type=bpe
 *   pretokenizer=gpt2
 *   vocab_size=32000
 *   merges=31743
 *   specials="<|endoftext|>"
 *   fingerprint=<32 hex digits: hash of every entry>
 *   ---
 *   0<TAB>"\x00"<TAB>byte
 *   …
 *   256<TAB>"<|endoftext|>"<TAB>special
 *   257<TAB>" t"<TAB>32 116            (a merge: the token and the two ids it joins)
 *
 * Tokens are quoted with escapes (see escape.ts). Every check names the line of the first problem.
 */
import { UserError } from "../base/errors.ts";
import { BpeTokenizer, bpeFingerprint, KIND_BYTE, KIND_MERGE, KIND_SPECIAL, MAX_TOKEN_BYTES, PRETOKENIZER, type BpeVocab } from "./bpe.ts";
import { escapeToken, unescapeToken } from "./escape.ts";

export const MAGIC = "train-vocab vocab";
export const VERSION = 1;
/** Enough for any real vocabulary; refuses absurd headers before allocating. */
export const MAX_VOCAB_SIZE = 1 << 24;

export function formatVocabFile(tok: BpeTokenizer): string {
  const v = tok.vocab;
  const lines: string[] = [
    `${MAGIC} ${VERSION}`,
    "type=bpe",
    `pretokenizer=${PRETOKENIZER}`,
    `vocab_size=${tok.vocabSize}`,
    `merges=${tok.mergeCount}`,
    `specials=${tok.specialIds.map((i) => escapeToken(v.tokens[i]!)).join(" ")}`,
    `fingerprint=${tok.fingerprint}`,
    "---",
  ];
  for (let i = 0; i < tok.vocabSize; i++) {
    const kind = v.kinds[i];
    const what = kind === KIND_BYTE ? "byte" : kind === KIND_SPECIAL ? "special" : `${v.left[i]} ${v.right[i]}`;
    lines.push(`${i}\t${escapeToken(v.tokens[i]!)}\t${what}`);
  }
  return lines.join("\n") + "\n";
}

const HEADER_KEYS = ["type", "pretokenizer", "vocab_size", "merges", "specials", "fingerprint"] as const;

/** Parse and check a .vocab file's text; `path` is for messages. */
export function parseVocabFile(text: string, path: string): BpeTokenizer {
  const lines = text.replace(/^\uFEFF/, "").split("\n"); // a byte order mark, as some editors save
  if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
  const fail = (line: number, msg: string, hint = ""): never => {
    throw new UserError(`${path}:${line}: ${msg}${hint ? `. ${hint}` : ""}`);
  };
  const rebuild = "Rebuild the vocabulary (delete the file and train again) or restore it from a copy";
  if (lines.length === 0) fail(1, "the file is empty", rebuild);
  const first = lines[0]!.replace(/\r$/, "");
  const m = /^train-vocab vocab (\d{1,9})$/.exec(first);
  if (!m) fail(1, `not a train-vocab vocabulary (the first line should be "${MAGIC} ${VERSION}")`);
  if (Number(m![1]) !== VERSION) fail(1, `format version ${m![1]} is not supported (this build reads version ${VERSION})`, "Use a newer train-vocab");

  // header
  const header = new Map<string, { value: string; line: number }>();
  let ln = 1;
  for (;;) {
    if (ln >= lines.length) fail(ln, 'the header never ends (missing the "---" line)', rebuild);
    const line = lines[ln]!.replace(/\r$/, "");
    ln++;
    if (line === "---") break;
    const eq = line.indexOf("=");
    if (eq <= 0) fail(ln, `expected key=value in the header, found ${JSON.stringify(line.slice(0, 60))}`);
    const key = line.slice(0, eq);
    if (!(HEADER_KEYS as readonly string[]).includes(key)) fail(ln, `unknown header key "${key.slice(0, 40)}"`);
    if (header.has(key)) fail(ln, `header key "${key}" appears twice (first on line ${header.get(key)!.line})`);
    header.set(key, { value: line.slice(eq + 1), line: ln });
  }
  const headerEnd = ln; // 1-based number of the "---" line
  for (const key of HEADER_KEYS) if (!header.has(key)) fail(headerEnd, `the header has no "${key}=" line`, rebuild);
  const get = (k: string) => header.get(k)!;
  if (get("type").value !== "bpe") fail(get("type").line, `type "${get("type").value.slice(0, 40)}" is not supported (expected "bpe")`);
  if (get("pretokenizer").value !== PRETOKENIZER) fail(get("pretokenizer").line, `pretokenizer "${get("pretokenizer").value.slice(0, 40)}" is not supported (expected "${PRETOKENIZER}")`);
  const count = (k: string, min: number, max: number): number => {
    const { value, line } = get(k);
    if (!/^\d{1,9}$/.test(value) || Number(value) < min || Number(value) > max) fail(line, `${k}=${value.slice(0, 40)} must be a whole number in ${min}..${max}`);
    return Number(value);
  };
  const vocabSize = count("vocab_size", 257, MAX_VOCAB_SIZE);
  const mergesDeclared = count("merges", 0, MAX_VOCAB_SIZE);
  const specialNames: Uint8Array[] = [];
  {
    const { value, line } = get("specials");
    let i = 0;
    while (i < value.length) {
      const r = unescapeToken(value, i);
      if ("error" in r) fail(line, `specials: ${r.error}`);
      const ok = r as { bytes: Uint8Array; end: number };
      specialNames.push(ok.bytes);
      i = ok.end;
      if (i < value.length) {
        if (value[i] !== " ") fail(line, "specials: separate the quoted names with one space");
        i++;
      }
    }
  }
  const fingerprint = get("fingerprint").value;
  if (!/^[0-9a-f]{32}$/.test(fingerprint)) fail(get("fingerprint").line, "fingerprint must be 32 lowercase hex digits");
  if (lines.length - headerEnd < vocabSize) {
    fail(lines.length, `the file is truncated: vocab_size=${vocabSize} but only ${lines.length - headerEnd} entries follow the header`, rebuild);
  }
  if (lines.length - headerEnd > vocabSize) {
    fail(headerEnd + vocabSize + 1, `more entries than vocab_size=${vocabSize}`, "The header and the entries disagree");
  }

  // entries
  const kinds = new Uint8Array(vocabSize);
  const left = new Int32Array(vocabSize).fill(-1);
  const right = new Int32Array(vocabSize).fill(-1);
  const tokens: Uint8Array[] = new Array(vocabSize);
  const byteSeen = new Int32Array(256).fill(-1);
  const byBytes = new Map<string, number>(); // token bytes (latin1) → id
  const byPair = new Map<number, number>(); // merge (left·2^24 + right) → id
  const specialsFound: number[] = [];
  let merges = 0;
  for (let id = 0; id < vocabSize; id++) {
    const lineNo = headerEnd + id + 1;
    const line = lines[headerEnd + id]!.replace(/\r$/, "");
    const tab = line.indexOf("\t");
    if (tab < 0) fail(lineNo, "expected <id><TAB>\"token\"<TAB>byte|special|<left> <right>");
    const idText = line.slice(0, tab);
    if (!/^\d{1,9}$/.test(idText)) fail(lineNo, `"${idText.slice(0, 20)}" is not an id`);
    const gotId = Number(idText);
    if (gotId !== id) {
      if (gotId < id) fail(lineNo, `id ${gotId} appears twice (ids must be 0, 1, 2, … in order)`);
      fail(lineNo, `expected id ${id}, found ${gotId} (ids must be 0, 1, 2, … in order, none missing)`);
    }
    const r = unescapeToken(line, tab + 1);
    if ("error" in r) fail(lineNo, r.error, 'Tokens are written as "…" with \\\\, \\", \\n, \\t, \\r or \\xHH escapes');
    const { bytes, end } = r as { bytes: Uint8Array; end: number };
    if (bytes.length > MAX_TOKEN_BYTES) fail(lineNo, `the token is ${bytes.length} bytes, longer than the ${MAX_TOKEN_BYTES} a token may have`, rebuild);
    if (line[end] !== "\t") fail(lineNo, "expected a TAB after the token");
    const what = line.slice(end + 1);
    const key = latin1(bytes);
    const prev = byBytes.get(key);
    if (prev !== undefined) fail(lineNo, `token ${escapeToken(bytes).slice(0, 60)} duplicates id ${prev}`);
    byBytes.set(key, id);
    tokens[id] = bytes;
    if (what === "byte") {
      if (bytes.length !== 1) fail(lineNo, "a byte token must hold exactly one byte");
      if (byteSeen[bytes[0]!]! >= 0) fail(lineNo, `byte ${bytes[0]} is already id ${byteSeen[bytes[0]!]}`);
      byteSeen[bytes[0]!] = id;
      kinds[id] = KIND_BYTE;
    } else if (what === "special") {
      if (bytes.length === 0) fail(lineNo, "a special token needs a name");
      kinds[id] = KIND_SPECIAL;
      specialsFound.push(id);
    } else {
      const pm = /^(\d{1,9}) (\d{1,9})$/.exec(what);
      if (!pm) fail(lineNo, `expected "byte", "special" or two parent ids, found ${JSON.stringify(what.slice(0, 40))}`);
      const a = Number(pm![1]), b = Number(pm![2]);
      if (a >= id || b >= id) fail(lineNo, `merge parents ${a} and ${b} must both be earlier ids than ${id}`);
      if (kinds[a] === KIND_SPECIAL || kinds[b] === KIND_SPECIAL) fail(lineNo, "a special token cannot be a merge parent");
      const ta = tokens[a]!, tb = tokens[b]!;
      if (ta.length + tb.length !== bytes.length || !startsWith(bytes, ta, 0) || !startsWith(bytes, tb, ta.length)) {
        fail(lineNo, `the token is not the bytes of ${a} followed by ${b}`);
      }
      const pk = a * 0x1000000 + b;
      if (byPair.has(pk)) fail(lineNo, `merge ${a} ${b} already makes id ${byPair.get(pk)}`);
      byPair.set(pk, id);
      kinds[id] = KIND_MERGE;
      left[id] = a;
      right[id] = b;
      merges++;
    }
  }
  for (let b = 0; b < 256; b++) {
    if (byteSeen[b]! < 0) fail(headerEnd, `byte ${b} has no token (a byte-level vocabulary needs all 256)`, rebuild);
  }
  if (merges !== mergesDeclared) fail(get("merges").line, `merges=${mergesDeclared} but the file has ${merges} merge entries`);
  const listed = specialNames.map(latin1).join("\u0000");
  const found = specialsFound.map((i) => latin1(tokens[i]!)).join("\u0000");
  if (listed !== found) fail(get("specials").line, "specials= does not list the special entries in id order");
  const vocab: BpeVocab = { kinds, left, right, tokens };
  const actual = bpeFingerprint(vocab);
  if (actual !== fingerprint) {
    fail(get("fingerprint").line, `fingerprint ${fingerprint} does not match the entries (${actual})`, "The file was edited or damaged; " + rebuild.toLowerCase());
  }
  return new BpeTokenizer(vocab);
}

function latin1(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192));
  return s;
}

function startsWith(whole: Uint8Array, part: Uint8Array, at: number): boolean {
  for (let i = 0; i < part.length; i++) if (whole[at + i] !== part[i]) return false;
  return true;
}
