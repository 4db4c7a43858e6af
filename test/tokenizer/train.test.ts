import { describe, expect, test } from "bun:test";
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getThreads, setThreads } from "../../src/native.ts";
import { KIND_MERGE } from "../../src/tokenizer/bpe.ts";
import { listDataFiles, saveTokenizer, trainTokenizer } from "../../src/tokenizer/index.ts";
import { makeCorpus, referenceTrain } from "./reference.ts";

const dir = mkdtempSync(join(tmpdir(), "tv-train-"));
const enc = new TextEncoder();

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

function mergesOf(tok: ReturnType<typeof trainTokenizer>): number[] {
  const out: number[] = [];
  for (let i = 0; i < tok.vocabSize; i++) if (tok.vocab.kinds[i] === KIND_MERGE) out.push(tok.vocab.left[i]!, tok.vocab.right[i]!);
  return out;
}

describe("BPE training", () => {
  test("known answer: aaabdaaabac (ties go to the smaller left id, then the smaller right id)", () => {
    const data = file("aaab.txt", "aaabdaaabac");
    // (a,a)=4 → 257; (Z,a) and (a,b) tie at 2: a=97 < 257 → (a,b) → 258; (257,258) → 259; then all counts are 1
    const tok = trainTokenizer({ data, vocabSize: 1000, minFrequency: 2 });
    expect(mergesOf(tok)).toEqual([97, 97, 97, 98, 257, 258]);
    expect(tok.vocabSize).toBe(260);
    expect(tok.tokenText(259)).toBe("aaab");
    const all = trainTokenizer({ data, vocabSize: 1000, minFrequency: 1 });
    expect(mergesOf(all)).toEqual([97, 97, 97, 98, 257, 258, 97, 99, 100, 259, 259, 261, 262, 260]);
    expect(all.encode("aaabdaaabac")).toEqual(Uint32Array.of(263));
  });

  test("merges never cross a word boundary", () => {
    const data = file("words.txt", "ab ab ab ab, ab!");
    const tok = trainTokenizer({ data, vocabSize: 1000, minFrequency: 2 });
    for (let i = 257; i < tok.vocabSize; i++) expect(tok.tokenText(i)).not.toMatch(/\S[ ,!]|[,!]\S/);
  });

  test("matches the naive reference trainer on a multilingual corpus", () => {
    const text = makeCorpus(11, 120);
    const data = file("multi.txt", text);
    const tok = trainTokenizer({ data, vocabSize: 600, minFrequency: 2 });
    expect(mergesOf(tok)).toEqual(referenceTrain([enc.encode(text)], 600, 2));
  });

  test("stops early at --min-frequency and says so", () => {
    const data = file("tiny.txt", "hello hello world");
    const logs: string[] = [];
    const tok = trainTokenizer({ data, vocabSize: 5000, minFrequency: 2, log: (m) => logs.push(m) });
    expect(tok.vocabSize).toBeLessThan(5000);
    expect(logs.join("\n")).toMatch(/fewer than --vocab-size 5000/);
  });

  test("deterministic: two trainings and any thread count give the same file byte for byte", () => {
    const data = file("det.txt", makeCorpus(5, 3000)); // several hundred KB: the count runs in parallel
    const before = getThreads();
    try {
      setThreads(2);
      const a = trainTokenizer({ data, vocabSize: 800, minFrequency: 2 });
      const b = trainTokenizer({ data, vocabSize: 800, minFrequency: 2 });
      setThreads(1);
      const c = trainTokenizer({ data, vocabSize: 800, minFrequency: 2 });
      saveTokenizer(a, join(dir, "a.vocab"));
      saveTokenizer(b, join(dir, "b.vocab"));
      saveTokenizer(c, join(dir, "c.vocab"));
      const fa = readFileSync(join(dir, "a.vocab"));
      expect(fa.equals(readFileSync(join(dir, "b.vocab")))).toBe(true);
      expect(fa.equals(readFileSync(join(dir, "c.vocab")))).toBe(true);
    } finally {
      setThreads(before);
    }
  });

  test("--data folder: walked recursively in sorted order, hidden files skipped; each file is a document", () => {
    const root = join(dir, "corpus");
    mkdirSync(join(root, "b", "c"), { recursive: true });
    writeFileSync(join(root, "z.txt"), "zz zz zz");
    writeFileSync(join(root, "a.txt"), "aa aa aa");
    writeFileSync(join(root, "b", "c", "m.txt"), "mm mm mm");
    writeFileSync(join(root, ".hidden"), "xx xx xx");
    expect(listDataFiles(root)).toEqual([join(root, "a.txt"), join(root, "b", "c", "m.txt"), join(root, "z.txt")]);
    const tok = trainTokenizer({ data: root, vocabSize: 1000, minFrequency: 2 });
    const texts = new Set(Array.from({ length: tok.vocabSize - 257 }, (_, i) => tok.tokenText(257 + i)));
    expect(texts.has(" zz")).toBe(true);
    expect(texts.has("xx")).toBe(false);
  });

  test("bad flags and missing data are user errors naming the flag", () => {
    expect(() => trainTokenizer({ data: join(dir, "missing"), vocabSize: 1000, minFrequency: 2 })).toThrow(/--data .*missing/);
    mkdirSync(join(dir, "empty"), { recursive: true });
    expect(() => trainTokenizer({ data: join(dir, "empty"), vocabSize: 1000, minFrequency: 2 })).toThrow(/no files/);
    expect(() => trainTokenizer({ data: join(dir, "aaab.txt"), vocabSize: 100, minFrequency: 2 })).toThrow(/--vocab-size 100/);
    expect(() => trainTokenizer({ data: join(dir, "aaab.txt"), vocabSize: 1000, minFrequency: 0 })).toThrow(/--min-frequency/);
  });
});
