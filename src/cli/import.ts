/** `train_vocab import DIR --out CKPT`: a HuggingFace GPT-2 folder (trained anywhere) as our
 * checkpoint and vocabulary, ready to fine-tune (`train --resume`), generate or evaluate. */
import type { CAC } from "cac";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { UserError } from "../errors.ts";
import { text } from "./use_flags.ts";

interface Options {
  out?: unknown;
  vocabOut?: unknown;
}

export function registerImport(cli: CAC): void {
  cli
    .command("import <folder>", "Read a HuggingFace GPT-2 folder (config.json, model.safetensors, tokenizer) into a checkpoint and vocab file")
    .option("--out <file>", "The checkpoint to write (path, required)")
    .option("--vocab-out <file>", "The vocabulary to write, from the folder's tokenizer (path; default: tokenizer.vocab beside --out)")
    .example("train_vocab import hf_model/ --out outputs/imported/model_checkpoint.bin --vocab-out outputs/imported/tokenizer.vocab")
    .action(async (folder: unknown, o: Options) => run(text("<folder>", folder)!, o));
}

async function run(folder: string, o: Options): Promise<void> {
  const out = text("--out", o.out, false);
  if (!out) throw new UserError("import: --out is required (the checkpoint file to write).");
  const vocabOut = text("--vocab-out", o.vocabOut, false) ?? join(dirname(out), "tokenizer.vocab");
  const { importHf } = await import("../hf/import.ts");
  const { writeCheckpoint } = await import("../checkpoint/index.ts");
  const { saveTokenizer } = await import("../tokenizer/index.ts");
  const result = importHf(folder);
  for (const file of [out, vocabOut]) mkdirSync(dirname(file), { recursive: true });
  for (const n of result.notices) console.error(`note: ${n}`);
  const tok = result.tokenizer;
  if (tok) saveTokenizer(tok, vocabOut);
  else console.error("note: the folder has no tokenizer files; the checkpoint records no tokenizer (any vocab of its size will be accepted).");
  writeCheckpoint(out, {
    arch: result.arch,
    tokenizer: tok ? { type: tok.type, vocab_size: tok.vocabSize, fingerprint: tok.fingerprint } : null,
    training: null,
    params: result.params,
  });
  const a = result.arch;
  console.error(
    `wrote ${out} (d_model ${a.d_model}, num_heads ${a.num_heads}, num_layers ${a.num_layers}, d_ff ${a.d_ff}, vocab_size ${a.vocab_size}, ` +
      `max_seq_len ${a.max_seq_len})${tok ? ` and ${vocabOut} (${tok.vocabSize} tokens)` : ""}`,
  );
}
