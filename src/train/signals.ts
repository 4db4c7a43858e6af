/**
 * SIGINT / SIGTERM during training: the first one lets the current step finish, then the loop saves
 * and the process exits 130 / 143. A second one exits at once; checkpoints are written atomically,
 * so even that leaves the last complete checkpoint intact.
 */
export const SIGNAL_EXIT_CODES: Record<string, number> = { SIGINT: 130, SIGTERM: 143 };

export class StopSignals {
  private received: NodeJS.Signals | null = null;
  private readonly handler = (signal: NodeJS.Signals) => {
    if (this.received) process.exit(SIGNAL_EXIT_CODES[signal] ?? 1);
    this.received = signal;
    this.onFirst(signal);
  };

  constructor(private readonly onFirst: (signal: NodeJS.Signals) => void) {}

  install(): void {
    process.on("SIGINT", this.handler);
    process.on("SIGTERM", this.handler);
  }

  remove(): void {
    process.off("SIGINT", this.handler);
    process.off("SIGTERM", this.handler);
  }

  get signal(): NodeJS.Signals | null {
    return this.received;
  }
}
