import { describe, expect, test } from "bun:test";
import { nativePretokenize, safeCut } from "../../src/tokenizer/native_bpe.ts";
import { MULTILINGUAL, makeCorpus, referencePretokenize, rng } from "./reference.ts";

const enc = new TextEncoder();
const pieces = (s: string) => {
  const b = enc.encode(s);
  let start = 0;
  return nativePretokenize(b).map((e) => new TextDecoder().decode(b.subarray(start, (start = e))));
};

describe("pre-tokenization (GPT-2 split)", () => {
  test("splits words, contractions, numbers, punctuation and whitespace runs by hand-checked example", () => {
    expect(pieces("Hello world's  end\n\n 123abc")).toEqual(["Hello", " world", "'s", " ", " end", "\n\n", " 123", "abc"]);
    expect(pieces("don't!!  ?")).toEqual(["don", "'t", "!!", " ", " ?"]);
    expect(pieces("a\nb")).toEqual(["a", "\n", "b"]);
    expect(pieces("x   ")).toEqual(["x", "   "]);
    expect(pieces(" 's")).toEqual([" '", "s"]);
  });

  test("matches the regex on multilingual text", () => {
    for (const s of [...MULTILINGUAL, makeCorpus(1, 50)]) {
      const b = enc.encode(s);
      expect(nativePretokenize(b)).toEqual(referencePretokenize(b));
    }
  });

  test("matches the regex on random bytes, invalid UTF-8 included", () => {
    const r = rng(7);
    const alphabet = [0x20, 0x0a, 0x27, 0x73, 0x41, 0x31, 0x2e, 0xc3, 0xa9, 0xe4, 0xb8, 0xad, 0xff, 0x80, 0xf0, 0x9f, 0x98, 0x80, 0x09];
    for (let k = 0; k < 300; k++) {
      const n = Math.floor(r() * 40);
      const b = new Uint8Array(n);
      for (let i = 0; i < n; i++) b[i] = r() < 0.5 ? alphabet[Math.floor(r() * alphabet.length)]! : Math.floor(r() * 256);
      expect(nativePretokenize(b)).toEqual(referencePretokenize(b));
    }
  });

  test("a safe cut never changes the pieces", () => {
    const b = enc.encode(makeCorpus(2, 200));
    const whole = nativePretokenize(b);
    const r = rng(3);
    for (let k = 0; k < 50; k++) {
      const end = Math.floor(r() * b.length);
      const cut = safeCut(b.subarray(0, end));
      if (cut === 0) continue;
      const left = nativePretokenize(b.subarray(0, cut));
      const right = nativePretokenize(b.subarray(cut)).map((e) => e + cut);
      expect([...left, ...right]).toEqual(whole);
    }
  });
});
