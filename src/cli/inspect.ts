/**
 * `train_vocab inspect CKPT`: what a checkpoint holds, from its header alone (instant even for large
 * files); `--verify` also reads every tensor and checks the checksum. Reads our checkpoints and
 * LoopOS's LOPOS v1 files.
 */
import type { CAC } from "cac";
import type { CheckpointHeader } from "../checkpoint/index.ts";
import { UserError } from "../base/errors.ts";
import { count, int, num } from "../base/format.ts";
import { type Architecture, blockOf, parameterCount } from "../model/layout.ts";
import { requireFile, text } from "./use_flags.ts";

interface Options {
  verify?: boolean;
  json?: boolean;
}

export function registerInspect(cli: CAC): void {
  cli
    .command("inspect <checkpoint>", "Show a checkpoint's format, architecture, training state, tokenizer and checksum")
    .option("--verify", "Also read every tensor and check the checksum (boolean; default: header only)")
    .option("--json", "Print one JSON object instead of text (boolean)")
    .example("train_vocab inspect outputs/autoregressive/model_checkpoint.bin")
    .example("train_vocab inspect loopos_model.bin --verify --json")
    .action(async (checkpoint: unknown, o: Options) => run(text("<checkpoint>", checkpoint)!, o));
}

interface Verdict {
  verified: boolean | null;
  problem?: string;
}

async function run(path: string, o: Options): Promise<void> {
  const { readCheckpoint, readCheckpointHeader } = await import("../checkpoint/index.ts");
  requireFile(path, "checkpoint");
  const header = readCheckpointHeader(path);
  let verdict: Verdict = { verified: null };
  if (o.verify) {
    try {
      const full = readCheckpoint(path, { verify: true });
      verdict = { verified: full.checksum.verified };
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      verdict = { verified: false, problem: err.message };
      process.exitCode = 2;
    }
  }
  if (o.json) console.log(JSON.stringify(asJson(header, verdict, o.verify === true), null, 2));
  else console.log(asText(header, verdict, o.verify === true));
}

function asJson(h: CheckpointHeader, v: Verdict, verify: boolean) {
  const n = parameterCount(h.arch);
  return {
    path: h.path,
    format: h.format,
    version: h.version,
    file_size: h.fileSize,
    arch: h.arch,
    // The stored arch leaves block out for GPT-2 (files from before Llama blocks): said here in full.
    block: blockOf(h.arch),
    parameter_count: n,
    has_optimizer_state: h.hasAdam,
    training: h.training,
    tokenizer: h.tokenizer,
    checksum: {
      algorithm: h.checksum.algorithm,
      value: h.checksum.value || null,
      verified: v.verified,
      checked: verify,
      ...(v.problem ? { problem: v.problem } : {}),
    },
  };
}

function bytes(n: number, exact = true): string {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let x = n;
  while (x >= 1024 && i < units.length - 1) {
    x /= 1024;
    i++;
  }
  if (i === 0) return count(n, "byte");
  return exact ? `${x.toFixed(1)} ${units[i]} (${int(n)} bytes)` : `${x.toFixed(1)} ${units[i]}`;
}

function asText(h: CheckpointHeader, v: Verdict, verify: boolean): string {
  const a = h.arch;
  const n = parameterCount(a);
  const rows: [string, string][] = [
    ["checkpoint", h.path],
    ["format", h.format === "lopos" ? `LOPOS v${h.version} (LoopOS's format: weights only)` : `${h.format} v${h.version} (safetensors)`],
    ["file size", bytes(h.fileSize)],
    [
      "architecture",
      `d_model ${a.d_model} · num_heads ${a.num_heads} · num_layers ${a.num_layers} · d_ff ${a.d_ff} · vocab_size ${a.vocab_size} · max_seq_len ${a.max_seq_len}`,
    ],
    ["", blockLine(a)],
    ["parameters", `${int(n)} (${bytes(4 * n, false)} as float32)`],
    ["optimizer", optimizerLine(h.training?.plan.optimizer, h.hasAdam)],
  ];
  const t = h.training;
  if (!t) {
    rows.push(["training", h.format === "lopos" ? "not recorded (LOPOS stores none)" : "none recorded (weights only)"]);
  } else {
    const p = t.plan;
    // The state counts epochs from 0 (t.epoch epochs are done); people count the one under way from 1.
    const where = t.stage_complete
      ? `${count(p.epochs, "epoch")} done · stage complete`
      : `epoch ${t.epoch + 1}/${p.epochs}${p.steps_per_epoch > 0 ? ` (step ${int(t.step_in_epoch)} of ${int(p.steps_per_epoch)})` : ""}`;
    rows.push(
      ["training", `step ${int(t.global_step)} · stage ${t.stage} · ${where} · tokens seen ${int(t.tokens_seen)}`],
      [
        "lr plan",
        `${p.schedule}: peak ${num(p.peak_lr)} → min ${num(p.min_lr)}, warmup ${int(p.warmup_steps)} of ${count(p.total_steps, "step")}, ${count(p.epochs, "epoch")}`,
      ],
      ["", `batch ${int(p.batch_size)} × seq_len ${int(p.seq_len)} · weight decay ${num(p.weight_decay)} · betas ${num(p.beta1)}/${num(p.beta2)} · eps ${num(p.eps)} · grad clip ${num(p.grad_clip)} · seed ${p.seed}`],
      ["", `${p.precision ?? "fp32"} products · ${p.optimizer === "muon" ? "Muon for the hidden matrices, AdamW for the rest" : "AdamW"}`],
      ["data", p.data_fingerprint || "(none)"],
    );
    (t.history ?? []).forEach((s, i) =>
      rows.push([i === 0 ? "stages" : "", `stage ${s.stage}: ${count(s.epochs, "epoch")} at peak lr ${num(s.peak_lr)} (data ${s.data_fingerprint})${s.stage === t.stage ? " · this one" : ""}`]),
    );
  }
  const tok = h.tokenizer;
  rows.push(["tokenizer", tok ? `${tok.type}, ${count(tok.vocab_size, "token")}, fingerprint ${tok.fingerprint}` : "not recorded (any vocab of the right size is accepted)"]);
  rows.push(["checksum", checksumLine(h, v, verify)]);
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, val]) => `${k.padEnd(width)}  ${val}`).join("\n");
}

function blockLine(a: Architecture): string {
  const head = a.tied_embeddings ? "LM head tied to the token embedding" : "separate LM head";
  if (blockOf(a) === "llama") {
    return `llama blocks: RMSNorm (eps ${num(a.norm_eps!)}), rotary positions (rope_theta ${num(a.rope_theta!)}), SwiGLU · ${head} · no biases`;
  }
  return `gpt2 blocks: LayerNorm, learned positions, GELU · ${head} · ${a.attention_bias ? "attention biases" : "no attention biases"}`;
}

function checksumLine(h: CheckpointHeader, v: Verdict, verify: boolean): string {
  const c = h.checksum;
  const stored = c.value ? `${c.algorithm} ${c.value}` : "none stored";
  if (!verify) return `${stored} — not checked (add --verify to read and check every tensor)`;
  if (v.verified === false) return `${stored} — FAILED: ${v.problem}`;
  if (!c.value) return `${stored} — every tensor read; sizes and shapes consistent`;
  return `${stored} — verified: every tensor matches`;
}

function optimizerLine(optimizer: "muon" | undefined, stored: boolean): string {
  const which = optimizer === "muon" ? "Muon and AdamW" : "AdamW";
  return stored ? `${which} state stored (resume continues exactly)` : "no optimizer state";
}
