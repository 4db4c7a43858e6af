/** Tiny models and vocabularies made on the spot, shared by the generate, hf and CLI tests. */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeCheckpoint } from "../../src/checkpoint/index.ts";
import { type Architecture, parameterCount, tensorSpecs } from "../../src/model/layout.ts";
import { BpeTokenizer, END_OF_TEXT, saveTokenizer, trainTokenizer } from "../../src/tokenizer/index.ts";
import { Xoshiro128 } from "../../src/base/rng.ts";

export const SAMPLE_TEXT =
  "The cat sat on the mat. The dog sat on the log. A bird sang in the tree, and the cat watched the bird.\n" +
  "Über den Wolken: naïve café — 東京 and emoji 🙂 are bytes too.\n";

export function tempDir(prefix = "tv-use-"): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A small byte-level BPE vocabulary trained on SAMPLE_TEXT (about 300 tokens). */
export function tinyTokenizer(dir: string, vocabSize = 300): { tok: BpeTokenizer; path: string } {
  const data = join(dir, "vocab_data.txt");
  writeFileSync(data, SAMPLE_TEXT.repeat(4));
  const tok = trainTokenizer({ data, vocabSize, minFrequency: 2 });
  const path = join(dir, "tokenizer.vocab");
  saveTokenizer(tok, path);
  if (tok.endOfTextId === null) throw new Error(`fixture vocab lacks ${END_OF_TEXT}`);
  return { tok, path };
}

export function archFor(vocabSize: number, over: Partial<Architecture> = {}): Architecture {
  return {
    d_model: 32, num_heads: 4, num_layers: 2, d_ff: 64, vocab_size: vocabSize, max_seq_len: 24,
    tied_embeddings: true, attention_bias: true, ...over,
  };
}

/** Random parameters with GPT-2-like scales: unit-ish norms, small matrices, varied biases, so that
 * every tensor changes the output (a wrong transpose or a dropped bias shows up in the logits). */
export function randomParams(arch: Architecture, seed = 1): Float32Array {
  const rng = Xoshiro128.fromSeed(seed);
  const p = new Float32Array(parameterCount(arch));
  const gauss = () => {
    const u = rng.nextFloat32() || 1e-9;
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.nextFloat32());
  };
  for (const s of tensorSpecs(arch)) {
    const isNormWeight = s.name.endsWith("ln_1.weight") || s.name.endsWith("ln_2.weight") || s.name === "ln_f.weight";
    const std = isNormWeight ? 0.2 : s.shape.length === 1 ? 0.1 : s.name === "wte" || s.name === "wpe" ? 0.5 : 0.2;
    for (let i = 0; i < s.size; i++) p[s.offset + i] = (isNormWeight ? 1 : 0) + std * gauss();
  }
  return p;
}

/** Checkpoint + vocab on disk for the CLI. */
export function tinyModelFiles(dir: string, over: Partial<Architecture> = {}, seed = 1) {
  const { tok, path: vocab } = tinyTokenizer(dir);
  const arch = archFor(tok.vocabSize, over);
  const params = randomParams(arch, seed);
  const checkpoint = join(dir, "model_checkpoint.bin");
  writeCheckpoint(checkpoint, {
    arch,
    tokenizer: { type: tok.type, vocab_size: tok.vocabSize, fingerprint: tok.fingerprint },
    training: null,
    params,
  });
  return { tok, vocab, arch, params, checkpoint };
}

export const REPO = join(import.meta.dir, "..", "..");

/** Run the CLI as users do; returns exit code and output. */
export function runCli(args: string[], opts: { cwd?: string; stdin?: string } = {}) {
  const proc = Bun.spawnSync(["bun", "run", join(REPO, "bin", "train-vocab.ts"), ...args], {
    cwd: opts.cwd ?? REPO,
    stdin: opts.stdin === undefined ? "ignore" : new TextEncoder().encode(opts.stdin),
    env: { ...process.env, NO_COLOR: "1" },
  });
  return { code: proc.exitCode, stdout: proc.stdout.toString(), stderr: proc.stderr.toString() };
}
