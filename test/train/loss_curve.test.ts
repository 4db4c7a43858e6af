/** loss_curve.svg's axes (loss, steps, training time) and the curve helpers the dashboard shares. */
import { expect, test } from "bun:test";
import { formatDuration, niceAxis, niceTicks, Smoother, stepAtTime, timeTicks, TrainingClock } from "../../src/train/curves.ts";
import { lossCurveSvg } from "../../src/train/loss_curve.ts";
import type { MetricsRecord } from "../../src/train/metrics.ts";

test("ticks are round numbers inside the range; an axis encloses it", () => {
  expect(niceTicks(1, 1000, 6)).toEqual([200, 400, 600, 800, 1000]);
  expect(niceTicks(0, 1, 5)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
  expect(niceTicks(2.13, 9.21, 5)).toEqual([4, 6, 8]);
  expect(niceTicks(0.0001, 0.0009, 4)).toEqual([0.0002, 0.0004, 0.0006, 0.0008]);
  expect(niceTicks(3, 3)).toEqual([3]);
  expect(niceTicks(5, 1)).toEqual([]);
  expect(niceAxis(2.13, 9.21, 5)).toEqual([2, 4, 6, 8, 10]);
  expect(niceAxis(4, 4, 5)).toEqual([4, 4.5]);
  const a = niceAxis(0.123, 0.129, 5);
  expect(a[0]!).toBeLessThanOrEqual(0.123);
  expect(a[a.length - 1]!).toBeGreaterThanOrEqual(0.129);
});

test("time ticks fall on whole seconds, minutes and hours, and read as people write them", () => {
  expect(timeTicks(0, 120, 4)).toEqual([0, 30, 60, 90, 120]);
  expect(timeTicks(3, 3700, 4)).toEqual([1800, 3600]);
  expect(timeTicks(0, 7, 5)).toEqual([0, 2, 4, 6]);
  expect([0, 45, 60, 90, 3600, 5400, 9000, 90000, 86400].map(formatDuration)).toEqual(["0s", "45s", "1m", "1m30s", "1h", "1h30m", "2h30m", "1d1h", "1d"]);
});

test("the step at a time interpolates between points, and is null outside them", () => {
  expect(stepAtTime([10, 20, 30], [1, 2, 4], 3)).toBe(25);
  expect(stepAtTime([10, 20, 30], [1, 2, 4], 1)).toBe(10);
  expect(stepAtTime([10, 20, 30], [1, 2, 4], 0.5)).toBeNull();
  expect(stepAtTime([10, 20], [1, 1], 1)).toBe(10);
});

test("the training clock carries over a resume; the smoothing is an EMA from the first loss", () => {
  const c = new TrainingClock();
  expect([5, 10, 1, 4, undefined, 2].map((e) => c.at(e))).toEqual([5, 10, 11, 14, null, 16]);
  const s = new Smoother();
  expect(s.next(4)).toBe(4);
  expect(s.next(2)).toBeCloseTo(3.8, 12);
});

const run = (steps: number, withTime: boolean): MetricsRecord[] => {
  const out: MetricsRecord[] = [];
  for (let step = 1; step <= steps; step++) {
    out.push({ step, stage: 0, epoch: 1, epochs: 1, loss: 9 - (6 * step) / steps, lr: 0.001, grad_norm: 1, tokens_per_sec: 1, ...(withTime ? { elapsed_s: step * 0.1 } : {}) });
    if (step % 250 === 0) out.push({ step, stage: 0, epoch: 1, epochs: 1, val_loss: 9.2 - (6 * step) / steps, ...(withTime ? { elapsed_s: step * 0.1 } : {}) });
  }
  return out;
};
const labels = (svg: string, cls: string) => [...svg.matchAll(new RegExp(`class="${cls}" x="([\\d.]+)"[^>]*>([^<]+)<`, "g"))].map((m) => ({ x: Number(m[1]), text: m[2]! }));

test("loss_curve.svg: loss ticks on the left, steps along the bottom, training time along the top, in the right places", () => {
  const svg = lossCurveSvg(run(1000, true));
  expect(labels(svg, "tick-step").map((l) => l.text)).toEqual(["200", "400", "600", "800", "1000"]);
  // steps 1..1000 span x 60..700: step s sits at 60 + (s - 1) / 999 * 640
  for (const l of labels(svg, "tick-step")) expect(l.x).toBeCloseTo(60 + ((Number(l.text) - 1) / 999) * 640, 0);
  // the clock reads step × 0.1 s (0.1 s to 100 s): "1m" at step 600
  const time = labels(svg, "tick-time");
  expect(time.map((l) => l.text)).toEqual(["15s", "30s", "45s", "1m", "1m15s", "1m30s"]);
  expect(time.find((l) => l.text === "1m")!.x).toBeCloseTo(60 + (599 / 999) * 640, 0);
  const loss = [...svg.matchAll(/class="tick-loss"[^>]*>([^<]+)</g)].map((m) => Number(m[1]));
  expect(loss[0]!).toBeLessThanOrEqual(3.006);
  expect(loss[loss.length - 1]!).toBeGreaterThanOrEqual(9);
  expect(svg.match(/<circle /g)!.length).toBe(4); // the validation points
  expect(svg).toContain("training time");
});

test("loss_curve.svg of an old log without times has no time axis; an empty log says so", () => {
  const svg = lossCurveSvg(run(50, false));
  expect(svg).not.toContain("tick-time");
  expect(labels(svg, "tick-step").length).toBeGreaterThan(2);
  expect(lossCurveSvg([])).toContain("no steps yet");
  // one step only: still a drawing, with axes
  const one = lossCurveSvg(run(1, true));
  expect(one).toContain("tick-loss");
  expect(one).not.toContain("NaN");
});
