/** The lines a person reads about a checkpoint: LoopOS's architecture block and our training state. */
import type { TrainingState } from "../checkpoint/index.ts";
import { count, int, num } from "../base/format.ts";
import type { Architecture } from "../model/layout.ts";

/** Exactly LoopOS's block (its users grep for it). */
export function architectureBlock(arch: Architecture): string {
  return [
    "Loaded architecture from checkpoint:",
    `  d_model:    ${arch.d_model}`,
    `  num_heads:  ${arch.num_heads}`,
    `  num_layers: ${arch.num_layers}`,
    `  d_ff:       ${arch.d_ff}`,
    `  vocab_size: ${arch.vocab_size}`,
  ].join("\n");
}

export function architectureDetails(arch: Architecture): string {
  return (
    `  max_seq_len: ${arch.max_seq_len}, LM head ${arch.tied_embeddings ? "tied to the token embedding" : "separate (untied)"}, ` +
    `attention ${arch.attention_bias ? "with" : "without"} biases`
  );
}

export function trainingStateLine(t: TrainingState | null, format: string): string {
  if (!t) {
    return format === "lopos"
      ? "Training state: none stored (a LoopOS LOPOS v1 checkpoint holds weights only); training starts a new stage"
      : "Training state: none stored (weights only)";
  }
  const p = t.plan;
  const where = t.stage_complete
    ? `complete (${count(p.epochs, "epoch")})`
    : `interrupted at epoch ${t.epoch + 1}/${p.epochs}, step ${int(t.step_in_epoch)}/${int(p.steps_per_epoch)} of the epoch`;
  return (
    `Training state: stage ${t.stage} ${where}; global step ${int(t.global_step)}, ` +
    `${count(t.tokens_seen, "token")} seen; peak lr ${num(p.peak_lr)}, batch ${int(p.batch_size)} × ${int(p.seq_len)}`
  );
}

/** What the products compute in, why (`auto`: chosen for this CPU), and whether the other choice is
 * available on this CPU. */
export function arithmeticLine(precision: "fp32" | "bf16", bf16Hardware: boolean, auto = false): string {
  if (precision === "bf16") {
    if (!bf16Hardware) return "Arithmetic: fp32 (this run's precision is bf16, but this CPU has no AVX512_BF16: its products run in fp32, with fp32's results)";
    return "Arithmetic: bf16 operands in the matmuls and attention, fp32 accumulation, weights and optimizer" +
      (auto ? " (--precision auto: this CPU has AVX512_BF16)" : "");
  }
  if (auto) return "Arithmetic: fp32 (--precision auto: this CPU has no AVX512_BF16)";
  return "Arithmetic: fp32" + (bf16Hardware ? " (this CPU has AVX512_BF16: --precision bf16 would train faster)" : "");
}
