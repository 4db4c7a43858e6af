/** `train_vocab import DIR --out CKPT`: a HuggingFace GPT-2 or Llama folder (trained anywhere) as our
 * checkpoint and vocabulary, ready to fine-tune (`train --resume`), generate or evaluate. */
import type { CAC } from "cac";
import { existsSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { UserError } from "../base/errors.ts";
import { count } from "../base/format.ts";
import { checkFolderWay, Outputs, refuseToReplace } from "../base/overwrite.ts";
import { text } from "./use_flags.ts";

interface Options {
  out?: unknown;
  vocabOut?: unknown;
  overwrite?: boolean;
}

export function registerImport(cli: CAC): void {
  cli
    .command("import <folder>", "Read a HuggingFace GPT-2 or Llama folder (config.json, model.safetensors, tokenizer) into a checkpoint and vocab file")
    .option("--out <file>", "The checkpoint to write (path, required)")
    .option("--vocab-out <file>", "The vocabulary to write, from the folder's tokenizer (path; default: tokenizer.vocab beside --out)")
    .option("--overwrite", "Replace an existing checkpoint at --out and vocabulary at --vocab-out (boolean; default: refuse)")
    .example("train_vocab import hf_model/ --out outputs/imported/model_checkpoint.bin --vocab-out outputs/imported/tokenizer.vocab")
    .action(async (folder: unknown, o: Options) => run(text("<folder>", folder)!, o));
}

async function run(folder: string, o: Options): Promise<void> {
  const out = text("--out", o.out, false);
  if (!out) throw new UserError("import: --out is required (the checkpoint file to write).");
  const vocabGiven = text("--vocab-out", o.vocabOut, false);
  const vocabOut = vocabGiven ?? join(dirname(out), "tokenizer.vocab");
  const vocabFlag = vocabGiven ? "--vocab-out" : "--vocab-out (default: beside --out)";
  if (resolve(vocabOut) === resolve(out)) throw new UserError(`--out and --vocab-out both name ${out}: give the vocabulary another path.`);
  const overwrite = o.overwrite === true;
  // Everything that can refuse is checked before the weights are read; the folder to read first.
  checkModelFolder(folder);
  refuseToReplace(out, overwrite, { what: "a checkpoint", flag: "--out", waysOut: ["give another --out"] });
  const { hasTokenizerFiles } = await import("../hf/tokenizer_files.ts");
  const writesVocab = hasTokenizerFiles(folder);
  if (writesVocab) refuseToReplace(vocabOut, overwrite, { what: "a vocabulary", flag: vocabFlag, waysOut: ["give another --vocab-out"] });
  checkFolderWay(dirname(out), "--out", out);
  if (writesVocab) checkFolderWay(dirname(vocabOut), vocabFlag, vocabOut);

  const { importHf } = await import("../hf/import.ts");
  const { writeCheckpoint } = await import("../checkpoint/index.ts");
  const { saveTokenizer } = await import("../tokenizer/index.ts");
  const result = importHf(folder);
  for (const n of result.notices) console.error(`note: ${n}`);
  const tok = result.tokenizer;
  const outputs = new Outputs();
  try {
    outputs.folder(dirname(out), "--out", out);
    if (tok) {
      outputs.folder(dirname(vocabOut), vocabFlag, vocabOut);
      outputs.write(vocabFlag, vocabOut, () => saveTokenizer(tok, vocabOut));
    }
    outputs.write("--out", out, () =>
      writeCheckpoint(out, {
        arch: result.arch,
        tokenizer: tok ? { type: tok.type, vocab_size: tok.vocabSize, fingerprint: tok.fingerprint } : null,
        training: null,
        params: result.params,
      }),
    );
  } catch (err) {
    outputs.undo();
    throw err;
  }
  if (!tok) console.error("note: the folder has no tokenizer files; the checkpoint records no tokenizer (any vocab of its size will be accepted).");
  const a = result.arch;
  console.error(
    `wrote ${out} (${a.block === "llama" ? "llama, " : ""}d_model ${a.d_model}, num_heads ${a.num_heads}, num_layers ${a.num_layers}, d_ff ${a.d_ff}, vocab_size ${a.vocab_size}, ` +
      `max_seq_len ${a.max_seq_len})${tok ? ` and ${vocabOut} (${count(tok.vocabSize, "token")})` : ""}`,
  );
}

/** The folder to import: missing, or a file given for it (one of the folder's own files, most likely),
 * is said before the outputs are looked at. */
function checkModelFolder(folder: string): void {
  const expected = "Give the folder saved by save_pretrained or by train_vocab export (config.json, model.safetensors, tokenizer files).";
  if (!existsSync(folder)) throw new UserError(`Model folder not found: ${folder}. ${expected}`);
  if (statSync(folder).isDirectory()) return;
  const parent = dirname(folder);
  const inModelFolder = existsSync(join(parent, "config.json"));
  const hint =
    basename(folder) === "tokenizer.json"
      ? ` To import only the tokenizer, use \`train_vocab tokenizer import-hf ${folder}\`${inModelFolder ? `; to import the model, give its folder ${parent}` : ""}.`
      : inModelFolder
        ? ` Did you mean its folder ${parent}?`
        : "";
  throw new UserError(`import ${folder}: that is a file, not a folder. ${expected}${hint}`);
}
