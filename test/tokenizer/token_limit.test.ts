/**
 * The native encoder takes tokens of at most 1 MiB. Vocabulary training stops merging before that
 * length, and the readers refuse longer tokens with a message naming the line, instead of handing
 * them to C (which refused them with an internal error).
 */
import { expect, test } from "bun:test";
import { serializeVocab } from "../../fuzz/formats.ts";
import { UserError } from "../../src/base/errors.ts";
import { exportHuggingFace } from "../../src/tokenizer/index.ts";
import { MAX_TOKEN_BYTES, vocabFromMerges } from "../../src/tokenizer/bpe.ts";
import { importHuggingFace } from "../../src/tokenizer/hf.ts";
import { parseVocabFile } from "../../src/tokenizer/vocab_file.ts";

/** 256 bytes, <|endoftext|>, then merges doubling "a": "aa", "aaaa", … up to 2^doublings bytes. */
function doublingMerges(doublings: number): Int32Array {
  const merges: number[] = [0x61, 0x61];
  for (let k = 1; k < doublings; k++) merges.push(257 + k - 1, 257 + k - 1);
  return Int32Array.from(merges);
}

test(".vocab: a token of 2 MiB is refused by line; one of exactly 1 MiB loads", () => {
  const long = serializeVocab(vocabFromMerges(["<|endoftext|>"], doublingMerges(21)));
  let error: unknown;
  try {
    parseVocabFile(long, "big.vocab");
  } catch (err) {
    error = err;
  }
  expect(error).toBeInstanceOf(UserError);
  // Line 8 is "---"; id 257 + 20 (the 2^21-byte token) is on line 8 + 277 + 1.
  expect((error as Error).message).toStartWith(`big.vocab:286: the token is ${2 ** 21} bytes, longer than the ${MAX_TOKEN_BYTES} a token may have`);

  const atLimit = parseVocabFile(serializeVocab(vocabFromMerges(["<|endoftext|>"], doublingMerges(20))), "ok.vocab");
  expect(atLimit.vocab.tokens[atLimit.vocabSize - 1]!.length).toBe(MAX_TOKEN_BYTES);
  expect(atLimit.decodeBytes(atLimit.encode("a".repeat(MAX_TOKEN_BYTES + 3))).length).toBe(MAX_TOKEN_BYTES + 3);
});

test("tokenizer.json: a token longer than 1 MiB is refused before the vocabulary reaches C", () => {
  const ok = parseVocabFile(serializeVocab(vocabFromMerges(["<|endoftext|>"], doublingMerges(3))), "small.vocab");
  const json = JSON.parse(exportHuggingFace(ok)) as { model: { vocab: Record<string, number> } };
  json.model.vocab["a".repeat(MAX_TOKEN_BYTES + 1)] = Object.keys(json.model.vocab).length;
  expect(() => importHuggingFace(JSON.stringify(json), "tokenizer.json")).toThrow(`is ${MAX_TOKEN_BYTES + 1} bytes, longer than the ${MAX_TOKEN_BYTES} a token may have`);
});
