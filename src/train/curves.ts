/**
 * What every drawing of a run's curves shares (loss_curve.svg and the dashboard's page): the training
 * loss's smoothing, the training clock across processes, and axis ticks in steps and in time. Pure
 * functions, no I/O, so the page's browser bundle can use them too.
 */

/** Weight of the previous value in the exponential moving average of the training loss. */
export const SMOOTHING = 0.9;

/** The exponential moving average of per-step losses, started at the first loss. */
export class Smoother {
  private value: number | null = null;

  next(x: number): number {
    this.value = this.value === null ? x : SMOOTHING * this.value + (1 - SMOOTHING) * x;
    return this.value;
  }
}

/**
 * The training clock of a whole run. metrics.jsonl's elapsed_s counts from the start of the process
 * that wrote the line, so it goes back at a resume: from there it continues where the previous
 * process stopped. Lines without elapsed_s (older logs) have no time.
 */
export class TrainingClock {
  private offset = 0;
  private last = 0;

  at(elapsed: number | undefined): number | null {
    if (typeof elapsed !== "number" || !Number.isFinite(elapsed) || elapsed < 0) return null;
    if (elapsed < this.last) this.offset += this.last;
    this.last = elapsed;
    return this.offset + elapsed;
  }
}

/** Round values from lo to hi, about `target` of them, spaced 1, 2 or 5 × 10^k apart. */
export function niceTicks(lo: number, hi: number, target = 5): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi) || hi < lo) return [];
  if (hi === lo) return [lo];
  const step = niceStep((hi - lo) / Math.max(1, target));
  const out: number[] = [];
  // Integer multiples of the step, so 0.1 + 0.2 style drift never shows in a label.
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k++) out.push(roundTo(k * step, step));
  return out;
}

/** Round values spaced as niceTicks' that enclose lo..hi: the first at or below lo, the last at or above hi. */
export function niceAxis(lo: number, hi: number, target = 5): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi) || hi < lo) return [];
  const step = niceStep(hi > lo ? (hi - lo) / Math.max(1, target) : Math.max(Math.abs(lo), 1) / 10);
  const out: number[] = [];
  const last = Math.max(Math.ceil(hi / step - 1e-9), Math.floor(lo / step + 1e-9) + 1);
  for (let k = Math.floor(lo / step + 1e-9); k <= last; k++) out.push(roundTo(k * step, step));
  return out;
}

function niceStep(raw: number): number {
  const p = 10 ** Math.floor(Math.log10(raw));
  const f = raw / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}

function roundTo(x: number, step: number): number {
  const digits = Math.max(0, -Math.floor(Math.log10(step)));
  return Number(x.toFixed(Math.min(20, digits)));
}

/** Tick spacings for a time axis, in seconds: whole seconds, minutes and hours people read at a glance. */
export const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800];

/** Times from lo to hi seconds, about `target` of them, at one of TIME_STEPS. */
export function timeTicks(lo: number, hi: number, target = 5): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi) || hi < lo) return [];
  const raw = (hi - lo) / Math.max(1, target);
  const step = TIME_STEPS.find((s) => s >= raw) ?? Math.ceil(raw / 604800) * 604800;
  const out: number[] = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9; t += step) out.push(t);
  return out;
}

/** A duration as a tick label: "45s", "2m", "1m30s", "1h", "2h30m", "1d4h". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "";
  const s = Math.round(Math.abs(seconds));
  const sign = seconds < 0 && s > 0 ? "-" : "";
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  if (d > 0) return `${sign}${d}d${h > 0 ? `${h}h` : ""}`;
  if (h > 0) return `${sign}${h}h${m > 0 ? `${m}m` : ""}`;
  if (m > 0) return `${sign}${m}m${r > 0 ? `${r}s` : ""}`;
  return `${sign}${r}s`;
}

/**
 * The step at which the clock read `t`, by linear interpolation between neighbouring points
 * (steps ascending, times non-decreasing); null outside the points' times.
 */
export function stepAtTime(steps: readonly number[], times: readonly number[], t: number): number | null {
  const n = Math.min(steps.length, times.length);
  if (n === 0 || t < times[0]! || t > times[n - 1]!) return null;
  let lo = 0, hi = n - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (times[mid]! <= t) lo = mid;
    else hi = mid;
  }
  const t0 = times[lo]!, t1 = times[hi]!;
  if (t1 <= t0) return steps[t <= t0 ? lo : hi]!;
  return steps[lo]! + ((t - t0) / (t1 - t0)) * (steps[hi]! - steps[lo]!);
}
