/** `train_vocab eval`: loss, perplexity and bits per byte of a checkpoint on a text file or folder. */
import type { CAC } from "cac";
import { checkpointOf, DEFAULT_CHECKPOINT, requireFile, text, wholeNumber } from "./use_flags.ts";

interface Options {
  checkpoint?: unknown;
  vocab: unknown;
  data?: unknown;
  maxLength?: unknown;
  maxWindows?: unknown;
  json?: boolean;
}

export function registerEval(cli: CAC): void {
  cli
    .command("eval [checkpoint]", "Measure a model on text: mean loss, perplexity, bits per byte")
    .option("--checkpoint <file>", `Model checkpoint (ours or LoopOS's LOPOS), or give it as the first argument (path; default: ${DEFAULT_CHECKPOINT})`)
    .option("--vocab <file>", "Vocabulary the model was trained with (path)", { default: "outputs/tokenizer.vocab" })
    .option("--data <path>", "Text file, or folder read recursively in sorted order as training does (path, required)")
    .option("--max-length <n>", "Window length in tokens (integer; default: the checkpoint's training seq_len, else max_seq_len)")
    .option("--max-windows <n>", "Evaluate only the first n windows (integer; default: all)")
    .option("--json", "Print one JSON object (boolean)")
    .example("train_vocab eval --data data/heldout.txt")
    .example("train_vocab eval --checkpoint run/model_checkpoint.bin --vocab run/tokenizer.vocab --data valid/ --json")
    .action(async (checkpoint: unknown, o: Options) => run(checkpoint, o));
}

async function run(argument: unknown, o: Options): Promise<void> {
  const { path: checkpoint, from } = checkpointOf(argument, o.checkpoint);
  const vocab = text("--vocab", o.vocab)!;
  const data = text("--data", o.data, false);
  const { UserError } = await import("../base/errors.ts");
  if (!data) throw new UserError("eval: --data is required (a text file or a folder of text files to measure the model on).");
  requireFile(checkpoint, "checkpoint", from);
  requireFile(vocab, "vocab", "--vocab", checkpoint);
  requireFile(data, "data", "--data");
  const { loadModel } = await import("../generate/load.ts");
  const { InferenceEngine } = await import("../generate/engine.ts");
  const { evaluate } = await import("../generate/evaluate.ts");
  const { encodeFiles, listDataFiles } = await import("../tokenizer/index.ts");
  const { checkpoint: ckpt, tokenizer } = loadModel(checkpoint, vocab);
  const P = ckpt.arch.max_seq_len;
  const seqLen = o.maxLength === undefined ? Math.min(P, ckpt.training?.plan.seq_len ?? P) : wholeNumber("--max-length", o.maxLength, 1, P);
  const maxWindows = o.maxWindows === undefined ? undefined : wholeNumber("--max-windows", o.maxWindows, 1);
  const ids = encodeFiles(tokenizer, listDataFiles(data, (m) => console.error(m)));
  const started = performance.now();
  const r = evaluate(new InferenceEngine(ckpt.arch, ckpt.params), tokenizer, ids, seqLen, { maxWindows });
  const seconds = (performance.now() - started) / 1000;
  if (o.json) {
    console.log(JSON.stringify({
      checkpoint, data, windows: r.windows, seq_len: r.seqLen, tokens: r.tokens, bytes: r.bytes,
      mean_loss: r.meanLoss, perplexity: r.perplexity, bits_per_byte: r.bitsPerByte,
    }));
    return;
  }
  const rows: [string, string][] = [
    ["tokens evaluated", `${r.tokens.toLocaleString("en-US")} (${r.windows} windows of ${r.seqLen}; ${r.bytes.toLocaleString("en-US")} bytes)`],
    ["mean loss", `${r.meanLoss.toFixed(4)} nats/token`],
    ["perplexity", r.perplexity.toFixed(2)],
    ["bits per byte", r.bitsPerByte.toFixed(4)],
  ];
  for (const [k, v] of rows) console.log(`${k.padEnd(17)} ${v}`);
  console.error(`[${(r.tokens / seconds).toFixed(0)} tokens/s]`);
}
