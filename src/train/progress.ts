/**
 * What a person watches during training: on a terminal one line redrawn in place (step, epoch,
 * loss, learning rate, tokens/s, ETA); otherwise a plain line every `logEvery` steps, so logs and
 * CI output stay readable.
 */
import { int, num } from "../base/format.ts";

export interface StepView {
  step: number;          // global step just finished
  stageStep: number;     // within the stage, 1-based
  stageSteps: number;
  epoch: number;         // 0-based
  epochs: number;
  stepInEpoch: number;   // 1-based
  stepsPerEpoch: number;
  loss: number;
  lr: number;
  tokensPerSec: number;
  etaSeconds: number;
  /** Seconds left of a --time-budget (absent without one). */
  budgetLeft?: number;
}

export class TrainingProgress {
  private readonly tty: boolean;
  private drawn = false;
  private lastDraw = 0;

  constructor(private readonly logEvery: number, private readonly out: NodeJS.WriteStream = process.stdout) {
    this.tty = Boolean(out.isTTY) && !process.env.CI;
  }

  step(v: StepView): void {
    const line =
      `step ${int(v.step)} (${int(v.stageStep)}/${int(v.stageSteps)}) · epoch ${v.epoch + 1}/${v.epochs} [${int(v.stepInEpoch)}/${int(v.stepsPerEpoch)}] · ` +
      `loss ${v.loss.toFixed(4)} · lr ${num(v.lr, 3)} · ${int(v.tokensPerSec)} tok/s · ETA ${duration(v.etaSeconds)}` +
      (v.budgetLeft !== undefined ? ` of ${duration(Math.max(0, v.budgetLeft))} left in the budget` : "");
    if (this.tty) {
      // At most ten redraws a second: tiny models take thousands of steps per second.
      const now = performance.now();
      if (now - this.lastDraw < 100 && v.stepInEpoch !== v.stepsPerEpoch) return;
      this.lastDraw = now;
      this.out.write(`\r\x1b[2K${line}`);
      this.drawn = true;
    } else if (v.stageStep % this.logEvery === 0 || v.stepInEpoch === v.stepsPerEpoch || v.stageStep === 1) {
      this.out.write(line + "\n");
    }
  }

  /** A message between progress lines (epoch summaries, saves). */
  log(message: string): void {
    this.clear();
    this.out.write(message + "\n");
  }

  clear(): void {
    if (this.drawn) this.out.write("\r\x1b[2K");
    this.drawn = false;
  }
}

export function duration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}
