import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UserError } from "../../src/base/errors.ts";
import { loadTokenizer } from "../../src/tokenizer/index.ts";
import { rng } from "./reference.ts";

const dir = mkdtempSync(join(tmpdir(), "tv-loopos-"));
const LOOPOS = [
  "# Tokenizer Vocabulary",
  "# Format: token_id word frequency",
  "vocab_size=14",
  "next_id=14",
  "total_tokens=1234",
  "---",
  "0\t<pad>", "1\t<unk>", "2\t<bos>", "3\t<eos>", "4\t<|user|>", "5\t<|assistant|>",
  "6\tthe", "7\tdon", "8\t'", "9\tt", "10\tcafé", "11\t.", "12\thello", "13\t,",
  "",
].join("\n");

function write(name: string, content: string): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  return p;
}

describe("LoopOS word-level .vocab", () => {
  const tok = loadTokenizer(write("loopos.vocab", LOOPOS));

  test("loads, reports its type and size", () => {
    expect(tok.type).toBe("loopos-word");
    expect(tok.vocabSize).toBe(14);
    expect(tok.endOfTextId).toBeNull();
    // unchanged by the rename: checkpoints and token caches written before it record this value
    expect(tok.fingerprint).toBe("b19edb1d0924a2476169ed2f784b528a");
  });

  test("tokenizes like LoopOS: lowercase, punctuation apart, unknown → 1, UTF-8 bytes are word characters", () => {
    expect(Array.from(tok.encode("Hello, THE Café don't.\tzebra"))).toEqual([12, 13, 6, 10, 7, 8, 9, 11, 1]);
  });

  test("decodes like LoopOS: one space between words, none before punctuation, specials skipped", () => {
    expect(tok.decode([2, 12, 13, 6, 10, 7, 8, 9, 11, 3, 0])).toBe("hello, the café don' t.");
  });

  test("damaged LoopOS files name the line", () => {
    const err = (content: string) => {
      try {
        loadTokenizer(write("bad.vocab", content));
      } catch (e) {
        expect(e).toBeInstanceOf(UserError);
        return (e as Error).message;
      }
      throw new Error("loaded");
    };
    expect(err(LOOPOS.replace("7\tdon", "6\tdon"))).toMatch(/bad\.vocab:14: id 6 appears twice/);
    expect(err(LOOPOS.replace("13\t,", "20\t,"))).toMatch(/bad\.vocab:20: id 20 is out of range/);
    expect(err(LOOPOS.replace("9\tt", "9t"))).toMatch(/bad\.vocab:16: expected <id><TAB><word>/);
    expect(err(LOOPOS.replace("12\thello", "12\tthe"))).toMatch(/bad\.vocab:19: the word appears twice/);
    expect(err(LOOPOS.replace("---\n", ""))).toMatch(/bad\.vocab:\d+: /);
    const r = rng(2);
    for (let k = 0; k < 100; k++) {
      const b = new TextEncoder().encode(LOOPOS);
      for (let e = 0; e < 3; e++) b[Math.floor(r() * b.length)] = Math.floor(r() * 256);
      try {
        loadTokenizer(write("fuzz.vocab", new TextDecoder("latin1").decode(b)));
      } catch (e) {
        expect(e).toBeInstanceOf(UserError);
      }
    }
  });
});
