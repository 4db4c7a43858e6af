/**
 * Optional per-kernel timing of a training step, for the training benchmark's breakdown. A model
 * with no profile attached calls its kernels directly; with one, it calls a timed copy of its kernel
 * table, in which each native call is bracketed by two clock reads and its time added under a label,
 * so the step's wall time minus the labelled total is what TypeScript itself spent between the calls.
 */
export class StepProfile {
  /** Milliseconds per label, summed over every call since the last reset. */
  readonly ms = new Map<string, number>();
  /** Calls per label since the last reset. */
  readonly calls = new Map<string, number>();
  private t0 = 0;

  begin(): void {
    this.t0 = performance.now();
  }

  end(label: string): void {
    const dt = performance.now() - this.t0;
    this.ms.set(label, (this.ms.get(label) ?? 0) + dt);
    this.calls.set(label, (this.calls.get(label) ?? 0) + 1);
  }

  /** Time one call under a label. */
  time<R>(label: string, fn: () => R): R {
    this.begin();
    const r = fn();
    this.end(label);
    return r;
  }

  /** A copy of a table of functions in which each call is timed under its entry's label. */
  timed<T extends { [name: string]: ((...args: never[]) => unknown) | undefined }>(fns: T, labels: Record<keyof T, string>): T {
    const out: Record<string, unknown> = {};
    for (const name of Object.keys(fns) as (keyof T & string)[]) {
      const fn = fns[name] as unknown as (...args: unknown[]) => unknown;
      const label = labels[name];
      out[name] = (...args: unknown[]) => {
        this.begin();
        const r = fn(...args);
        this.end(label);
        return r;
      };
    }
    return out as T;
  }

  total(): number {
    let s = 0;
    for (const v of this.ms.values()) s += v;
    return s;
  }

  reset(): void {
    this.ms.clear();
    this.calls.clear();
  }
}
