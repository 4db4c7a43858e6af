/**
 * The formats the fuzzer attacks: for each, a valid file built here (no files from outside the
 * repository), the mutations that make sense for it, and the real reader it goes through. A reader
 * returns normally (a valid load; tokenizers must then round-trip bytes) or throws; what it throws is
 * classified by the runner.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { Xoshiro128 } from "../src/base/rng.ts";
import { readCheckpoint, readCheckpointHeader, writeCheckpoint, writeLopos } from "../src/checkpoint/index.ts";
import { exportHf } from "../src/hf/export.ts";
import { importHf } from "../src/hf/import.ts";
import type { Architecture } from "../src/model/layout.ts";
import { parameterCount } from "../src/model/layout.ts";
import { BpeTokenizer, exportHuggingFace, loadTokenizer, trainTokenizer } from "../src/tokenizer/index.ts";
import { bpeFingerprint, type BpeVocab, KIND_BYTE, KIND_MERGE, KIND_SPECIAL, PRETOKENIZER } from "../src/tokenizer/bpe.ts";
import { escapeToken } from "../src/tokenizer/escape.ts";
import { formatVocabFile, parseVocabFile } from "../src/tokenizer/vocab_file.ts";
import { resolveOptions } from "../src/train/options.ts";
import {
  fixChecksum, GENERIC, headerLength, jsonStructure, loposFields, type Mutation, type Rng, safetensorsHeaderMutation, TEXTUAL,
} from "./mutate.ts";

export const FORMATS = ["checkpoint", "lopos", "vocab", "loopos-vocab", "tokenizer-json", "train-config", "hf-config", "hf-weights", "hf-llama-config"] as const;
export type Format = (typeof FORMATS)[number];

export interface FormatSpec {
  /** File name the mutated bytes are written to (some readers look at the name). */
  file: string;
  /** The valid file every case mutates. */
  valid: Uint8Array;
  mutations: [string, Mutation][];
  /** Load `path` through the real reader; throw on refusal. */
  read(path: string): void;
}

const ARCH: Architecture = { d_model: 8, num_heads: 2, num_layers: 2, d_ff: 16, vocab_size: 300, max_seq_len: 8, tied_embeddings: true, attention_bias: true };
const LLAMA_ARCH: Architecture = { ...ARCH, attention_bias: false, block: "llama", rope_theta: 10000, norm_eps: 1e-5 };
/** Shaped like LoopOS's models: untied head, no attention biases. */
const LOOPOS_ARCH: Architecture = { d_model: 6, num_heads: 2, num_layers: 2, d_ff: 10, vocab_size: 40, max_seq_len: 5, tied_embeddings: false, attention_bias: false };

function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  const rng = Xoshiro128.fromSeed(seed);
  for (let i = 0; i < n; i++) out[i] = (rng.nextFloat32() - 0.5) * 0.2;
  return out;
}

const SAMPLE_TEXT = "The cat sat on the mat.\nÜber naïve café — 東京 🐈 <|endoftext|> \t  spaces   and 12345!\n";

/** Text that exercises every byte value and the pre-tokenizer's classes. */
function probeBytes(): Uint8Array {
  const text = new TextEncoder().encode(SAMPLE_TEXT);
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  const out = new Uint8Array(text.length + all.length);
  out.set(text);
  out.set(all, text.length);
  return out;
}
const PROBE = probeBytes();

/** A loaded tokenizer must encode anything and, for byte-level BPE, decode back the same bytes. */
function exercise(tok: ReturnType<typeof loadTokenizer>): void {
  const ids = tok.encode(PROBE);
  for (const id of ids) if (!(id >= 0 && id < tok.vocabSize)) throw new Error(`encode produced id ${id} outside 0..${tok.vocabSize - 1}`);
  if (tok instanceof BpeTokenizer) {
    const back = tok.decodeBytes(ids);
    if (Buffer.compare(Buffer.from(back), Buffer.from(PROBE)) !== 0) throw new Error("a loaded BPE vocabulary does not round-trip bytes");
  } else {
    tok.decode(ids);
  }
}

