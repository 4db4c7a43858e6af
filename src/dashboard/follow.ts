/**
 * One run's metrics.jsonl, followed while training appends to it. Each poll reads only the bytes added
 * since the last one; a last line without its newline (a write in progress) waits for the next poll.
 * A file that was replaced or got shorter (a fresh run or a resume rewrites it: MetricsLog.open) is
 * read again from the start under a new generation number, so a page knows to drop what it had.
 * A missing folder or file, or one that cannot be read, is a state with a message, never an error.
 */
import { closeSync, openSync, readSync, statSync } from "node:fs";
import { basename } from "node:path";
import { describeFsError } from "../base/files.ts";
import { Smoother, TrainingClock } from "../train/curves.ts";
import { isValRecord, parseMetricsLine } from "../train/metrics.ts";

export type RunStatus = "waiting-folder" | "waiting-metrics" | "empty" | "ok" | "unreadable";

/** The run's lines as columns (what the page plots); time is the training clock, null on old lines. */
export interface Columns {
  train: { step: number[]; time: (number | null)[]; loss: number[]; smoothed: number[]; lr: number[]; tokensPerSec: number[] };
  val: { step: number[]; time: (number | null)[]; loss: number[] };
}

export interface RunSnapshot {
  status: RunStatus;
  /** What the status means for the person looking, in one sentence. */
  message: string;
  generation: number;
  /** Complete lines that were not metrics (damaged), skipped. */
  skipped: number;
  /** Bytes of a last line still being written. */
  partialBytes: number;
  /** When the file last grew or was replaced (ms since the epoch); null before any data. */
  changedAt: number | null;
}

/** The most read per poll, so a huge log is taken in over several polls instead of one long pause. */
const MAX_READ = 32 << 20;

export class MetricsFollower {
  private generation = 0;
  private offset = 0;
  private identity = "";
  private pending: Buffer = Buffer.alloc(0);
  private clock = new TrainingClock();
  private smoother = new Smoother();
  private status: RunStatus = "waiting-metrics";
  private message = "";
  private skipped = 0;
  private changedAt: number | null = null;
  columns: Columns = emptyColumns();

  constructor(readonly folder: string, readonly path: string) {}

  /** Reads what was appended since the last poll (or everything again after a replacement). */
  poll(): RunSnapshot {
    let st;
    try {
      st = statSync(this.path, { bigint: false });
    } catch (err) {
      this.forget();
      const code = (err as { code?: string }).code;
      if (code === "ENOENT" || code === "ENOTDIR") {
        if (folderExists(this.folder)) this.setStatus("waiting-metrics", `No ${basename(this.path)} in ${this.folder} yet: it appears with a training run's first steps (--output ${this.folder}).`);
        else this.setStatus("waiting-folder", `${this.folder} does not exist yet: waiting for a training run to create it (--output ${this.folder}).`);
      } else this.setStatus("unreadable", `Cannot read ${this.path}: ${describeFsError(err as { code?: string })}.`);
      return this.snapshot();
    }
    if (!st.isFile()) {
      this.forget();
      this.setStatus("unreadable", `${this.path} is not a file.`);
      return this.snapshot();
    }
    const identity = `${st.dev}:${st.ino}`;
    if (identity !== this.identity || st.size < this.offset) {
      // Replaced (a fresh run or a resume rewrote it) or cut: read it again from the start.
      this.forget();
      this.identity = identity;
      this.changedAt = Date.now();
    }
    if (st.size > this.offset) {
      try {
        this.readFrom(st.size);
      } catch (err) {
        this.setStatus("unreadable", `Cannot read ${this.path}: ${describeFsError(err as { code?: string })}.`);
        return this.snapshot();
      }
      this.changedAt = Date.now();
    }
    const lines = this.columns.train.step.length + this.columns.val.step.length;
    if (lines === 0) this.setStatus("empty", st.size === 0 ? `${this.path} is empty: the run is starting.` : `${this.path} has no complete metrics line yet.`);
    else this.setStatus("ok", `${lines.toLocaleString("en-US")} lines read.`);
    return this.snapshot();
  }

  private readFrom(size: number): void {
    const want = Math.min(size - this.offset, MAX_READ);
    const chunk = Buffer.allocUnsafe(want);
    const fd = openSync(this.path, "r");
    let got = 0;
    try {
      while (got < want) {
        const n = readSync(fd, chunk, got, want - got, this.offset + got);
        if (n === 0) break;
        got += n;
      }
    } finally {
      closeSync(fd);
    }
    this.offset += got;
    const data = this.pending.length > 0 ? Buffer.concat([this.pending, chunk.subarray(0, got)]) : chunk.subarray(0, got);
    const end = data.lastIndexOf(0x0a);
    if (end < 0) {
      this.pending = Buffer.from(data);
      return;
    }
    this.pending = Buffer.from(data.subarray(end + 1));
    for (const line of data.subarray(0, end).toString("utf8").split("\n")) this.add(line);
  }

  private add(line: string): void {
    if (!line.trim()) return;
    const r = parseMetricsLine(line);
    if (r === null) {
      this.skipped++;
      return;
    }
    const time = this.clock.at(r.elapsed_s);
    if (isValRecord(r)) {
      if (typeof r.val_loss !== "number") return void this.skipped++;
      const v = this.columns.val;
      v.step.push(r.step), v.time.push(time), v.loss.push(r.val_loss);
      return;
    }
    if (typeof r.loss !== "number") return void this.skipped++;
    const t = this.columns.train;
    t.step.push(r.step);
    t.time.push(time);
    t.loss.push(r.loss);
    t.smoothed.push(Number.isFinite(r.loss) ? this.smoother.next(r.loss) : r.loss);
    t.lr.push(typeof r.lr === "number" ? r.lr : NaN);
    t.tokensPerSec.push(typeof r.tokens_per_sec === "number" ? r.tokens_per_sec : NaN);
  }

  private forget(): void {
    if (this.offset > 0 || this.identity !== "" || this.columns.train.step.length + this.columns.val.step.length > 0) this.generation++;
    this.offset = 0;
    this.identity = "";
    this.pending = Buffer.alloc(0);
    this.clock = new TrainingClock();
    this.smoother = new Smoother();
    this.skipped = 0;
    this.columns = emptyColumns();
  }

  private setStatus(status: RunStatus, message: string): void {
    this.status = status;
    this.message = message;
  }

  private snapshot(): RunSnapshot {
    return {
      status: this.status, message: this.message, generation: this.generation, skipped: this.skipped,
      partialBytes: this.pending.length, changedAt: this.changedAt,
    };
  }
}

function emptyColumns(): Columns {
  return {
    train: { step: [], time: [], loss: [], smoothed: [], lr: [], tokensPerSec: [] },
    val: { step: [], time: [], loss: [] },
  };
}

function folderExists(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
