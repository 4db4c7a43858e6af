/**
 * The vocabulary for a run, by LoopOS's rules: when resuming it must exist and match the
 * checkpoint (by size, as LoopOS checked, and by fingerprint when the checkpoint records one);
 * a fresh run loads it if it exists, else builds it from --data and saves it.
 */
import { existsSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import type { CheckpointHeader, TokenizerIdentity } from "../checkpoint/index.ts";
import { UserError } from "../base/errors.ts";
import { vocabHint } from "../base/files.ts";
import { loadTokenizer, saveTokenizer, trainTokenizer, type Tokenizer } from "../tokenizer/index.ts";

export function identityOf(tok: Tokenizer): TokenizerIdentity {
  return { type: tok.type, vocab_size: tok.vocabSize, fingerprint: tok.fingerprint };
}

export function vocabularyForResume(ckpt: Pick<CheckpointHeader, "arch" | "tokenizer">, vocabPath: string, checkpointPath: string): Tokenizer {
  if (!existsSync(vocabPath)) {
    throw new UserError(`Cannot resume: vocabulary file not found: ${vocabPath} (--vocab). Give the vocabulary the model was trained with.${vocabHint(checkpointPath)}`);
  }
  const tok = loadTokenizer(vocabPath);
  if (tok.vocabSize !== ckpt.arch.vocab_size) {
    throw new UserError(
      `Vocabulary size mismatch! Checkpoint expects ${ckpt.arch.vocab_size} but vocab file has ${tok.vocabSize}\n` +
        "Use the same vocab file as the original training (--vocab).",
    );
  }
  const expected = ckpt.tokenizer;
  if (expected && (expected.fingerprint !== tok.fingerprint || expected.type !== tok.type)) {
    throw new UserError(
      `Vocabulary mismatch! ${vocabPath} has the right size (${tok.vocabSize}) but is not the vocabulary the checkpoint was trained with ` +
        `(fingerprint ${tok.fingerprint.slice(0, 16)}, ${tok.type}; the checkpoint expects ${expected.fingerprint.slice(0, 16)}, ${expected.type}).\n` +
        "Its tokens would mean different things to the model. Use the same vocab file as the original training (--vocab).",
    );
  }
  return tok;
}

export function vocabularyForFreshRun(args: {
  vocabPath: string;
  data: string;
  vocabSize: number;
  vocabSizeGiven: boolean;
  minFrequency: number;
  log: (msg: string) => void;
  /** The data's files, already listed (and filtered) by the caller. */
  files?: string[];
}): Tokenizer {
  const { vocabPath, log } = args;
  if (existsSync(vocabPath)) {
    const tok = loadTokenizer(vocabPath);
    log(`Loaded vocabulary ${vocabPath}: ${tok.vocabSize} tokens (${tok.type})`);
    if (args.vocabSizeGiven && args.vocabSize !== tok.vocabSize) {
      log(`Note: --vocab-size ${args.vocabSize} is not used: ${vocabPath} already exists with ${tok.vocabSize} tokens (delete it to build a new one).`);
    }
    return tok;
  }
  log(`Building vocabulary (${args.vocabSize} tokens) from ${args.data} ...`);
  const tok = trainTokenizer({ data: args.data, files: args.files, vocabSize: args.vocabSize, minFrequency: args.minFrequency, log });
  mkdirSync(dirname(vocabPath), { recursive: true });
  saveTokenizer(tok, vocabPath);
  log(`Saved vocabulary to ${vocabPath}`);
  return tok;
}
