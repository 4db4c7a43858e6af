/**
 * Stop sequences over streamed text: the answer ends just before the first stop sequence, which is
 * not returned. Text that could still turn out to be the start of one is held back until the next
 * piece decides it, so a stream never shows part of a stop sequence.
 */
export class StopMatcher {
  private held = "";

  constructor(private readonly stops: readonly string[]) {}

  /** The text that can be shown now, and whether a stop sequence was reached. */
  push(text: string): { text: string; stopped: boolean } {
    if (this.stops.length === 0) return { text, stopped: false };
    const all = this.held + text;
    let first = -1;
    for (const s of this.stops) {
      const at = all.indexOf(s);
      if (at >= 0 && (first < 0 || at < first)) first = at;
    }
    if (first >= 0) {
      this.held = "";
      return { text: all.slice(0, first), stopped: true };
    }
    const keep = this.pendingLength(all);
    this.held = all.slice(all.length - keep);
    return { text: all.slice(0, all.length - keep), stopped: false };
  }

  /** What was held back, at the end of the answer. */
  end(): string {
    const rest = this.held;
    this.held = "";
    return rest;
  }

  /** The longest end of `text` that is the start of a stop sequence. */
  private pendingLength(text: string): number {
    let best = 0;
    for (const s of this.stops) {
      for (let n = Math.min(s.length - 1, text.length); n > best; n--) {
        if (text.endsWith(s.slice(0, n))) {
          best = n;
          break;
        }
      }
    }
    return best;
  }
}
