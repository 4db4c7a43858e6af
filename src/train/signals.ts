/**
 * SIGINT / SIGTERM during training: the first one lets the current step finish, then the loop saves
 * and the process exits 130 / 143. A second one exits at once; checkpoints are written atomically,
 * so even that leaves the last complete checkpoint intact.
 *
 * Installed only around the training loop, which yields between steps so the handler runs. Before it
 * (listing data, building the vocabulary, tokenizing: synchronous, often inside C) there is nothing
 * worth saving and a handler could not run anyway, so none is installed and the default action ends
 * the process at once (status 130/143; the lock left behind is stale and taken over by the next run).
 * remove() gives the default action back.
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
