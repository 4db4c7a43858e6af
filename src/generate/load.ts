/**
 * Loading what generate, eval and export need: the checkpoint's weights and the tokenizer, checked
 * against each other before any work starts. Our checkpoints record the tokenizer's fingerprint, so
 * the wrong vocab file is caught even when its size happens to match; LoopOS's files record
 * nothing, so for them the size is all there is to compare (LoopOS's own rule and message).
 */
import { existsSync } from "node:fs";
import { type LoadedCheckpoint, readCheckpoint } from "../checkpoint/index.ts";
import { UserError } from "../base/errors.ts";
import { loadTokenizer, type Tokenizer } from "../tokenizer/index.ts";

export interface LoadedModel {
  checkpoint: LoadedCheckpoint;
  tokenizer: Tokenizer;
}

export function loadVocab(vocabPath: string, flag = "--vocab"): Tokenizer {
  if (!existsSync(vocabPath)) {
    throw new UserError(`Vocabulary file not found: ${vocabPath} (${flag}). Pass the vocab file the model was trained with.`);
  }
  return loadTokenizer(vocabPath);
}

export function loadModel(checkpointPath: string, vocabPath: string): LoadedModel {
  const checkpoint = readCheckpoint(checkpointPath);
  const tokenizer = loadVocab(vocabPath);
  checkTokenizer(checkpoint, tokenizer, vocabPath);
  return { checkpoint, tokenizer };
}

export function checkTokenizer(ckpt: Pick<LoadedCheckpoint, "arch" | "tokenizer" | "path">, tok: Tokenizer, vocabPath: string): void {
  const expected = ckpt.tokenizer;
  if (expected === null) {
    // No identity stored (a LoopOS file): sizes must agree exactly, as LoopOS required.
    if (tok.vocabSize !== ckpt.arch.vocab_size) {
      throw new UserError(`Vocabulary size mismatch! Checkpoint expects ${ckpt.arch.vocab_size} but vocab file has ${tok.vocabSize} (${vocabPath}).`);
    }
    return;
  }
  if (expected.fingerprint !== tok.fingerprint || expected.vocab_size !== tok.vocabSize) {
    throw new UserError(
      `${vocabPath} is not the vocabulary ${ckpt.path} was trained with ` +
        `(checkpoint: ${expected.type}, ${expected.vocab_size} tokens, fingerprint ${expected.fingerprint.slice(0, 12)}; ` +
        `file: ${tok.type}, ${tok.vocabSize} tokens, fingerprint ${tok.fingerprint.slice(0, 12)}). Pass the vocab file used for training.`,
    );
  }
}