const LOOPOS_WORDS = ["<pad>", "<unk>", "<bos>", "<eos>", "<|user|>", "<|assistant|>", "the", "cat", "sat", "on", "mat", ".", ",", "über", "naïve"];
function looposVocabText(): string {
  const lines = ["# Tokenizer Vocabulary", `vocab_size=${LOOPOS_WORDS.length}`, `next_id=${LOOPOS_WORDS.length}`, "total_tokens=1234", "---"];
  LOOPOS_WORDS.forEach((w, i) => lines.push(`${i}\t${w}\t${100 - i}`));
  return lines.join("\n") + "\n";
}

const TRAIN_CONFIG = {
  d_model: 64, num_heads: 4, num_layers: 2, d_ff: 256, learning_rate: 0.0003, epochs: 3, max_length: 64, batch_size: 8,
  seed: 7, save_every: 100, val_fraction: 0.05, weight_decay: 0.1, grad_clip: 1.0, warmup_steps: 10, precision: "fp32",
  vocab_size: 1000, "//": "a comment",
};

/** Our .vocab text for any vocabulary, consistent or not (its own header counts and fingerprint). */
export function serializeVocab(v: BpeVocab): string {
  const n = v.kinds.length;
  const specials: string[] = [];
  const entries: string[] = [];
  let merges = 0;
  for (let i = 0; i < n; i++) {
    const kind = v.kinds[i];
    if (kind === KIND_SPECIAL) specials.push(escapeToken(v.tokens[i]!));
    if (kind === KIND_MERGE) merges++;
    const what = kind === KIND_BYTE ? "byte" : kind === KIND_SPECIAL ? "special" : `${v.left[i]} ${v.right[i]}`;
    entries.push(`${i}\t${escapeToken(v.tokens[i]!)}\t${what}`);
  }
  const head = ["train-vocab vocab 1", "type=bpe", `pretokenizer=${PRETOKENIZER}`, `vocab_size=${n}`, `merges=${merges}`, `specials=${specials.join(" ")}`, `fingerprint=${bpeFingerprint(v)}`, "---"];
  return [...head, ...entries].join("\n") + "\n";
}

function joinBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const t = new Uint8Array(a.length + b.length);
  t.set(a);
  t.set(b, a.length);
  return t;
}

/**
 * Change a vocabulary's structure and write it back as a self-consistent file (right counts, right
 * fingerprint), so the cases get past the file's bookkeeping to the checks that matter, and valid
 * ones go on to encode through C: merges re-parented (token bytes recomputed), the vocabulary cut,
 * kinds changed, a pair merged twice, and chains of merges that make very long tokens.
 */
const vocabStructure: Mutation = (r, b) => {
  let v: BpeVocab;
  try {
    v = parseVocabFile(new TextDecoder().decode(b), "tokenizer.vocab").vocab;
  } catch {
    return b;
  }
  const kinds = Array.from(v.kinds), left = Array.from(v.left), right = Array.from(v.right), tokens = [...v.tokens];
  const n = kinds.length;
  const recompute = (from: number) => {
    for (let j = from; j < kinds.length; j++) {
      if (kinds[j] === KIND_MERGE && left[j]! >= 0 && right[j]! >= 0 && left[j]! < j && right[j]! < j) tokens[j] = joinBytes(tokens[left[j]!]!, tokens[right[j]!]!);
    }
  };
  const merges = kinds.map((k, i) => (k === KIND_MERGE ? i : -1)).filter((i) => i >= 0);
  switch (r.int(0, 5)) {
    case 0: { // re-parent one merge, to any earlier ids (specials included, now and then)
      if (merges.length === 0) break;
      const i = r.pick(merges);
      left[i] = r.int(0, i - 1);
      right[i] = r.next() < 0.9 ? r.int(0, i - 1) : r.int(i, n + 1);
      recompute(i);
      break;
    }
    case 1: { // cut the vocabulary
      const k = r.int(250, n);
      kinds.length = left.length = right.length = tokens.length = k;
      break;
    }
    case 2: { // one entry changes kind
      const i = r.int(0, n - 1);
      kinds[i] = r.pick([KIND_BYTE, KIND_MERGE, KIND_SPECIAL, 7]);
      if (kinds[i] === KIND_BYTE) tokens[i] = tokens[i]!.subarray(0, 1);
      break;
    }
    case 3: { // a pair merged a second time
      if (merges.length === 0) break;
      const i = r.pick(merges);
      kinds.push(KIND_MERGE);
      left.push(left[i]!);
      right.push(right[i]!);
      tokens.push(tokens[i]!);
      break;
    }
    default: { // a chain of merges, each token doubling the last: long tokens, up to just past the limit
      let last = merges.length > 0 ? r.pick(merges) : r.int(0x61, 0x7a);
      const target = r.pick([1 << 8, 1 << 12, 1 << 16, (1 << 20) + 2]);
      while (tokens[last]!.length < target && kinds.length < n + 40) {
        const other = r.next() < 0.9 ? last : r.int(0x61, 0x7a);
        kinds.push(KIND_MERGE);
        left.push(last);
        right.push(other);
        tokens.push(joinBytes(tokens[last]!, tokens[other]!));
        last = kinds.length - 1;
      }
    }
  }
  const vocab: BpeVocab = { kinds: Uint8Array.from(kinds), left: Int32Array.from(left), right: Int32Array.from(right), tokens };
  return new TextEncoder().encode(serializeVocab(vocab));
};

