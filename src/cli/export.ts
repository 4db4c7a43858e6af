/** `train_vocab export CKPT --format hf --out DIR`: a folder HuggingFace transformers loads as
 * GPT2LMHeadModel or LlamaForCausalLM (or, with --format lopos, a LOPOS v1 file for LoopOS). */
import type { CAC } from "cac";
import { dirname, join } from "node:path";
import { UserError } from "../base/errors.ts";
import { checkFolderWay, Outputs, refuseToReplace } from "../base/overwrite.ts";
import { requireFile, text } from "./use_flags.ts";

const FORMATS = ["hf", "lopos"] as const;

interface Options {
  vocab: unknown;
  format: unknown;
  out?: unknown;
  overwrite?: boolean;
}

export function registerExport(cli: CAC): void {
  cli
    .command("export <checkpoint>", "Write a checkpoint for other tools: a HuggingFace GPT-2 or Llama folder, or a LoopOS LOPOS v1 file")
    .option("--vocab <file>", "hf: the vocabulary the model was trained with; becomes tokenizer.json, vocab.json, merges.txt (path)", {
      default: "outputs/tokenizer.vocab",
    })
    .option("--format <fmt>", "hf (folder for transformers' GPT2LMHeadModel, or LlamaForCausalLM for a Llama model) or lopos (LoopOS's checkpoint file; models without attention biases only) (string)", { default: "hf" })
    .option("--out <path>", "hf: the folder to write (created if missing); lopos: the file to write (path, required)")
    .option("--overwrite", "Replace an earlier export or file at --out (boolean; default: refuse)")
    .example("train_vocab export outputs/autoregressive/model_checkpoint.bin --vocab outputs/tokenizer.vocab --format hf --out hf_model/")
    .example("train_vocab export imported/model_checkpoint.bin --format lopos --out imported/loopos_model.bin")
    .action(async (checkpoint: unknown, o: Options) => run(text("<checkpoint>", checkpoint)!, o));
}

async function run(checkpoint: string, o: Options): Promise<void> {
  const format = text("--format", o.format)!;
  if (!(FORMATS as readonly string[]).includes(format)) throw new UserError(`--format ${format}: expected ${FORMATS.join(" or ")}.`);
  const out = text("--out", o.out, false);
  if (!out) throw new UserError(`export: --out is required (${format === "hf" ? "the folder to write" : "the file to write"}).`);
  const overwrite = o.overwrite === true;
  // The checkpoint first (a folder given for it is named there), not the --vocab that follows.
  requireFile(checkpoint, "checkpoint");
  const outputs = new Outputs();

  if (format === "lopos") {
    // Everything that can refuse is checked before the weights are read.
    refuseToReplace(out, overwrite, { what: "a file", flag: "--out", waysOut: ["give another --out"] });
    checkFolderWay(dirname(out), "--out", out);
    await refuseLlama(checkpoint);
    const { readCheckpoint, readCheckpointHeader, writeLopos } = await import("../checkpoint/index.ts");
    if (readCheckpointHeader(checkpoint).arch.attention_bias) throw loposRefusal(checkpoint);
    const ckpt = readCheckpoint(checkpoint);
    try {
      outputs.folder(dirname(out), "--out", out);
      outputs.write("--out", out, () => writeLopos(out, ckpt.arch, ckpt.params));
    } catch (err) {
      outputs.undo();
      throw err;
    }
    console.error(`wrote ${out} (LOPOS v1: weights only; LoopOS reads it)`);
    return;
  }

  const vocab = text("--vocab", o.vocab)!;
  const { checkHfOut, exportHf, HF_FILES } = await import("../hf/export.ts");
  checkHfOut(out, overwrite);
  checkFolderWay(out, "--out", out);
  // Another kind of file given as the checkpoint (a .vocab) is said before a missing --vocab; its
  // header only, after the refusals that need no checkpoint.
  const { readCheckpointHeader } = await import("../checkpoint/index.ts");
  readCheckpointHeader(checkpoint);
  requireFile(vocab, "vocab", "--vocab");
  const { loadModel } = await import("../generate/load.ts");
  const { checkpoint: ckpt, tokenizer } = loadModel(checkpoint, vocab);
  let result;
  try {
    outputs.folder(out, "--out");
    outputs.willWrite(HF_FILES.map((f) => join(out, f)));
    result = outputs.write("--out", out, () => exportHf(ckpt.arch, ckpt.params, tokenizer, out));
  } catch (err) {
    outputs.undo();
    throw err;
  }
  for (const n of result.notices) console.error(`note: ${n}`);
  console.error(`wrote ${out}: ${result.files.join(", ")}`);
  const model = ckpt.arch.block === "llama" ? "LlamaForCausalLM" : "GPT2LMHeadModel";
  console.error(`load it with: ${model}.from_pretrained(${JSON.stringify(out)})`);
}

/** LOPOS v1 holds LoopOS's model, which has no attention biases (--arch gpt2 --attention-bias false trains it). */
function loposRefusal(checkpoint: string): UserError {
  return new UserError(
    `--format lopos: ${checkpoint} has attention biases, which a LOPOS v1 file cannot hold. Only models of LoopOS's shape ` +
      `(no attention biases: trained with --arch gpt2 --attention-bias false, or imported from LoopOS) export to LOPOS v1. ` +
      `Use --format hf instead (a folder for HuggingFace transformers).`,
  );
}

/** LOPOS v1 has no Llama block: refused before anything is written (after the checks that need no
 * checkpoint, as every other refusal). */
async function refuseLlama(checkpoint: string): Promise<void> {
  const { readCheckpointHeader } = await import("../checkpoint/index.ts");
  if (readCheckpointHeader(checkpoint).arch.block !== "llama") return;
  throw new UserError(
    `--format lopos: ${checkpoint} is a Llama model (--arch llama); LOPOS v1 holds only GPT-style models (LayerNorm, learned positions, GELU). ` +
      `Use --format hf instead (a LlamaForCausalLM folder for HuggingFace transformers).`,
  );
}
