/** `train_vocab tokenizer train|encode|decode|inspect|export-hf|import-hf`: the vocabulary on its own. */
import type { CAC } from "cac";
import { closeSync, openSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { UserError } from "../base/errors.ts";
import { describeFsError, errCode, isFile, whyUnreadable } from "../base/files.ts";
import { checkWritable, Outputs, refuseToReplace } from "../base/overwrite.ts";
import type { Tokenizer } from "../tokenizer/types.ts";
import { wholeNumber } from "./use_flags.ts";

const ACTIONS = ["train", "encode", "decode", "inspect", "export-hf", "import-hf"] as const;
type Action = (typeof ACTIONS)[number];
type Format = "text" | "u16" | "u32";

interface Options {
  data?: string;
  vocab: string;
  vocabSize: number;
  minFrequency: number;
  out?: string;
  format: string;
  overwrite?: boolean;
}

export function registerTokenizer(cli: CAC): void {
  cli
    .command("tokenizer <action> [file]", `Vocabulary tools: ${ACTIONS.join("|")}`)
    .option("--data <path>", "train: text file or folder (walked recursively, sorted)")
    .option("--vocab <file>", "The .vocab file to write (train, import-hf) or read", { default: "outputs/tokenizer.vocab" })
    .option("--vocab-size <n>", "train: tokens wanted, counting 256 bytes and the specials (integer, at least 258)", { default: 10000 })
    .option("--min-frequency <n>", "train: stop when the best pair occurs fewer times (integer >= 1)", { default: 2 })
    .option("--out <file>", "encode/decode/export-hf: output file (default: stdout; export-hf: tokenizer.json)")
    .option("--format <fmt>", "encode/decode: ids as text, or binary little-endian u16/u32", { default: "text" })
    .option("--overwrite", "train, import-hf, export-hf: replace an existing --vocab or --out (a model trained with a vocabulary needs that exact file)")
    .example("train_vocab tokenizer train --data corpus/ --vocab out/tokenizer.vocab --vocab-size 32000")
    .example("train_vocab tokenizer encode notes.txt --vocab out/tokenizer.vocab --format u32 --out notes.ids")
    .example("train_vocab tokenizer inspect sample.txt --vocab out/tokenizer.vocab")
    .action(async (action: string, file: string | undefined, options: Options) => {
      if (!(ACTIONS as readonly string[]).includes(action)) {
        throw new UserError(`tokenizer: unknown action "${action}". Use one of: ${ACTIONS.join(", ")}.`);
      }
      await run(action as Action, file, options);
    });
}

/** A vocabulary (or tokenizer.json) about to be written: never over an existing one without
 * --overwrite, and a place that cannot be written is found before the slow work. */
function checkVocabTarget(path: string, flag: string, overwrite: boolean | undefined): void {
  refuseToReplace(path, overwrite === true, {
    what: "a vocabulary",
    flag,
    waysOut: [`give another ${flag} (a model trained with ${path} needs that exact file)`],
  });
  checkWritable(path, flag);
}

function parseFormat(value: string): Format {
  if (value === "text" || value === "u16" || value === "u32") return value;
  throw new UserError(`--format ${value}: expected text, u16 or u32.`);
}

/** What to give instead, said after each refusal of an input. */
const EXPECTED = {
  encode: "Give the text file to encode, or - to read standard input.",
  decode: "Give the file of ids that tokenizer encode wrote, or - to read standard input.",
  inspect: "Give a text file to measure the vocabulary on, or leave it out.",
  "import-hf": "Give the tokenizer.json file to import (the HuggingFace tokenizers format).",
  vocab: "Give the .vocab file that tokenizer train wrote (default outputs/tokenizer.vocab).",
} as const;

/**
 * An input the user named, checked before any work: missing, a folder, or unreadable is a one-line
 * error naming it as given (`label`: "--vocab", "tokenizer encode") and saying what to give instead.
 * A folder holding `usual` (the file a user most likely meant) gets "Did you mean <folder>/<usual>?";
 * one without it gets `expected` and `folderHint`. Pipes and devices (`<(...)`, /dev/stdin) pass:
 * they are read as they come.
 */
function checkInputFile(path: string, label: string, expected: string, usual?: string, folderHint = ""): void {
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    if (errCode(err) === undefined) throw err;
    throw new UserError(`${label} ${path}: ${whyUnreadable(err)}. ${expected}`);
  }
  if (st.isDirectory()) {
    const guess = usual ? join(path, usual) : undefined;
    const hint = guess && isFile(guess) ? `Did you mean ${guess}?` : `${expected}${folderHint}`;
    throw new UserError(`${label} ${path}: that is a folder, not a file. ${hint}`);
  }
  if (!st.isFile()) return;
  try {
    closeSync(openSync(path, "r"));
  } catch (err) {
    if (errCode(err) === undefined) throw err;
    throw new UserError(`${label} ${path}: cannot read it (${whyUnreadable(err)}). Check its permissions, or give another file.`);
  }
}