/** Build every format's valid file under `dir` (deterministic). */
export function buildFormats(dir: string): Record<Format, FormatSpec> {
  mkdirSync(dir, { recursive: true });
  const text = join(dir, "corpus.txt");
  writeFileSync(text, (SAMPLE_TEXT + "the cat and the dog sat on the mat by the door. ").repeat(40));
  const tok = trainTokenizer({ data: text, vocabSize: ARCH.vocab_size, minFrequency: 2 });
  const vocabText = formatVocabFile(tok);

  const arch = { ...ARCH, vocab_size: tok.vocabSize };
  const ckptPath = join(dir, "valid.ckpt");
  writeCheckpoint(ckptPath, {
    arch,
    tokenizer: { type: "bpe", vocab_size: tok.vocabSize, fingerprint: tok.fingerprint },
    training: {
      global_step: 12, stage: 0, epoch: 1, step_in_epoch: 2, tokens_seen: 12 * 4 * 8, rng_state: "0123456789abcdef0123456789abcdef",
      stage_complete: false,
      plan: {
        data_fingerprint: "d4t4", epochs: 2, peak_lr: 3e-4, min_lr: 3e-5, warmup_steps: 2, total_steps: 20, steps_per_epoch: 10,
        batch_size: 4, seq_len: 8, weight_decay: 0.1, beta1: 0.9, beta2: 0.95, eps: 1e-8, grad_clip: 1, seed: 42, schedule: "cosine",
      },
      history: [{ stage: 0, data_fingerprint: "d4t4", epochs: 2, peak_lr: 3e-4 }],
    },
    params: values(parameterCount(arch), 1),
    adam: { m: values(parameterCount(arch), 4), v: values(parameterCount(arch), 5).map(Math.abs) },
  });
  const loposPath = join(dir, "valid.lopos");
  writeLopos(loposPath, LOOPOS_ARCH, values(parameterCount(LOOPOS_ARCH), 2));
  const hfDir = join(dir, "hf");
  exportHf(arch, values(parameterCount(arch), 3), tok, hfDir);
  const llamaDir = join(dir, "hf-llama");
  exportHf(LLAMA_ARCH, values(parameterCount(LLAMA_ARCH), 6), tok, llamaDir);

  const read = (p: string) => new Uint8Array(readFileSync(p));
  const enc = new TextEncoder();
  const checkpointReader = (path: string) => {
    readCheckpointHeader(path);
    readCheckpoint(path);
  };
  const withFixedSum = (m: Mutation): Mutation => (r, b) => fixChecksum(m(r, b));
  // Our .vocab carries a fingerprint of its entries: give it the right one, so mutated entries that
  // pass every line check reach the tokenizer (and C) instead of stopping at the fingerprint.
  const withFixedFingerprint = (m: Mutation): Mutation => (r, b) => {
    const out = m(r, b);
    const text = new TextDecoder().decode(out);
    try {
      parseVocabFile(text, "x");
    } catch (err) {
      const fp = /fingerprint ([0-9a-f]{32}) does not match the entries \(([0-9a-f]{32})\)/.exec(String((err as Error).message));
      if (fp) return enc.encode(text.replace(`fingerprint=${fp[1]}`, `fingerprint=${fp[2]}`));
    }
    return out;
  };
  const textual = [...GENERIC, ...TEXTUAL];
  const json = (nested: string[] = []) => [...GENERIC, ...TEXTUAL, ["json", jsonStructure(nested)], ["json", jsonStructure(nested)]] as [string, Mutation][];

  // HF folder readers read config.json and model.safetensors from one folder: the runner writes the
  // mutated file into a copy of the exported folder.
  const hfRead = (path: string) => {
    importHf(join(path, ".."));
  };

  return {
    checkpoint: {
      file: "model_checkpoint.bin",
      valid: read(ckptPath),
      mutations: [
        ...GENERIC,
        ["header-length", headerLength],
        ["header", safetensorsHeaderMutation(["train_vocab"])],
        ["header", safetensorsHeaderMutation(["train_vocab"])],
        ["header+sum", withFixedSum(safetensorsHeaderMutation(["train_vocab"]))],
        ["header+sum", withFixedSum(safetensorsHeaderMutation(["train_vocab"]))],
        ["data+sum", withFixedSum((r, b) => GENERIC[r.int(0, 1)]![1](r, b))],
      ],
      read: checkpointReader,
    },
    lopos: {
      file: "model.lopos",
      valid: read(loposPath),
      mutations: [...GENERIC, ["lopos-fields", loposFields], ["lopos-fields", loposFields], ["lopos-fields", loposFields]],
      read: checkpointReader,
    },
    vocab: {
      file: "tokenizer.vocab",
      valid: enc.encode(vocabText),
      mutations: [
        ...textual,
        ...textual.map(([n, m]) => [`${n}+fp`, withFixedFingerprint(m)] as [string, Mutation]),
        ...Array.from({ length: 6 }, () => ["structure", vocabStructure] as [string, Mutation]),
      ],
      read: (p) => exercise(loadTokenizer(p)),
    },
    "loopos-vocab": {
      file: "loopos.vocab",
      valid: enc.encode(looposVocabText()),
      mutations: textual,
      read: (p) => exercise(loadTokenizer(p)),
    },
    "tokenizer-json": {
      file: "tokenizer.json",
      valid: enc.encode(exportHuggingFace(tok)),
      mutations: json(),
      read: (p) => exercise(loadTokenizer(p)),
    },
    "train-config": {
      file: "run.json",
      valid: enc.encode(JSON.stringify(TRAIN_CONFIG, null, 2)),
      mutations: json(),
      read: (p) => {
        resolveOptions({ config: p, data: "corpus.txt" });
      },
    },
    "hf-config": {
      file: "config.json",
      valid: read(join(hfDir, "config.json")),
      mutations: json(),
      read: hfRead,
    },
    "hf-weights": {
      file: "model.safetensors",
      valid: read(join(hfDir, "model.safetensors")),
      mutations: [...GENERIC, ["header-length", headerLength], ["header", safetensorsHeaderMutation([])], ["header", safetensorsHeaderMutation([])]],
      read: hfRead,
    },
    "hf-llama-config": {
      file: "config.json",
      valid: read(join(llamaDir, "config.json")),
      mutations: json(),
      // The runner gives this format a folder of its own: the Llama weights go beside the config.
      read: (path) => {
        const weights = join(dirname(path), "model.safetensors");
        if (!existsSync(weights)) copyFileSync(join(llamaDir, "model.safetensors"), weights);
        importHf(dirname(path));
      },
    },
  };
}

/** The folder of valid files every HF case starts from (its other files stay valid). */
export function hfValidFolder(dir: string): string {
  return join(dir, "hf");
}

export function mutate(spec: FormatSpec, r: Rng): { bytes: Uint8Array; steps: string[] } {
  let bytes = spec.valid;
  const steps: string[] = [];
  // Mostly one mutation, sometimes a stack of two or three.
  const count = r.next() < 0.7 ? 1 : r.int(2, 3);
  for (let i = 0; i < count; i++) {
    const [name, m] = r.pick(spec.mutations);
    bytes = m(r, bytes);
    steps.push(name);
  }
  return { bytes, steps };
}
