/**
 * Bad training input through the CLI, as a user would type it: each case ends in a one- or two-line
 * error that names the problem (exit 2, no stack trace), or in the documented behaviour (exit 0)
 * with a note saying what happened.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { learnableText, runCli, tempFolder, TINY, withFlags, writeText } from "../cli/helpers.ts";

setDefaultTimeout(300_000);

const tmp = tempFolder("tv-bad-");
const dir = tmp.dir;
const p = (name: string) => join(dir, name);
let outputs = 0;
const out = () => p(`out-${outputs++}`);
/** TINY without its --vocab-size, so cases can set their own. */
const MODEL = TINY.filter((a, i, all) => a !== "--vocab-size" && all[i - 1] !== "--vocab-size");

interface Case {
  name: string;
  args: () => string[];
  code: 0 | 2;
  says: string[];
}

beforeAll(async () => {
  writeText(dir, "data.txt", learnableText(200));
  writeText(dir, "short.txt", "the cat sat.");
  writeFileSync(p("empty.txt"), "");
  // Bytes of every value, NULs included: an image or archive passed by mistake.
  writeFileSync(p("random.bin"), Uint8Array.from({ length: 50_000 }, (_, i) => (i * 2654435761) >>> 24));
  writeFileSync(p("utf16.txt"), Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(learnableText(20), "utf16le")]));
  // Latin-1 text: invalid UTF-8, trained as raw bytes.
  writeFileSync(p("latin1.txt"), Buffer.from(learnableText(200).replaceAll("the", "thé"), "latin1"));
  mkdirSync(p("empty-dir"));
  mkdirSync(p("no-text-dir"));
  writeFileSync(p("no-text-dir/photo.jpg"), Uint8Array.of(0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46));
  writeFileSync(p("no-text-dir/notes.txt"), "");
  writeFileSync(p("no-text-dir/.DS_Store"), "x");
  mkdirSync(p("mixed-dir"));
  writeText(dir, "mixed-dir/a.txt", learnableText(200));
  writeFileSync(p("mixed-dir/b.bin"), Uint8Array.of(1, 0, 2, 0));
  mkdirSync(p("hidden-only"));
  writeFileSync(p("hidden-only/.notes"), "text");
  // One line, no newline at all (the long run checks 100 MB the same way; see the README).
  const words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran"];
  writeFileSync(p("one-line.txt"), Array.from({ length: 800_000 }, (_, i) => words[(i * 7 + (i >> 3)) % words.length]).join(" "));
  // Megabytes of one letter: BPE would merge it into tokens longer than the encoder takes.
  writeFileSync(p("one-letter.txt"), "a".repeat(9 << 19));
  writeFileSync(p("run.json"), JSON.stringify({ learning_rate: -1 }));
  writeFileSync(p("nested.json"), '{"epochs": ' + "[".repeat(50_000) + "]".repeat(50_000) + "}");
  // A finished run to resume from (max_seq_len 16).
  const r = await runCli(["--data", p("data.txt"), "--vocab", p("tok.vocab"), ...TINY, "--epochs", "1", "--output", p("base")], dir);
  expect(r.code).toBe(0);
});
afterAll(() => tmp.cleanup());

const train = (data: string, ...more: string[]) => () => ["--data", p(data), "--vocab", p("tok.vocab"), "--output", out(), ...withFlags([...MODEL, "--epochs", "1"], ...more)];
const fresh = (data: string, ...more: string[]) => () => ["--data", p(data), "--vocab", p(`v-${outputs}.vocab`), "--output", out(), ...withFlags([...MODEL, "--epochs", "1"], ...more)];