/** The --vocab to read, checked as checkInputFile does. */
function checkVocab(path: string): void {
  checkInputFile(path, "--vocab", EXPECTED.vocab, "tokenizer.vocab");
}

/** The positional input, or standard input for none or "-"; a file is checked as checkInputFile does. */
function checkInput(file: string | undefined, action: "encode" | "decode" | "inspect"): void {
  if (file && file !== "-") checkInputFile(file, `tokenizer ${action}`, EXPECTED[action]);
}

function readInput(file: string | undefined, action: "encode" | "decode" | "inspect"): Uint8Array {
  if (!file || file === "-") return new Uint8Array(readFileSync(0));
  try {
    return new Uint8Array(readFileSync(file));
  } catch (err) {
    if (errCode(err) === undefined) throw err;
    throw new UserError(`tokenizer ${action} ${file}: cannot read it (${whyUnreadable(err)}). ${EXPECTED[action]}`);
  }
}

/** encode/decode's --out, when it is a file: a folder in its way is found before the work. */
function checkOut(out: string | undefined): void {
  if (out && out !== "-") checkWritable(out, "--out");
}

function writeOutput(out: string | undefined, data: Uint8Array | string): void {
  if (!out || out === "-") {
    if (typeof data === "string") process.stdout.write(data);
    else writeFileSync(1, data);
    return;
  }
  try {
    writeFileSync(out, data);
  } catch (err) {
    if (errCode(err) === undefined) throw err;
    const hint = errCode(err) === "ENOENT" ? "Create the folder first or check the path." : "Give another --out.";
    throw new UserError(`--out ${out}: cannot write it (${describeFsError(err)}). ${hint}`);
  }
}

async function run(action: Action, file: string | undefined, o: Options): Promise<void> {
  const t = await import("../tokenizer/index.ts");
  const log = (msg: string) => console.error(msg);
  switch (action) {
    case "train": {
      if (!o.data) throw new UserError("tokenizer train: --data is required (a text file or a folder of them).");
      const vocabSize = wholeNumber("--vocab-size", o.vocabSize, 258, undefined, "256 byte tokens, 1 special, 1 merge");
      const minFrequency = wholeNumber("--min-frequency", o.minFrequency, 1);
      checkVocabTarget(o.vocab, "--vocab", o.overwrite);
      const tok = t.trainTokenizer({ data: o.data, vocabSize, minFrequency, log });
      saveVocab(tok, o.vocab, t.saveTokenizer);
      log(`wrote ${o.vocab} (vocab_size ${tok.vocabSize}, fingerprint ${tok.fingerprint})`);
      return;
    }
    case "encode": {
      const format = parseFormat(o.format);
      checkInput(file, "encode");
      checkVocab(o.vocab);
      checkOut(o.out);
      const tok = t.loadTokenizer(o.vocab);
      const ids = file && file !== "-" ? t.encodeFile(tok, file) : tok.encode(readInput(file, "encode"));
      writeOutput(o.out, idsToOutput(ids, format, tok.vocabSize));
      return;
    }
    case "decode": {
      const format = parseFormat(o.format);
      checkInput(file, "decode");
      checkVocab(o.vocab);
      checkOut(o.out);
      const tok = t.loadTokenizer(o.vocab);
      const ids = parseIds(readInput(file, "decode"), format, file ?? "stdin");
      for (let i = 0; i < ids.length; i++) {
        if (ids[i]! >= tok.vocabSize) {
          throw new UserError(`${file ?? "stdin"}: id ${ids[i]} (number ${i + 1}) is outside the vocabulary 0..${tok.vocabSize - 1} of ${o.vocab}.`);
        }
      }
      writeOutput(o.out, tok.decodeBytes(ids));
      return;
    }
    case "inspect": {
      // The sample is checked before the report is printed, so a bad one is the only output.
      checkInput(file, "inspect");
      checkVocab(o.vocab);
      const tok = t.loadTokenizer(o.vocab);
      console.log(inspectReport(tok, o.vocab));
      if (file) {
        const bytes = readInput(file, "inspect");
        const started = performance.now();
        const n = file === "-" ? tok.encode(bytes).length : t.encodeFile(tok, file).length;
        const ms = performance.now() - started;
        if (bytes.length === 0) console.log(`  on ${file}: empty, nothing to measure`);
        else console.log(`  on ${file}: ${bytes.length} bytes → ${n} tokens, ${(bytes.length / Math.max(n, 1)).toFixed(3)} bytes per token (${(bytes.length / 1e3 / Math.max(ms, 1e-3)).toFixed(1)} MB/s)`);
      }
      return;
    }
    case "export-hf": {
      const out = o.out ?? "tokenizer.json";
      checkVocab(o.vocab);
      checkVocabTarget(out, "--out", o.overwrite);
      const tok = t.loadTokenizer(o.vocab);
      t.saveHuggingFace(tok, out);
      log(`wrote ${out} (HuggingFace ByteLevel BPE, ${tok.vocabSize} tokens)`);
      return;
    }
    case "import-hf": {
      if (!file) throw new UserError("tokenizer import-hf: give the tokenizer.json to import.");
      checkInputFile(file, "tokenizer import-hf", EXPECTED["import-hf"], "tokenizer.json", " To import a whole model folder, use `train_vocab import`.");
      checkVocabTarget(o.vocab, "--vocab", o.overwrite);
      const tok = t.loadTokenizer(file);
      saveVocab(tok, o.vocab, t.saveTokenizer);
      log(`wrote ${o.vocab} (vocab_size ${tok.vocabSize}, fingerprint ${tok.fingerprint})`);
      return;
    }
  }
}

