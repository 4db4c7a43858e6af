/** `train_vocab generate`: stream text from a checkpoint, with a KV cache. */
import type { CAC } from "cac";
import { existsSync } from "node:fs";
import { UserError } from "../base/errors.ts";
import { count } from "../base/format.ts";
import { checkpointOf, DEFAULT_CHECKPOINT, realNumber, requireFile, text, wholeNumber } from "./use_flags.ts";

interface Options {
  checkpoint?: unknown;
  vocab: unknown;
  prompt?: unknown;
  maxTokens: unknown;
  temperature: unknown;
  topK: unknown;
  topP: unknown;
  seed?: unknown;
  /** false with --no-echo; otherwise absent. */
  echo?: boolean;
  ignoreEnd?: boolean;
  dumpLogits?: unknown;
}

export function registerGenerate(cli: CAC): void {
  const command = cli
    .command("generate [checkpoint]", "Write text with a trained model (alias: gen)")
    .alias("gen")
    .option("--checkpoint <file>", `Model checkpoint (ours, or a LoopOS LOPOS v1 file), or give it as the first argument (path; default: ${DEFAULT_CHECKPOINT})`)
    .option("--vocab <file>", "Vocabulary the model was trained with (path)", { default: "outputs/tokenizer.vocab" })
    .option("--prompt <text>", "Text to continue (string; `-`, or no --prompt with piped input: read stdin; empty: start of a document)")
    .option("--max-tokens <n>", "Stop after this many new tokens (integer >= 0)", { default: 200 })
    .option("--temperature <t>", "Sampling temperature; 0 = greedy, always the most likely token (number >= 0)", { default: 0.8 })
    .option("--top-k <k>", "Sample only among the k most likely tokens; 0 = off (integer >= 0)", { default: 40 })
    .option("--top-p <p>", "Sample only from the smallest set of tokens with this much probability; 1 = off (number in (0, 1])", { default: 0.95 })
    .option("--seed <n>", "Sampling seed (integer; default: from the clock, printed at the end so a run can be repeated)")
    .option("--no-echo", "Print only the new text, not the prompt before it (boolean; default: the prompt is printed first)")
    .option("--ignore-end", "Keep writing past end-of-text until --max-tokens (boolean)")
    .option("--dump-logits <file>", "Also write the tokens and the logits each new token was drawn from (safetensors; for reference checks; replaces only an earlier dump)")
    .example(`train_vocab generate --prompt "Once upon a time" --max-tokens 100`)
    .example(`echo "The meaning of" | train_vocab gen --checkpoint run/model_checkpoint.bin --vocab run/tokenizer.vocab --temperature 0`)
    .action(async (checkpoint: unknown, options: Options) => run(checkpoint, options));
  // cac gives a --no-X flag a default of true and prints "(default: true)" after it, which reads as
  // the opposite of what the flag does; without the default, echo is simply absent unless --no-echo.
  for (const option of command.options) if (option.negated && option.name === "echo") option.config.default = undefined;
}

async function readPrompt(value: unknown): Promise<string> {
  const given = value === undefined ? undefined : text("--prompt", value === true ? "" : value);
  if (given === "-" || (given === undefined && !process.stdin.isTTY)) return await Bun.stdin.text();
  return given ?? "";
}

async function run(argument: unknown, o: Options): Promise<void> {
  const { path: checkpoint, from } = checkpointOf(argument, o.checkpoint);
  const vocab = text("--vocab", o.vocab)!;
  const maxTokens = wholeNumber("--max-tokens", o.maxTokens, 0);
  const temperature = realNumber("--temperature", o.temperature, 0, 1e6, "0 means greedy");
  const topK = wholeNumber("--top-k", o.topK, 0);
  const topP = realNumber("--top-p", o.topP, Number.MIN_VALUE, 1, "1 means off");
  const seed = o.seed === undefined ? Date.now() % 0x100000000 : wholeNumber("--seed", o.seed, 0, 0xffffffff);
  const dumpPath = text("--dump-logits", o.dumpLogits, false);
  if (argument !== undefined && !existsSync(checkpoint)) {
    throw new UserError(`Checkpoint file not found: ${checkpoint} (the first argument, which names the checkpoint). The text to continue goes in --prompt "…".`);
  }
  requireFile(checkpoint, "checkpoint", from);
  requireFile(vocab, "vocab", "--vocab", checkpoint);
  if (dumpPath !== undefined) {
    const { checkDumpPath } = await import("../generate/dump.ts");
    checkDumpPath(dumpPath, "--dump-logits");
  }
  const prompt = await readPrompt(o.prompt);

  const { loadModel } = await import("../generate/load.ts");
  const { InferenceEngine } = await import("../generate/engine.ts");
  const { generate } = await import("../generate/generate.ts");
  const { checkpoint: ckpt, tokenizer } = loadModel(checkpoint, vocab);
  if (tokenizer.endOfTextId === null && maxTokens > 0 && prompt.length === 0) {
    throw new UserError("--prompt is empty and this vocabulary has no end-of-text token to start from: give some text to continue.");
  }
  const engine = new InferenceEngine(ckpt.arch, ckpt.params);
  const write = (s: string) => process.stdout.write(s);
  const result = generate(engine, tokenizer, prompt, {
    maxTokens,
    ignoreEnd: o.ignoreEnd === true,
    temperature,
    topK,
    topP,
    seed,
    recordLogits: dumpPath !== undefined,
    onNotice: (m) => console.error(m),
    onText: write,
    // Echo what the model continues: the user's text, or what is left of it after a cut.
    onPrompt: (ids, cut) => {
      if (o.echo !== false) write(cut ? tokenizer.decode(ids) : prompt);
    },
  });
  write("\n");
  if (dumpPath) {
    const { writeLogitsDump } = await import("../generate/dump.ts");
    writeLogitsDump(dumpPath, [...result.promptIds, ...result.generated], result.promptIds.length - 1, result.logits, ckpt.arch.vocab_size);
  }
  const n = result.generated.length;
  const rate = result.decodeSeconds > 0 ? n / result.decodeSeconds : 0;
  console.error(
    `[${count(n, "token")} in ${result.decodeSeconds.toFixed(2)} s: ${rate.toFixed(1)} tokens/s · prompt ${count(result.promptIds.length, "token")} in ` +
      `${(result.prefillSeconds * 1000).toFixed(1)} ms · stopped at ${result.stop} · seed ${seed}]`,
  );
}
