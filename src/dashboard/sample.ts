/**
 * "A sample from the latest checkpoint": the run folder's model_checkpoint.bin, read again whenever the
 * training run has saved a newer one, and the generate command's own loop (KV cache, sampler). The
 * vocabulary is the one given with --vocab, or the .vocab file in the run folder or its parent whose
 * fingerprint the checkpoint records (where the training defaults put it).
 */
import { readdirSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { UserError } from "../base/errors.ts";
import { readCheckpointHeader } from "../checkpoint/index.ts";
import { InferenceEngine } from "../generate/engine.ts";
import { generate } from "../generate/generate.ts";
import { checkTokenizer, loadModel, loadVocab } from "../generate/load.ts";
import type { Tokenizer } from "../tokenizer/index.ts";
import { CHECKPOINT_NAME } from "../train/run.ts";

export interface SampleRequest {
  prompt: string;
  maxTokens: number;
  temperature: number;
  topK: number;
  seed: number;
}

export interface SampleResult {
  prompt: string;
  text: string;
  tokens: number;
  /** The checkpoint's global step (null for a file that records none). */
  step: number | null;
  checkpoint: string;
  /** When the checkpoint was saved (ms since the epoch). */
  savedAt: number;
  vocab: string;
  seconds: number;
}

interface Loaded {
  key: string;
  engine: InferenceEngine;
  tokenizer: Tokenizer;
  vocab: string;
  step: number | null;
}

export class CheckpointSampler {
  private cache = new Map<string, Loaded>();

  /** `vocab`: the vocabulary for every run (--vocab), or null to find each run's own. */
  constructor(private readonly vocab: string | null) {}

  sample(folder: string, req: SampleRequest): SampleResult {
    const path = join(folder, CHECKPOINT_NAME);
    let st;
    try {
      st = statSync(path);
    } catch {
      throw new UserError(`No ${CHECKPOINT_NAME} in ${folder} yet: a run saves one at the end of each epoch and every --save-every steps.`);
    }
    const key = `${st.mtimeMs}:${st.size}`;
    let loaded = this.cache.get(folder);
    if (!loaded || loaded.key !== key) {
      loaded = this.load(folder, path, key);
      this.cache.set(folder, loaded);
    }
    const t0 = performance.now();
    loaded.engine.reset();
    const out = generate(loaded.engine, loaded.tokenizer, req.prompt, {
      maxTokens: req.maxTokens, temperature: req.temperature, topK: req.topK, topP: 1, seed: req.seed,
    });
    return {
      prompt: req.prompt, text: loaded.tokenizer.decode(out.generated), tokens: out.generated.length, step: loaded.step,
      checkpoint: path, savedAt: st.mtimeMs, vocab: loaded.vocab, seconds: (performance.now() - t0) / 1000,
    };
  }

  private load(folder: string, path: string, key: string): Loaded {
    const vocab = this.vocab ?? findVocab(folder, path);
    const { checkpoint, tokenizer } = loadModel(path, vocab);
    return { key, engine: new InferenceEngine(checkpoint.arch, checkpoint.params), tokenizer, vocab, step: checkpoint.training?.global_step ?? null };
  }
}

/** The .vocab in the run folder or its parent that the checkpoint was trained with. */
export function findVocab(folder: string, checkpointPath: string): string {
  const header = readCheckpointHeader(checkpointPath);
  const places = [folder, dirname(folder)];
  const tried: string[] = [];
  for (const place of places) {
    let names: string[];
    try {
      names = readdirSync(place).filter((n) => n.endsWith(".vocab")).sort();
    } catch {
      continue;
    }
    for (const name of names) {
      const candidate = join(place, name);
      tried.push(candidate);
      try {
        checkTokenizer(header, loadVocab(candidate), candidate);
        return candidate;
      } catch {
        // another run's vocabulary, or not a vocabulary at all: try the next
      }
    }
  }
  throw new UserError(
    `No vocabulary for ${checkpointPath} in ${places.join(" or ")}` +
      (tried.length > 0 ? ` (${tried.join(", ")} ${tried.length === 1 ? "is" : "are"} another one)` : "") +
      ": start the dashboard with --vocab <the .vocab the run was trained with>.",
  );
}
