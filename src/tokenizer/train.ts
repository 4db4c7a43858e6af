/**
 * Vocabulary training: read the data files in large pieces cut where the pre-tokenizer always cuts,
 * count words in C (in parallel), then learn merges in C in batches so progress can be shown.
 */
import { statSync } from "node:fs";
import { UserError } from "../base/errors.ts";
import { BpeTokenizer, END_OF_TEXT, MAX_TOKEN_BYTES, vocabFromMerges } from "./bpe.ts";
import { listDataFiles, readInSafePieces } from "./files.ts";
import { NativeTrainer } from "./native_bpe.ts";
import { Progress } from "./progress.ts";

export const SPECIALS = [END_OF_TEXT];
export const MIN_VOCAB_SIZE = 256 + SPECIALS.length + 1;
export const MAX_TRAIN_VOCAB_SIZE = 1 << 22;
/** Bytes read per call into C: large enough to keep both threads busy, small enough for memory. */
const READ_CHUNK = 32 << 20;
const MERGE_BATCH = 2000;

export interface TrainOptions {
  /** A file, or a folder walked recursively. */
  data: string;
  /** Counts the 256 byte tokens and the specials. */
  vocabSize: number;
  /** Stop merging when the best pair occurs fewer times than this. */
  minFrequency: number;
  log?: (msg: string) => void;
  /** The files of `data` when the caller has listed them already (walked once, with its exclusions). */
  files?: string[];
}

export function trainTokenizer(opts: TrainOptions): BpeTokenizer {
  const { vocabSize, minFrequency } = opts;
  if (!Number.isInteger(vocabSize) || vocabSize < MIN_VOCAB_SIZE || vocabSize > MAX_TRAIN_VOCAB_SIZE) {
    throw new UserError(`--vocab-size ${vocabSize}: must be a whole number in ${MIN_VOCAB_SIZE}..${MAX_TRAIN_VOCAB_SIZE} (it counts the 256 byte tokens and ${SPECIALS.length} special).`);
  }
  if (!Number.isInteger(minFrequency) || minFrequency < 1) {
    throw new UserError(`--min-frequency ${minFrequency}: must be a whole number >= 1.`);
  }
  const log = opts.log ?? (() => {});
  const files = opts.files ?? listDataFiles(opts.data, log);
  const totalBytes = files.reduce((s, f) => s + statSync(f).size, 0);
  const trainer = new NativeTrainer();
  const progress = new Progress();
  try {
    let read = 0;
    const buf = new Uint8Array(READ_CHUNK);
    for (const file of files) {
      read += countFile(trainer, file, buf, (n) => {
        progress.update(`reading: ${mb(read + n)} / ${mb(totalBytes)}, ${trainer.wordsTotal.toLocaleString()} words`);
      });
    }
    progress.done();
    log(`counted ${trainer.wordsTotal.toLocaleString()} words (${trainer.wordsDistinct.toLocaleString()} distinct at most) in ${files.length} file(s), ${mb(read)}`);
    trainer.prepare(256 + SPECIALS.length);
    const wanted = vocabSize - 256 - SPECIALS.length;
    const merges: Int32Array[] = [];
    let done = 0;
    while (done < wanted) {
      const batch = trainer.merge(Math.min(MERGE_BATCH, wanted - done), minFrequency);
      if (batch.length === 0) break;
      merges.push(batch);
      done += batch.length / 2;
      progress.update(`merging: ${done.toLocaleString()} / ${wanted.toLocaleString()} merges`);
    }
    progress.done();
    let all = new Int32Array(2 * done);
    let o = 0;
    for (const m of merges) {
      all.set(m, o);
      o += m.length;
    }
    // A long run of one repeated text (megabytes of "aaaa…" or "====…") merges into ever longer
    // tokens; the encoder takes tokens up to MAX_TOKEN_BYTES, so the vocabulary ends before the
    // first merge that would make a longer one.
    let cappedAt: number | null = null;
    const lengths = new Float64Array(256 + SPECIALS.length + done).fill(1, 0, 256);
    for (let m = 0; m < done; m++) {
      const id = 256 + SPECIALS.length + m;
      lengths[id] = lengths[all[2 * m]!]! + lengths[all[2 * m + 1]!]!;
      if (lengths[id]! > MAX_TOKEN_BYTES) {
        log(`stopped after ${m} merges: the next would make a token of ${lengths[id]} bytes, longer than the ${MAX_TOKEN_BYTES} a token may have (--data holds a very long run of repeated text)`);
        all = all.slice(0, 2 * m);
        done = m;
        cappedAt = m;
        break;
      }
    }
    const tok = new BpeTokenizer(vocabFromMerges(SPECIALS, all));
    if (tok.vocabSize < vocabSize && cappedAt !== null) {
      log(`vocabulary has ${tok.vocabSize} tokens, fewer than --vocab-size ${vocabSize}: merging stopped at the token length limit`);
    } else if (tok.vocabSize < vocabSize) {
      log(`vocabulary has ${tok.vocabSize} tokens, fewer than --vocab-size ${vocabSize}: no remaining pair occurs --min-frequency ${minFrequency} times (more data or a lower --min-frequency gives more)`);
    } else {
      log(`vocabulary has ${tok.vocabSize} tokens (256 bytes, ${SPECIALS.length} special, ${done} merge${done === 1 ? "" : "s"})`);
    }
    return tok;
  } finally {
    progress.done();
    trainer.free();
  }
}

/** Feed one file (one document) to the trainer; returns its size. */
function countFile(trainer: NativeTrainer, path: string, buf: Uint8Array, onProgress: (n: number) => void): number {
  return readInSafePieces(path, buf, (piece, read) => {
    trainer.count(piece);
    onProgress(read);
  }, `--data ${path}`);
}

function mb(n: number): string {
  return `${(n / 1e6).toFixed(1)} MB`;
}
