/** loss_curve.svg: training loss per step (smoothed) and validation loss per epoch, as a small SVG. */
import { atomicWrite } from "../base/files.ts";
import { isValRecord, type MetricsRecord } from "./metrics.ts";

const W = 720, H = 360, PAD = { left: 56, right: 16, top: 28, bottom: 40 };

export function lossCurveSvg(records: MetricsRecord[]): string {
  const train = records.filter((r) => !isValRecord(r) && Number.isFinite((r as { loss: number }).loss)) as { step: number; loss: number }[];
  const val = records.filter(isValRecord).filter((r) => Number.isFinite(r.val_loss));
  const steps = [...train.map((r) => r.step), ...val.map((r) => r.step)];
  const losses = [...train.map((r) => r.loss), ...val.map((r) => r.val_loss)];
  const header = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`;
  if (steps.length === 0) return `${header}<text x="20" y="40">no steps yet</text></svg>\n`;
  const x0 = Math.min(...steps), x1 = Math.max(x0 + 1, ...steps);
  const y0 = Math.min(...losses), y1 = Math.max(y0 + 1e-3, ...losses);
  const px = (s: number) => PAD.left + ((s - x0) / (x1 - x0)) * (W - PAD.left - PAD.right);
  const py = (l: number) => H - PAD.bottom - ((l - y0) / (y1 - y0)) * (H - PAD.top - PAD.bottom);
  // An exponential moving average keeps the line readable when per-step losses are noisy.
  let ema = train[0]?.loss ?? 0;
  const line = train.map((r, i) => {
    ema = i === 0 ? r.loss : 0.9 * ema + 0.1 * r.loss;
    return `${px(r.step).toFixed(1)},${py(ema).toFixed(1)}`;
  });
  const parts = [header, `<rect width="${W}" height="${H}" fill="white"/>`];
  parts.push(`<text x="${PAD.left}" y="18" font-weight="bold">loss</text>`);
  for (let i = 0; i <= 4; i++) {
    const l = y0 + ((y1 - y0) * i) / 4;
    const y = py(l).toFixed(1);
    parts.push(`<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${y}" y2="${y}" stroke="#eee"/>`);
    parts.push(`<text x="${PAD.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${l.toFixed(2)}</text>`);
  }
  parts.push(`<text x="${PAD.left}" y="${H - 12}">step ${x0}</text><text x="${W - PAD.right}" y="${H - 12}" text-anchor="end">step ${x1}</text>`);
  if (line.length > 0) parts.push(`<polyline fill="none" stroke="#2563eb" stroke-width="1.5" points="${line.join(" ")}"/>`);
  for (const r of val) parts.push(`<circle cx="${px(r.step).toFixed(1)}" cy="${py(r.val_loss).toFixed(1)}" r="4" fill="#dc2626"/>`);
  parts.push(`<text x="${W - PAD.right}" y="18" text-anchor="end"><tspan fill="#2563eb">train (EMA)</tspan>  <tspan fill="#dc2626">● validation</tspan></text>`);
  parts.push("</svg>\n");
  return parts.join("");
}

export function writeLossCurve(path: string, records: MetricsRecord[]): void {
  atomicWrite(path, lossCurveSvg(records));
}
