/**
 * metrics.jsonl in the output folder: one JSON object per line, {"step", "loss", "lr", ...} per
 * optimizer step and {"step", "val_loss", ...} per epoch end. A resumed stage first drops lines
 * past the checkpoint's step (written after the last save by a run that then died), so the file
 * reads the same as if the run had never stopped.
 */
import { appendFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";

export interface StepRecord {
  step: number;
  stage: number;
  epoch: number;
  loss: number;
  lr: number;
  grad_norm: number;
  tokens_per_sec: number;
}

export interface ValRecord {
  step: number;
  stage: number;
  epoch: number;
  val_loss: number;
}

export type MetricsRecord = StepRecord | ValRecord;

export function isValRecord(r: MetricsRecord): r is ValRecord {
  return "val_loss" in r;
}

export class MetricsLog {
  private pending: string[] = [];

  constructor(readonly path: string) {}

  /** Keep only records up to `step` (all of them with keepThrough = Infinity); start empty if `fresh`. */
  open(keepThrough: number, fresh: boolean): void {
    if (fresh || !existsSync(this.path)) {
      writeFileSync(this.path, "");
      return;
    }
    const kept = readMetrics(this.path).filter((r) => r.step <= keepThrough);
    writeFileSync(this.path, kept.map((r) => JSON.stringify(r) + "\n").join(""));
  }

  add(record: MetricsRecord): void {
    this.pending.push(JSON.stringify(record) + "\n");
    // Batched so a step costs no file write; flushed at every save and at exit.
    if (this.pending.length >= 50) this.flush();
  }

  flush(): void {
    if (this.pending.length === 0) return;
    appendFileSync(this.path, this.pending.join(""));
    this.pending = [];
  }
}

export function readMetrics(path: string): MetricsRecord[] {
  if (!existsSync(path)) return [];
  const out: MetricsRecord[] = [];
  for (const line of readFileSync(path, "utf8").split("\n")) {
    if (!line.trim()) continue;
    try {
      const r = JSON.parse(line) as MetricsRecord;
      if (typeof r.step === "number") out.push(r);
    } catch {
      // a line cut short by a crash: skip it
    }
  }
  return out;
}
