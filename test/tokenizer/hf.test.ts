import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Tokenizer as HfTokenizer } from "tokenizers";
import { UserError } from "../../src/base/errors.ts";
import { exportHuggingFace, importHuggingFace, loadTokenizer, saveTokenizer, trainTokenizer } from "../../src/tokenizer/index.ts";
import { MULTILINGUAL, makeCorpus } from "./reference.ts";

const dir = mkdtempSync(join(tmpdir(), "tv-hf-"));
writeFileSync(join(dir, "corpus.txt"), makeCorpus(31, 600));
const tok = trainTokenizer({ data: join(dir, "corpus.txt"), vocabSize: 2000, minFrequency: 2 });
const jsonPath = join(dir, "tokenizer.json");
writeFileSync(jsonPath, exportHuggingFace(tok));

describe("HuggingFace tokenizer.json", () => {
  test("the npm tokenizers package encodes multilingual text to exactly our ids", async () => {
    const hf = HfTokenizer.fromFile(jsonPath);
    for (const s of [...MULTILINGUAL, makeCorpus(77, 20), MULTILINGUAL.join("\n")]) {
      const theirs = (await hf.encode(s, null, { addSpecialTokens: false })).getIds();
      expect(theirs).toEqual(Array.from(tok.encode(s)));
    }
  });

  test("export then import gives the same vocabulary and fingerprint", () => {
    const back = importHuggingFace(readFileSync(jsonPath, "utf8"), jsonPath);
    expect(back.fingerprint).toBe(tok.fingerprint);
    const p1 = join(dir, "a.vocab"), p2 = join(dir, "b.vocab");
    saveTokenizer(tok, p1);
    saveTokenizer(loadTokenizer(jsonPath), p2);
    expect(readFileSync(p1).equals(readFileSync(p2))).toBe(true);
  });

  test("tokenizers we cannot reproduce exactly are refused with a reason", () => {
    const base = JSON.parse(readFileSync(jsonPath, "utf8"));
    const bad = (mutate: (j: any) => void) => {
      const j = structuredClone(base);
      mutate(j);
      return () => importHuggingFace(JSON.stringify(j), "x.json");
    };
    expect(bad((j) => (j.model.type = "WordPiece"))).toThrow(/model.type is "WordPiece"/);
    expect(bad((j) => (j.pre_tokenizer = { type: "Whitespace" }))).toThrow(/pre_tokenizer must be ByteLevel/);
    expect(bad((j) => j.model.merges.reverse())).toThrow(UserError);
    expect(bad((j) => delete j.model.vocab["a"])).toThrow(UserError);
    expect(() => importHuggingFace("{not json", "x.json")).toThrow(/not valid JSON/);
  });
});
