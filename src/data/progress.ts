/** The progress line of a pass over the data (hashing, tokenizing): files, MB, MB/s and time left. */
import { Progress } from "../tokenizer/progress.ts";

export class PassProgress {
  private readonly line = new Progress();
  private readonly started = performance.now();
  private bytes = 0;
  private files = 0;

  constructor(private readonly label: string, private readonly totalFiles: number, private readonly totalBytes: number) {}

  advance(bytes: number): void {
    this.bytes += bytes;
    this.show();
  }

  fileDone(files: number): void {
    this.files = files;
    this.show();
  }

  /** Bytes per second so far. */
  rate(): number {
    return this.bytes / Math.max(1e-9, (performance.now() - this.started) / 1000);
  }

  done(): void {
    this.line.done();
  }

  private show(): void {
    const rate = this.rate();
    const left = rate > 0 ? (this.totalBytes - this.bytes) / rate : 0;
    this.line.update(
      `${this.label}: ${this.files}/${this.totalFiles} files, ${mb(this.bytes)}/${mb(this.totalBytes)} MB, ` +
        `${mb(rate)} MB/s, ${Math.max(0, Math.ceil(left))} s left`,
    );
  }
}

function mb(bytes: number): string {
  return (bytes / 1e6).toFixed(bytes < 1e8 ? 1 : 0);
}
