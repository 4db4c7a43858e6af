/** A one-line progress display on a terminal (stderr), rate-limited; silent when not a TTY. */
export class Progress {
  private last = 0;
  private shown = false;
  private readonly enabled = Boolean(process.stderr.isTTY) && !process.env.CI;

  update(message: string): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (now - this.last < 200) return;
    this.last = now;
    process.stderr.write(`\r\x1b[K${message}`);
    this.shown = true;
  }

  done(): void {
    if (this.shown) process.stderr.write("\r\x1b[K");
    this.shown = false;
  }
}