const CASES: Case[] = [
  { name: "an empty file", args: fresh("empty.txt"), code: 2, says: ["empty.txt: the file is empty"] },
  { name: "an empty folder", args: fresh("empty-dir"), code: 2, says: ["empty-dir: the folder holds no files"] },
  { name: "a folder with only hidden files", args: fresh("hidden-only"), code: 2, says: ["holds no files (only 1 hidden one(s), which are skipped)"] },
  {
    name: "a folder with no text (an image, an empty file)", args: fresh("no-text-dir"), code: 2,
    says: ["no-text-dir: the folder holds no text files, only 2 that are not text or cannot be read: notes.txt (empty), photo.jpg (binary, a NUL byte at offset 4)"],
  },
  { name: "binary data", args: fresh("random.bin"), code: 2, says: ["random.bin: not a text file (binary, a NUL byte at offset"] },
  { name: "UTF-16 text", args: fresh("utf16.txt"), code: 2, says: ["utf16.txt: not a text file (UTF-16 text, convert it to UTF-8)"] },
  { name: "--max-length 2: trained, with a note that windows this short teach little", args: fresh("mixed-dir", "--max-length", "2", "--max-steps", "1"), code: 0, says: ["Note: --max-length 2: each token is predicted from at most 1 token before it"] },
  { name: "a folder of text and binary files: the binary ones are skipped, with a note", args: fresh("mixed-dir", "--max-steps", "1"), code: 0, says: ["skipped 1 file(s) that are not text or cannot be read: b.bin (binary", "Stopped after --max-steps 1"] },
  { name: "invalid UTF-8 (Latin-1 text): trained as raw bytes", args: fresh("latin1.txt", "--max-steps", "1", "--vocab-size", "300"), code: 0, says: ["Stopped after --max-steps 1"] },
  { name: "one 4.4 MB line without a newline", args: fresh("one-line.txt", "--max-steps", "1", "--vocab-size", "300"), code: 0, says: ["Data: 800,000 tokens from 1 file", "Stopped after --max-steps 1"] },
  {
    name: "4.5 MB of one repeated letter: merging stops at the longest token the encoder takes",
    args: fresh("one-letter.txt", "--vocab-size", "300", "--max-length", "2", "--batch-size", "1", "--val-fraction", "0", "--max-steps", "1"), code: 0,
    says: ["stopped after 20 merges: the next would make a token of 2097152 bytes, longer than the 1048576 a token may have", "Stopped after --max-steps 1"],
  },
  { name: "data shorter than one window", args: train("short.txt"), code: 2, says: ["too few for one window of --max-length 16 (17 tokens needed)"] },
  { name: "--vocab-size below 256 + specials", args: fresh("data.txt", "--vocab-size", "100"), code: 2, says: ["--vocab-size 100: must be at least 258 (256 byte tokens, 1 special, 1 merge)"] },
  { name: "--vocab-size above what the data supports: a smaller vocabulary, said so", args: fresh("data.txt", "--vocab-size", "50000", "--max-steps", "1"), code: 0, says: ["fewer than --vocab-size 50000: no remaining pair occurs --min-frequency 2 times"] },
  { name: "--num-heads not dividing --d-model", args: train("data.txt", "--d-model", "32", "--num-heads", "3"), code: 2, says: ["--d-model 32 must be a multiple of --num-heads 3"] },
  {
    name: "--max-length above the checkpoint's max_seq_len on resume",
    args: () => ["resume", p("base/model_checkpoint.bin"), "--data", p("data.txt"), "--vocab", p("tok.vocab"), "--output", out(), "--max-length", "64"],
    code: 2, says: ["--max-length 64 is longer than the checkpoint's max_seq_len 16", "Use --max-length 16 or less"],
  },
  { name: "--learning-rate NaN", args: train("data.txt", "--learning-rate", "NaN"), code: 2, says: ['--learning-rate "NaN": expected a number'] },
  { name: "--learning-rate Infinity", args: train("data.txt", "--learning-rate", "Infinity"), code: 2, says: ['--learning-rate "Infinity": expected a number'] },
  { name: "a negative --learning-rate", args: train("data.txt", "--learning-rate", "-0.001"), code: 2, says: ["--learning-rate -0.001: must be greater than 0"] },
  { name: "--learning-rate 0", args: train("data.txt", "--learning-rate", "0"), code: 2, says: ["--learning-rate 0: must be greater than 0"] },
  { name: "a negative learning_rate in --config", args: train("data.txt", "--config", p("run.json")), code: 2, says: ['run.json: "learning_rate" -1: must be greater than 0'] },
  { name: "a deeply nested value in --config", args: train("data.txt", "--config", p("nested.json")), code: 2, says: ['nested.json: "epochs" (a list): expected a whole number'] },
  { name: "a negative --epochs", args: train("data.txt", "--epochs", "-2"), code: 2, says: ["--epochs -2: must be at least 1"] },
  { name: "--batch-size 0", args: train("data.txt", "--batch-size", "0"), code: 2, says: ["--batch-size 0: must be at least 1"] },
  { name: "a flag without its value", args: train("data.txt", "--max-steps"), code: 2, says: ["option `--max-steps <n>` value is missing"] },
  { name: "an unknown flag, with a did-you-mean", args: train("data.txt", "--lerning-rate", "0.1"), code: 2, says: ["Unknown option `--lerning-rate` — did you mean `--learning-rate`?"] },
  { name: "an unknown flag far from any other", args: train("data.txt", "--frobnicate"), code: 2, says: ["Unknown option `--frobnicate`", "Run `train_vocab --help` for the options."] },
  { name: "a text file given as --resume", args: () => ["resume", p("data.txt"), "--data", p("data.txt"), "--vocab", p("tok.vocab"), "--output", out()], code: 2, says: ["data.txt: the file is a text file, not a checkpoint"] },
  { name: "a binary file given as --vocab", args: () => ["--data", p("data.txt"), "--vocab", p("random.bin"), ...MODEL, "--output", out()], code: 2, says: ["random.bin:1: not a vocabulary file"] },
];

test(`${CASES.length} bad inputs: each a clear error (exit 2, no stack) or the documented behaviour`, async () => {
  for (const c of CASES) {
    const r = await runCli(c.args(), dir);
    const seen = { case: c.name, code: r.code, says: c.says.filter((s) => r.out.includes(s)), stack: r.out.includes("    at ") };
    expect({ ...seen, out: seen.says.length === c.says.length && seen.code === c.code ? "" : r.out.slice(-1500) }).toEqual({
      case: c.name, code: c.code, says: c.says, stack: false, out: "",
    });
    if (c.code === 2) {
      // One or two lines, the first starting "error:".
      const lines = r.stderr.trim().split("\n");
      expect({ case: c.name, first: lines[0]!.startsWith("error: "), short: lines.length <= 2 }).toEqual({ case: c.name, first: true, short: true });
    }
  }
  console.log(`bad inputs tried: ${CASES.length} (${CASES.filter((c) => c.code === 2).length} refused with exit 2, ${CASES.filter((c) => c.code === 0).length} documented behaviours)`);
});
