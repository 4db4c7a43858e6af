import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UserError } from "../../src/base/errors.ts";
import { loadTokenizer, saveTokenizer, trainTokenizer } from "../../src/tokenizer/index.ts";
import { escapeToken, unescapeToken } from "../../src/tokenizer/escape.ts";
import { rng } from "./reference.ts";

const dir = mkdtempSync(join(tmpdir(), "tv-vocab-"));
writeFileSync(join(dir, "data.txt"), "the cat sat on the mat, the cat's hat\n".repeat(20) + "中文 中文 naïve naïve\n");
const tok = trainTokenizer({ data: join(dir, "data.txt"), vocabSize: 300, minFrequency: 2 });
const good = join(dir, "good.vocab");
saveTokenizer(tok, good);
const text = readFileSync(good, "utf8");
const lines = text.split("\n");

/** Write a damaged copy and return the error message of loading it. */
function errorOf(content: string | Uint8Array): string {
  const p = join(dir, "bad.vocab");
  writeFileSync(p, content);
  try {
    loadTokenizer(p);
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return (err as Error).message;
  }
  throw new Error("the damaged file loaded without an error");
}

function edit(lineIndex: number, f: (l: string) => string): string {
  const copy = [...lines];
  copy[lineIndex] = f(copy[lineIndex]!);
  return copy.join("\n");
}

const entry = (id: number) => lines.findIndex((l) => l.startsWith(`${id}\t`));

describe(".vocab file", () => {
  test("save then load gives the same tokenizer; the header is readable", () => {
    const back = loadTokenizer(good);
    expect(back.type).toBe("bpe");
    expect(back.fingerprint).toBe(tok.fingerprint);
    expect(back.vocabSize).toBe(tok.vocabSize);
    expect(lines[0]).toBe("train-vocab vocab 1");
    expect(text).toContain(`vocab_size=${tok.vocabSize}\n`);
    expect(text).toContain('specials="<|endoftext|>"\n');
    expect(text).toContain('\t"\\n"\tbyte\n');
    expect(text).toMatch(/\t" the"\t\d+ \d+\n/);
  });

  test("escapes round-trip any bytes", () => {
    const r = rng(4);
    for (let k = 0; k < 300; k++) {
      const b = new Uint8Array(Math.floor(r() * 12)).map(() => Math.floor(r() * 256));
      const s = escapeToken(b);
      const back = unescapeToken(s, 0);
      expect("bytes" in back && back.bytes).toEqual(b);
    }
    expect(escapeToken(new TextEncoder().encode("é\u00a0\t\"\\"))).toBe('"é\\xc2\\xa0\\t\\"\\\\"');
  });

  test("truncated file names the last line", () => {
    const cut = lines.slice(0, 100).join("\n") + "\n";
    expect(errorOf(cut)).toMatch(/bad\.vocab:100: the file is truncated/);
    expect(errorOf(text.slice(0, 30))).toMatch(/bad\.vocab:\d+: /);
    expect(errorOf("")).toMatch(/bad\.vocab:1: /);
  });

  test("wrong counts", () => {
    expect(errorOf(text.replace(`vocab_size=${tok.vocabSize}`, `vocab_size=${tok.vocabSize - 1}`))).toMatch(/:\d+: more entries than vocab_size/);
    expect(errorOf(text.replace(`vocab_size=${tok.vocabSize}`, "vocab_size=999999999"))).toMatch(/:4: vocab_size=999999999 must be/);
    expect(errorOf(text.replace(/merges=\d+/, "merges=3"))).toMatch(/:5: merges=3 but the file has/);
  });

  test("bad escapes name the line", () => {
    const i = entry(280);
    expect(errorOf(edit(i, (l) => l.replace(/\t"[^\t]*"\t/, '\t"\\q"\t')))).toMatch(new RegExp(`:${i + 1}: bad escape "\\\\q"`));
    expect(errorOf(edit(i, (l) => l.replace(/\t"[^\t]*"\t/, '\t"\\xZ1"\t')))).toMatch(new RegExp(`:${i + 1}: bad escape`));
    expect(errorOf(edit(i, (l) => l.replace(/\t"([^\t]*)"\t/, '\t"$1\t')))).toMatch(new RegExp(`:${i + 1}: `));
  });

  test("duplicate, missing and out-of-order ids", () => {
    const i = entry(270);
    expect(errorOf(edit(i, (l) => l.replace(/^270/, "269")))).toMatch(new RegExp(`:${i + 1}: id 269 appears twice`));
    expect(errorOf(edit(i, (l) => l.replace(/^270/, "271")))).toMatch(new RegExp(`:${i + 1}: expected id 270, found 271`));
  });

  test("merge parents must be earlier and must spell the token", () => {
    const i = entry(270);
    expect(errorOf(edit(i, (l) => l.replace(/\t\d+ \d+$/, "\t270 1")))).toMatch(new RegExp(`:${i + 1}: merge parents 270 and 1 must both be earlier`));
    expect(errorOf(edit(i, (l) => l.replace(/\t\d+ \d+$/, "\t97 98")))).toMatch(new RegExp(`:${i + 1}: the token is not the bytes of 97 followed by 98`));
  });

  test("wrong fingerprint, version, header", () => {
    expect(errorOf(text.replace(/fingerprint=[0-9a-f]+/, "fingerprint=" + "0".repeat(32)))).toMatch(/:7: fingerprint 0{32} does not match/);
    expect(errorOf(text.replace("train-vocab vocab 1", "train-vocab vocab 2"))).toMatch(/:1: format version 2 is not supported/);
    expect(errorOf(text.replace("type=bpe", "type=wordpiece"))).toMatch(/:2: type "wordpiece"/);
    expect(errorOf(text.replace("type=bpe\n", "type=bpe\ncolour=blue\n"))).toMatch(/:3: unknown header key "colour"/);
    expect(errorOf(text.replace("---\n", ""))).toMatch(/bad\.vocab:\d+: /);
  });

  test("a duplicated token is caught at its second appearance", () => {
    // id 10 ("\n") rewritten as "a": the real "a" (id 97) is then the duplicate
    expect(errorOf(edit(entry(10), (l) => l.replace('"\\n"', '"a"')))).toMatch(new RegExp(`:${entry(97) + 1}: token "a" duplicates id 10`));
  });

  test("invalid UTF-8 and random damage always end in a UserError or a valid load", () => {
    const bytes = new Uint8Array(readFileSync(good));
    const bad = bytes.slice();
    bad[bytes.indexOf(0x0a, 400) + 3] = 0xff;
    expect(errorOf(bad)).toMatch(/:\d+: /);
    const r = rng(9);
    for (let k = 0; k < 150; k++) {
      const m = bytes.slice();
      const edits = 1 + Math.floor(r() * 3);
      for (let e = 0; e < edits; e++) m[Math.floor(r() * m.length)] = Math.floor(r() * 256);
      const p = join(dir, "fuzz.vocab");
      writeFileSync(p, r() < 0.2 ? m.subarray(0, Math.floor(r() * m.length)) : m);
      try {
        loadTokenizer(p);
      } catch (err) {
        expect(err).toBeInstanceOf(UserError);
      }
    }
  });
});
