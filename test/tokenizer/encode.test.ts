import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getThreads, setThreads } from "../../src/native.ts";
import { encodeFile, encodeFiles, trainTokenizer } from "../../src/tokenizer/index.ts";
import { MULTILINGUAL, makeCorpus, referenceEncode, rng } from "./reference.ts";

const dir = mkdtempSync(join(tmpdir(), "tv-encode-"));
const corpus = makeCorpus(21, 400);
writeFileSync(join(dir, "corpus.txt"), corpus);
const tok = trainTokenizer({ data: join(dir, "corpus.txt"), vocabSize: 1500, minFrequency: 2 });
const enc = new TextEncoder();

function randomBytes(r: () => number, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = Math.floor(r() * 256);
  return b;
}

describe("encode / decode", () => {
  test("round trip of random bytes (invalid UTF-8 included) is exact", () => {
    const r = rng(1);
    for (let k = 0; k < 200; k++) {
      const b = randomBytes(r, Math.floor(r() * 300));
      expect(tok.decodeBytes(tok.encode(b))).toEqual(b);
    }
  });

  test("round trip of multilingual text is exact, as string and as bytes", () => {
    for (const s of MULTILINGUAL) {
      expect(tok.decode(tok.encode(s))).toBe(s);
    }
    const big = enc.encode(makeCorpus(99, 2000)); // > 64 KB: encoded in parallel parts
    expect(tok.decodeBytes(tok.encode(big))).toEqual(big);
  });

  test("ids match the naive reference encoder", () => {
    for (const s of [...MULTILINGUAL, corpus.slice(0, 5000)]) {
      const b = enc.encode(s);
      expect(Array.from(tok.encode(b))).toEqual(referenceEncode(tok.vocab, b));
    }
  });

  test("very long words take the heap path and still match the reference", () => {
    const r = rng(5);
    const parts = ["the", "cat", "中文", "é", "a", "zz"];
    let s = "";
    while (s.length < 3000) s += parts[Math.floor(r() * parts.length)];
    const b = enc.encode(s);
    expect(Array.from(tok.encode(b))).toEqual(referenceEncode(tok.vocab, b));
    const long = enc.encode("a".repeat(200_000)); // no quadratic blow-up
    expect(tok.decodeBytes(tok.encode(long))).toEqual(long);
  });

  test("the end-of-text special is never produced from ordinary text", () => {
    const eot = tok.endOfTextId!;
    expect(eot).toBe(256);
    const ids = tok.encode("a<|endoftext|>b <|endoftext|>");
    expect(Array.from(ids)).not.toContain(eot);
    expect(tok.decode([...tok.encode("x"), eot, ...tok.encode("y")])).toBe("x<|endoftext|>y");
  });

  test("same ids on 1 and 2 threads", () => {
    const b = enc.encode(makeCorpus(8, 3000));
    const before = getThreads();
    try {
      setThreads(1);
      const one = tok.encode(b);
      setThreads(2);
      expect(tok.encode(b)).toEqual(one);
    } finally {
      setThreads(before);
    }
  });

  test("encodeFile equals encode of the whole text; encodeFiles puts end-of-text between documents", () => {
    const a = join(dir, "a.txt"), b = join(dir, "b.txt");
    writeFileSync(a, "first document\n");
    writeFileSync(b, "second");
    expect(encodeFile(tok, join(dir, "corpus.txt"))).toEqual(tok.encode(corpus));
    expect(Array.from(encodeFiles(tok, [a, b]))).toEqual([...tok.encode("first document\n"), 256, ...tok.encode("second")]);
  });

  test("decoding an id outside the vocabulary is a range error naming the position", () => {
    expect(() => tok.decode([1, 2, 99999])).toThrow(/99999 at position 2/);
    expect(() => tok.decodeBytes(Uint32Array.of(5, 1500))).toThrow(/1500 at position 1/);
  });
});
