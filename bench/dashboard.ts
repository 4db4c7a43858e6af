/**
 * bench:dashboard — how the dashboard copes with long runs: two runs of N steps each (a validation line
 * every 100 steps), the server's first read of them and the size of its reply, a poll that finds 50 new
 * lines, and in headless Chromium the time from opening the page to the loss chart holding every point,
 * and from appending a line to the chart showing it.
 *
 *   bun run bench:dashboard [--steps 200000]
 */
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { MetricsFollower } from "../src/dashboard/follow.ts";
import { resolveRuns } from "../src/dashboard/runs.ts";
import { startDashboard } from "../src/dashboard/server.ts";
import { chromiumPath } from "../test/browser/chromium.ts";

const at = process.argv.indexOf("--steps");
const steps = at > 0 ? Number(process.argv[at + 1]) : 200_000;
if (!Number.isInteger(steps) || steps < 100) throw new Error("--steps: a whole number of at least 100");
const browserPath = chromiumPath();
if (!browserPath) throw new Error("no Chromium: install Debian's `chromium` or set CHROMIUM_PATH");

const line = (step: number, loss: number) =>
  JSON.stringify({ step, stage: 0, epoch: 1, epochs: 1, loss, lr: 0.002, grad_norm: 0.8, tokens_per_sec: 12000 + (step % 997), elapsed_s: step * 0.05 }) + "\n";
const work = mkdtempSync(join(tmpdir(), "tv-bench-dash-"));
const ms = (t0: number) => performance.now() - t0;
try {
  const runs = ["a", "b"].map((name, r) => {
    const dir = join(work, name);
    mkdirSync(dir);
    const parts: string[] = [];
    for (let s = 1; s <= steps; s++) {
      parts.push(line(s, 3 + (6 + r) * Math.exp(-s / (steps / 10)) + 0.2 * Math.sin(s)));
      if (s % 100 === 0) parts.push(JSON.stringify({ step: s, stage: 0, epoch: 1, epochs: 1, val_loss: 3.1 + 6 * Math.exp(-s / (steps / 10)), elapsed_s: s * 0.05 }) + "\n");
    }
    writeFileSync(join(dir, "metrics.jsonl"), parts.join(""));
    return dir;
  });
  const bytes = Bun.file(join(runs[0]!, "metrics.jsonl")).size;

  const f = new MetricsFollower(runs[0]!, join(runs[0]!, "metrics.jsonl"));
  let t0 = performance.now();
  f.poll();
  const firstRead = ms(t0);
  appendFileSync(join(runs[0]!, "metrics.jsonl"), Array.from({ length: 50 }, (_, i) => line(steps + 1 + i, 3)).join(""));
  t0 = performance.now();
  f.poll();
  const fiftyMore = ms(t0);

  const dash = startDashboard({ runs: resolveRuns(runs), host: "127.0.0.1", port: 0, vocab: null });
  const browser = await chromium.launch({ executablePath: browserPath, headless: true, args: ["--no-sandbox"] });
  try {
    t0 = performance.now();
    const reply = await (await fetch(`${dash.url}api/runs/1/metrics`)).arrayBuffer();
    const replyMs = ms(t0);
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    t0 = performance.now();
    await page.goto(dash.url);
    const total = `window.trainVocabDashboard?.state.charts.loss?.data[0].length >= ${steps + 50}`;
    await page.waitForFunction(total, undefined, { timeout: 120_000, polling: 50 });
    const pageMs = ms(t0);
    appendFileSync(join(runs[1]!, "metrics.jsonl"), line(steps + 1000, 2));
    t0 = performance.now();
    await page.waitForFunction(`window.trainVocabDashboard.state.charts.loss.data[0].includes(${steps + 1000})`, undefined, { timeout: 60_000, polling: 20 });
    const appendMs = ms(t0);
    const drawMs = (await page.evaluate("window.trainVocabDashboard.state.drawMs")) as number;
    const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
    console.log(`dashboard: 2 runs × ${steps.toLocaleString("en-US")} steps (${mb(bytes)} of metrics.jsonl each)`);
    console.log(`  first read of one run:        ${firstRead.toFixed(0)} ms`);
    console.log(`  a poll finding 50 new lines:  ${fiftyMore.toFixed(2)} ms`);
    console.log(`  one run's whole reply:        ${mb(reply.byteLength)} in ${replyMs.toFixed(0)} ms (${Math.ceil(steps / 100_000)} request(s) from the page)`);
    console.log(`  page opened → every point drawn: ${(pageMs / 1000).toFixed(2)} s`);
    console.log(`  line appended → on the chart:    ${appendMs.toFixed(0)} ms (the page polls once a second)`);
    console.log(`  one redraw of the three charts:  ${drawMs.toFixed(0)} ms`);
  } finally {
    await browser.close();
    await dash.stop();
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
