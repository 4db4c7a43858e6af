/**
 * loss_curve.svg: training loss per step (raw, faint, and smoothed) and validation loss, as a small
 * SVG with real axes: the loss on the left, steps along the bottom and the training clock along the
 * top (when the log records it), each with round ticks and a grid.
 */
import { atomicWrite } from "../base/files.ts";
import { formatDuration, niceAxis, niceTicks, Smoother, SMOOTHING, stepAtTime, timeTicks, TrainingClock } from "./curves.ts";
import { isValRecord, type MetricsRecord } from "./metrics.ts";

const W = 720, H = 400, PAD = { left: 60, right: 20, top: 56, bottom: 48 };
const TRAIN = "#2563eb", RAW = "#bfd3fb", VAL = "#dc2626", GRID = "#e5e7eb", AXIS = "#374151";

export function lossCurveSvg(records: MetricsRecord[]): string {
  const clock = new TrainingClock();
  const smoother = new Smoother();
  const train: { step: number; loss: number; smooth: number }[] = [];
  const val: { step: number; loss: number }[] = [];
  const timed: { step: number; time: number }[] = [];
  for (const r of records) {
    const time = clock.at(r.elapsed_s);
    if (time !== null) timed.push({ step: r.step, time });
    if (isValRecord(r)) {
      if (Number.isFinite(r.val_loss)) val.push({ step: r.step, loss: r.val_loss });
    } else if (Number.isFinite(r.loss)) train.push({ step: r.step, loss: r.loss, smooth: smoother.next(r.loss) });
  }
  const header = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`;
  if (train.length + val.length === 0) return `${header}<rect width="${W}" height="${H}" fill="white"/><text x="20" y="40">no steps yet</text></svg>\n`;
  const [x0, lastStep] = range([...train.map((r) => r.step), ...val.map((r) => r.step)]);
  const x1 = Math.max(x0 + 1, lastStep);
  // The loss range widened to whole ticks, so no line runs along the frame.
  const yAxis = niceAxis(...range([...train.map((r) => r.loss), ...val.map((r) => r.loss)]), 5);
  const bottom = yAxis[0]!, top = yAxis[yAxis.length - 1]!;
  const px = (s: number) => PAD.left + ((s - x0) / (x1 - x0)) * (W - PAD.left - PAD.right);
  const py = (l: number) => H - PAD.bottom - ((l - bottom) / (top - bottom)) * (H - PAD.top - PAD.bottom);
  const f = (v: number) => v.toFixed(1);

  const parts = [header, `<rect width="${W}" height="${H}" fill="white"/>`];
  parts.push(`<text x="${PAD.left}" y="16" font-weight="bold" font-size="13">loss</text>`);
  parts.push(
    `<text x="${W - PAD.right}" y="16" text-anchor="end"><tspan fill="${TRAIN}">— train (EMA ${SMOOTHING})</tspan>  ` +
      `<tspan fill="${RAW}">— train</tspan>  <tspan fill="${VAL}">● validation</tspan></text>`,
  );

  // Loss axis: grid lines and labels.
  const yDigits = Math.max(0, Math.min(4, -Math.floor(Math.log10(yAxis[1]! - yAxis[0]!))));
  for (const l of yAxis) {
    const y = f(py(l));
    parts.push(`<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${y}" y2="${y}" stroke="${GRID}"/>`);
    parts.push(`<line x1="${PAD.left - 4}" x2="${PAD.left}" y1="${y}" y2="${y}" stroke="${AXIS}"/>`);
    parts.push(`<text class="tick-loss" x="${PAD.left - 7}" y="${y}" text-anchor="end" dominant-baseline="middle">${l.toFixed(yDigits)}</text>`);
  }

  // Step axis along the bottom.
  const yBase = H - PAD.bottom;
  parts.push(`<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${yBase}" y2="${yBase}" stroke="${AXIS}"/>`);
  for (const s of niceTicks(x0, x1, 6).filter((s) => Number.isInteger(s))) {
    const x = f(px(s));
    parts.push(`<line x1="${x}" x2="${x}" y1="${PAD.top}" y2="${yBase}" stroke="${GRID}"/>`);
    parts.push(`<line x1="${x}" x2="${x}" y1="${yBase}" y2="${yBase + 4}" stroke="${AXIS}"/>`);
    parts.push(`<text class="tick-step" x="${x}" y="${yBase + 17}" text-anchor="middle">${s}</text>`);
  }
  parts.push(`<text x="${(PAD.left + W - PAD.right) / 2}" y="${H - 8}" text-anchor="middle" fill="${AXIS}">step</text>`);

  // Time axis along the top: where the training clock read each round time.
  if (timed.length >= 2 && timed[timed.length - 1]!.time > timed[0]!.time) {
    const tSteps = timed.map((p) => p.step), tTimes = timed.map((p) => p.time);
    parts.push(`<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${PAD.top}" y2="${PAD.top}" stroke="${AXIS}"/>`);
    for (const t of timeTicks(tTimes[0]!, tTimes[tTimes.length - 1]!, 8)) {
      const s = stepAtTime(tSteps, tTimes, t);
      if (s === null || s < x0 || s > x1) continue;
      const x = f(px(s));
      parts.push(`<line x1="${x}" x2="${x}" y1="${PAD.top - 4}" y2="${PAD.top}" stroke="${AXIS}"/>`);
      parts.push(`<text class="tick-time" x="${x}" y="${PAD.top - 8}" text-anchor="middle">${formatDuration(t)}</text>`);
    }
    parts.push(`<text x="${PAD.left}" y="34" fill="${AXIS}">training time</text>`);
  }
  parts.push(`<line x1="${PAD.left}" x2="${PAD.left}" y1="${PAD.top}" y2="${yBase}" stroke="${AXIS}"/>`);

  if (train.length > 0) {
    parts.push(`<polyline fill="none" stroke="${RAW}" stroke-width="1" points="${train.map((r) => `${f(px(r.step))},${f(py(r.loss))}`).join(" ")}"/>`);
    parts.push(`<polyline fill="none" stroke="${TRAIN}" stroke-width="1.75" points="${train.map((r) => `${f(px(r.step))},${f(py(r.smooth))}`).join(" ")}"/>`);
  }
  for (const r of val) parts.push(`<circle cx="${f(px(r.step))}" cy="${f(py(r.loss))}" r="4" fill="${VAL}"/>`);
  parts.push("</svg>\n");
  return parts.join("");
}

/** Smallest and largest value (a loop: a long run's steps are too many for Math.min's arguments). */
function range(values: number[]): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}

export function writeLossCurve(path: string, records: MetricsRecord[]): void {
  atomicWrite(path, lossCurveSvg(records));
}
