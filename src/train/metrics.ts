/**
 * metrics.jsonl in the output folder: one JSON object per line, {"step", "loss", "lr", ...} per
 * optimizer step and {"step", "val_loss", ...} per epoch end. A resumed stage first drops lines
 * past the checkpoint's step (written after the last save by a run that then died), so the file
 * reads the same as if the run had never stopped.
 *
 * Fields: step is the global step (1-based); stage the stage (1-based); epoch the stage's epoch the
 * line belongs to, counted from 1 as the log prints it ("epoch 2/3"), and epochs the stage's count.
 * Lines written before `epochs` was recorded counted epochs from 0: readMetrics adds 1 to those and
 * gives them epochs null, so an old log read and rewritten on resume stays consistent.
 */
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { atomicWrite, describeFsError } from "../base/files.ts";
import { UserError } from "../base/errors.ts";

export interface StepRecord {
  step: number;
  stage: number;
  /** 1-based, within the stage. */
  epoch: number;
  /** The stage's epoch count; null on lines from logs that did not record it. */
  epochs: number | null;
  loss: number;
  lr: number;
  grad_norm: number;
  tokens_per_sec: number;
  /** Seconds since the process started, validation left out; absent on lines of older logs. */
  elapsed_s?: number;
}

export interface ValRecord {
  step: number;
  stage: number;
  /** 1-based: the epoch that just ended. */
  epoch: number;
  epochs: number | null;
  val_loss: number;
  elapsed_s?: number;
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
    const r = parseMetricsLine(line);
    if (r) out.push(r);
  }
  return out;
}

/** One line of metrics.jsonl; null for a blank line, a line cut short by a crash, or one without a step. */
export function parseMetricsLine(line: string): MetricsRecord | null {
  if (!line.trim()) return null;
  let r: Partial<MetricsRecord> & { step: unknown };
  try {
    r = JSON.parse(line);
  } catch {
    return null;
  }
  if (typeof r !== "object" || r === null || typeof r.step !== "number") return null;
  // An older line: epochs counted from 0 (see the top of the file).
  if (r.epochs === undefined && typeof r.epoch === "number") Object.assign(r, { epoch: r.epoch + 1, epochs: null });
  return r as MetricsRecord;
}