/** Save to --vocab, making its folder; a failed save leaves no folder it made behind. */
function saveVocab(tok: Tokenizer, path: string, save: (tok: Tokenizer, path: string) => void): void {
  const outputs = new Outputs();
  try {
    outputs.folder(dirname(path), "--vocab", path);
    save(tok, path);
  } catch (err) {
    outputs.undo();
    throw err;
  }
}

function idsToOutput(ids: Uint32Array, format: Format, vocabSize: number): Uint8Array | string {
  if (format === "text") return ids.length ? ids.join(" ") + "\n" : "";
  if (format === "u16") {
    if (vocabSize > 65536) throw new UserError(`--format u16: the vocabulary has ${vocabSize} ids, more than u16 holds; use --format u32.`);
    return new Uint8Array(Uint16Array.from(ids).buffer);
  }
  return new Uint8Array(ids.buffer, ids.byteOffset, ids.byteLength);
}

function parseIds(bytes: Uint8Array, format: Format, name: string): Uint32Array {
  if (format === "text") {
    const text = new TextDecoder().decode(bytes);
    const parts = text.split(/\s+/).filter((s) => s.length > 0);
    const ids = new Uint32Array(parts.length);
    parts.forEach((p, i) => {
      if (!/^\d{1,10}$/.test(p) || Number(p) > 0xffffffff) {
        throw new UserError(`${name}: "${p.slice(0, 20)}" (item ${i + 1}) is not a token id. Text ids are whole numbers separated by spaces; use --format u16/u32 for binary files.`);
      }
      ids[i] = Number(p);
    });
    return ids;
  }
  const width = format === "u16" ? 2 : 4;
  if (bytes.length % width !== 0) {
    throw new UserError(`${name}: ${bytes.length} bytes is not a whole number of ${format} ids. Is --format right?`);
  }
  const copy = bytes.slice();
  return format === "u16" ? Uint32Array.from(new Uint16Array(copy.buffer)) : new Uint32Array(copy.buffer);
}

function inspectReport(tok: Tokenizer, path: string): string {
  const lines = [`${path}`, `  type:         ${tok.type}`, `  vocab_size:   ${tok.vocabSize}`, `  fingerprint:  ${tok.fingerprint}`];
  lines.push(`  end_of_text:  ${tok.endOfTextId ?? "none"}`);
  // the longest tokens, shown escaped
  const lengths: [number, number][] = [];
  for (let i = 0; i < tok.vocabSize; i++) lengths.push([tok.decodeBytes([i]).length, i]);
  lengths.sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  lines.push("  longest tokens:");
  for (const [len, id] of lengths.slice(0, 10)) lines.push(`    ${String(id).padStart(7)}  ${len} bytes  ${JSON.stringify(tok.decode([id]))}`);
  return lines.join("\n");
}
