/** `train_vocab export CKPT --format hf --out DIR`: a folder HuggingFace transformers loads as
 * GPT2LMHeadModel (or, with --format lopos, the seed system's checkpoint file). */
import type { CAC } from "cac";
import { UserError } from "../errors.ts";
import { requireFile, text } from "./use_flags.ts";

const FORMATS = ["hf", "lopos"] as const;

interface Options {
  vocab: unknown;
  format: unknown;
  out?: unknown;
}

export function registerExport(cli: CAC): void {
  cli
    .command("export <checkpoint>", "Write a checkpoint for other tools: a HuggingFace GPT-2 folder, or the seed's LOPOS file")
    .option("--vocab <file>", "hf: the vocabulary the model was trained with; becomes tokenizer.json, vocab.json, merges.txt (path)", {
      default: "outputs/tokenizer.vocab",
    })
    .option("--format <fmt>", "hf (folder for transformers' GPT2LMHeadModel) or lopos (the seed system's checkpoint file) (string)", { default: "hf" })
    .option("--out <path>", "hf: the folder to write (created if missing); lopos: the file to write (path, required)")
    .example("train_vocab export outputs/autoregressive/model_checkpoint.bin --vocab outputs/tokenizer.vocab --format hf --out hf_model/")
    .example("train_vocab export run/model_checkpoint.bin --format lopos --out run/seed_model.bin")
    .action(async (checkpoint: unknown, o: Options) => run(text("<checkpoint>", checkpoint)!, o));
}

async function run(checkpoint: string, o: Options): Promise<void> {
  const format = text("--format", o.format)!;
  if (!(FORMATS as readonly string[]).includes(format)) throw new UserError(`--format ${format}: expected ${FORMATS.join(" or ")}.`);
  const out = text("--out", o.out, false);
  if (!out) throw new UserError(`export: --out is required (${format === "hf" ? "the folder to write" : "the file to write"}).`);
  requireFile(checkpoint, "checkpoint");
  if (format === "lopos") {
    const { readCheckpoint, writeLopos } = await import("../checkpoint/index.ts");
    const ckpt = readCheckpoint(checkpoint);
    writeLopos(out, ckpt.arch, ckpt.params);
    console.error(`wrote ${out} (LOPOS v1: weights only; the seed system reads it)`);
    return;
  }
  const vocab = text("--vocab", o.vocab)!;
  requireFile(vocab, "vocab", "--vocab");
  const { loadModel } = await import("../generate/load.ts");
  const { exportHf } = await import("../hf/export.ts");
  const { checkpoint: ckpt, tokenizer } = loadModel(checkpoint, vocab);
  const result = exportHf(ckpt.arch, ckpt.params, tokenizer, out);
  for (const n of result.notices) console.error(`note: ${n}`);
  console.error(`wrote ${out}: ${result.files.join(", ")}`);
  console.error(`load it with: GPT2LMHeadModel.from_pretrained(${JSON.stringify(out)})`);
}
