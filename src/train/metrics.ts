/**
 * metrics.jsonl in the output folder: one JSON object per line, {"step", "loss", "lr", ...} per
 * optimizer step and {"step", "val_loss", ...} per epoch end. A resumed stage first drops lines
 * past the checkpoint's step (written after the last save by a run that then died), so the file
 * reads the same as if the run had never stopped.
 */
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { atomicWrite, describeFsError } from "../checkpoint/atomic.ts";
import { UserError } from "../errors.ts";

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
    // Rewritten atomically: a crash here leaves the old log, never a half-written one.
    if (fresh || !existsSync(this.path)) {
      atomicWrite(this.path, "");
      return;
    }
    const kept = readMetrics(this.path).filter((r) => r.step <= keepThrough);
    atomicWrite(this.path, kept.map((r) => JSON.stringify(r) + "\n").join(""));
  }

  add(record: MetricsRecord): void {
    this.pending.push(JSON.stringify(record) + "\n");
    // Batched so a step costs no file write; flushed at every save and at exit.
    if (this.pending.length >= 50) this.flush();
  }

  flush(): void {
    if (this.pending.length === 0) return;
    const text = this.pending.join("");
    this.pending = [];
    try {
      appendFileSync(this.path, text);
    } catch (err) {
      if (typeof err !== "object" || err === null || !("code" in err)) throw err;
      throw new UserError(`Could not append to ${this.path}: ${describeFsError(err)}. Free some space or choose another --output; the last checkpoint is unchanged.`);
    }
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
