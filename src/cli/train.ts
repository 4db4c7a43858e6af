/**
 * LoopOS's train_vocab command line: the default command (`train_vocab --data …`), the same as
 * `train_vocab train-vocab …`, and `train_vocab resume <checkpoint> …` (alias `continue`), which is
 * `--resume <checkpoint>`. Defaults are applied by the option schema, not by cac, so the run knows
 * which options were actually given (architecture flags are ignored with a warning on resume).
 */
import type { CAC, Command } from "cac";
import { UserError } from "../base/errors.ts";

function trainOptions(cmd: Command): Command {
  return cmd
    .option("--data <path>", "Training text: a file, or a folder walked recursively (path; required unless --resume)")
    .option("--vocab <file>", "Vocabulary file; built from --data when missing on a fresh run (path, default: outputs/tokenizer.vocab)")
    .option("--vocab-size <n>", "Tokens when building the vocabulary, specials included (integer, default: 10000)")
    .option("--min-frequency <n>", "Vocabulary building: least count for a merge (integer, default: 2)")
    .option("--output <dir>", "Output folder: model_checkpoint.bin, metrics.jsonl, loss_curve.svg (path, default: outputs/autoregressive; with --resume: the checkpoint's folder)")
    .option("--resume <file>", "Continue from a checkpoint (ours or LoopOS's LOPOS v1); the architecture comes from it; writes next to it unless --output is given (path)")
    .option("--overwrite", "Replace the checkpoint in --output when it is not the one resumed (without it such a run stops and says so)")
    .option("--d-model <n>", "Model width (integer, default: 256; ignored with --resume)")
    .option("--num-heads <n>", "Attention heads; must divide --d-model (integer, default: 8; ignored with --resume)")
    .option("--num-layers <n>", "Transformer blocks (integer, default: 2; ignored with --resume)")
    .option("--d-ff <n>", "Feed-forward width (integer, default: 1024 for gpt2, 688 for llama: the same parameter count; ignored with --resume)")
    .option("--arch <a>", "Block type: gpt2 (LayerNorm, learned positions, GELU, biases) or llama (RMSNorm, rotary positions, SwiGLU with --d-ff its hidden width, no biases) (default: llama; ignored with --resume)")
    .option("--rope-theta <f>", "llama: base of the rotary position embedding (number > 0, default: 10000; ignored with --resume)")
    .option("--tie-embeddings <b>", "LM head shares the token embedding: true or false (default: true; ignored with --resume)")
    .option("--attention-bias <b>", "gpt2: biases on the attention's products, true or false; false is LoopOS's own block, the one LOPOS v1 files hold (default: true, as GPT-2; ignored with --resume)")
    .option("--learning-rate <f>", "Peak learning rate (number, default: 0.002 × 256 / d_model, so 0.002 for the default model; on resume: the previous stage's)")
    .option("--epochs <n>", "Epochs in this stage (integer, default: 3)")
    .option("--max-length <n>", "Training sequence length in tokens (integer, default: 256; on resume: the previous stage's)")
    .option("--batch-size <n>", "Sequences per optimizer step (integer, default: 16; on resume: the previous stage's)")
    .option("--threads <n>", "Kernel threads (integer, default: all CPUs)")
    .option("--config <file>", "JSON file of options, keys as the flags (d_model, learning_rate, …); flags win (path)")
    .option("--seed <n>", "Seed for initialisation and data order (integer, default: 1337)")
    .option("--save-every <n>", "Also save every n steps; 0 = only at epoch ends (integer, default: 200)")
    .option("--max-steps <n>", "Stop this run after n optimizer steps, with a resumable checkpoint (integer)")
    .option("--val-fraction <f>", "Share of the data held out for validation (number in [0, 0.5], default: 0.05)")
    .option("--weight-decay <f>", "AdamW decoupled weight decay on matrices (number, default: 0.1)")
    .option("--optimizer <o>", "adamw, or muon (Muon for the blocks' hidden matrices, AdamW for embeddings, head, norms and biases) (default: muon; on resume: the previous stage's)")
    .option("--grad-clip <f>", "Clip the gradient norm to this; 0 = off (number, default: 1.0)")
    .option("--warmup-steps <n>", "Linear warmup steps (integer, default: 5% of the stage, at most 200)")
    .option("--log-every <n>", "Without a terminal: a progress line every n steps (integer, default: 10)")
    .option("--precision <p>", "Arithmetic of the matmuls and attention products: auto (bf16 where the CPU has AVX512_BF16, else fp32), fp32, or bf16 (bf16 operands, fp32 accumulation and weights) (default: auto)")
    .option("--schedule <s>", "Learning-rate schedule after the warmup: cosine (down to a tenth of the peak), or wsd (the peak held, then a linear decay at the stage's end to a hundredth) (default: wsd)")
    .option("--decay-fraction <f>", "wsd: the share of the stage's steps that decay (number in (0, 1], default: 0.2)")
    .option("--time-budget <d>", "Fit the stage to this much time from start to the last save: 90s, 30m, 2h or seconds; --epochs becomes an upper bound")
    .option("--eval-every <n>", "Also validate every n steps; 0 = only at epoch ends (integer, default: 0)")
    .option("--val-data <path>", "Validate on this text (a file or folder) instead of a held-out share of --data (path)")
    .option("--token-cache <dir>", "Folder of the token store, shared by runs that use the same vocabulary (path, default: the output folder)");
}

type Flags = Record<string, unknown>;

async function train(flags: Flags): Promise<void> {
  const { resolveOptions } = await import("../train/options.ts");
  const { runTraining } = await import("../train/run.ts");
  const code = await runTraining(resolveOptions(flags), undefined, { overwrite: flags.overwrite === true });
  if (code !== 0) process.exitCode = code;
}

export function registerTrain(cli: CAC): void {
  const bare = cli.command("[...args]", "Train a model (LoopOS's train_vocab; see `train_vocab train-vocab --help`)");
  // The help lists commands by their raw name; the bare command is how LoopOS trains, so show that.
  bare.rawName = "--data <path> …";
  trainOptions(bare)
    .usage("--data <path> [options]")
    .example("train_vocab --data corpus.txt --vocab outputs/tokenizer.vocab --epochs 3")
    .action(async (args: string[], flags: Flags) => {
      if (args.length > 0) {
        throw new UserError(`Unknown command "${args[0]}". Run \`train_vocab --help\` for the list of commands.`);
      }
      // No command and no options: show the help rather than complain about --data.
      if (Object.keys(flags).filter((k) => k !== "--").length === 0) {
        cli.outputHelp();
        return;
      }
      await train(flags);
    });

  trainOptions(cli.command("train-vocab", "Train a model, or continue one with --resume (alias: vocab-train)").alias("vocab-train"))
    .example("train_vocab train-vocab --data data/text.txt --vocab outputs/tokenizer.vocab --epochs 3")
    .example("train_vocab train-vocab --resume outputs/autoregressive/model_checkpoint.bin --data more.txt --epochs 2")
    .action(async (flags: Flags) => train(flags));

  trainOptions(cli.command("resume <checkpoint>", "Continue training from a checkpoint (alias: continue)").alias("continue"))
    .example("train_vocab resume outputs/autoregressive/model_checkpoint.bin --data new.txt --vocab outputs/tokenizer.vocab --epochs 5")
    .action(async (checkpoint: string, flags: Flags) => {
      if (flags.resume !== undefined && String(flags.resume) !== String(checkpoint)) {
        throw new UserError(`resume ${checkpoint}: --resume ${String(flags.resume)} names another checkpoint; give it once.`);
      }
      await train({ ...flags, resume: String(checkpoint) });
    });
}
