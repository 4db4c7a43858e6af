/**
 * The dashboard in headless Chromium: the loss chart's last point is the last metrics line, it moves
 * when a line is appended, the time axis and log scale redraw, and runs without metrics (or with a line
 * being written) show their state on the page.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { resolveRuns } from "../../src/dashboard/runs.ts";
import { type Dashboard, startDashboard } from "../../src/dashboard/server.ts";
import { tempFolder } from "../cli/helpers.ts";
import { launchChromium, noBrowser } from "./chromium.ts";

const tmp = tempFolder("tv-dash-browser-");
const runA = join(tmp.dir, "lr-2e-3");
const runB = join(tmp.dir, "lr-5e-3");
const waiting = join(tmp.dir, "not-started");
const group = join(tmp.dir, "sweep");
let dash: Dashboard;
let browser: Browser;
let page: Page;

const stepLine = (step: number, loss: number) =>
  JSON.stringify({ step, stage: 0, epoch: 1, epochs: 1, loss, lr: 0.002 * Math.min(1, step / 10), grad_norm: 1, tokens_per_sec: 9000 + step, elapsed_s: step * 0.25 }) + "\n";
const valLine = (step: number, loss: number) => JSON.stringify({ step, stage: 0, epoch: 1, epochs: 1, val_loss: loss, elapsed_s: step * 0.25 }) + "\n";
const curve = (steps: number, scale: number) => {
  let text = "";
  for (let s = 1; s <= steps; s++) {
    text += stepLine(s, 3 + scale * Math.exp(-s / 30) + 0.1 * Math.sin(s));
    if (s % 40 === 0) text += valLine(s, 3.1 + scale * Math.exp(-s / 30));
  }
  return text;
};

beforeAll(async () => {
  if (noBrowser) return;
  mkdirSync(runA);
  mkdirSync(runB);
  writeFileSync(join(runA, "metrics.jsonl"), curve(120, 6));
  writeFileSync(join(runB, "metrics.jsonl"), curve(80, 5) + '{"step":81,"loss":4.1'); // a line being written
  mkdirSync(group);
  const paths = [runA, runB, waiting, group];
  dash = startDashboard({ runs: resolveRuns(paths), host: "127.0.0.1", port: 0, vocab: null, rescan: () => resolveRuns(paths) });
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  await page.goto(dash.url, { timeout: 20_000 });
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await dash?.stop();
  tmp.cleanup();
});

/** The last point (x, y) of a loss-chart series, read from the chart itself (the page's uPlot instance). */
const lastPoint = (label: string) =>
  page.evaluate(`(() => {
    const u = window.trainVocabDashboard.state.charts.loss;
    const i = u.series.findIndex((s) => s.label === ${JSON.stringify(label)});
    if (i < 0) return null;
    const xs = u.data[0], ys = u.data[i];
    for (let k = ys.length - 1; k >= 0; k--) if (ys[k] != null) return { x: xs[k], y: ys[k] };
    return null;
  })()`) as Promise<{ x: number; y: number } | null>;

const waitFor = (fn: string, arg?: unknown) => page.waitForFunction(fn, arg, { timeout: 10_000, polling: 100 });

test.skipIf(noBrowser)("the loss chart's last point is the last metrics line, and it moves when a line is appended", async () => {
  await waitFor("window.trainVocabDashboard?.state.charts.loss?.series.length > 4");
  const lastA = 3 + 6 * Math.exp(-120 / 30) + 0.1 * Math.sin(120);
  expect(await lastPoint("lr-2e-3 raw")).toEqual({ x: 120, y: lastA });
  expect((await lastPoint("lr-5e-3 raw"))!.x).toBe(80);
  expect((await lastPoint("lr-2e-3 val"))!.x).toBe(120);

  appendFileSync(join(runA, "metrics.jsonl"), stepLine(121, 2.5));
  await waitFor(`(() => { const u = window.trainVocabDashboard.state.charts.loss; const i = u.series.findIndex((s) => s.label === "lr-2e-3 raw"); return u.data[i][u.data[0].indexOf(121)] === 2.5; })()`);
  expect(await lastPoint("lr-2e-3 raw")).toEqual({ x: 121, y: 2.5 });
  // the table follows too
  await waitFor(`document.querySelector('#runs tr[data-run="0"]').textContent.includes("121")`);
}, 30_000);

test.skipIf(noBrowser)("runs without metrics, or with a line being written, show their state", async () => {
  await waitFor(`document.querySelector('#runs tr[data-run="2"]')?.textContent.includes("does not exist yet")`);
  const row1 = await page.textContent('#runs tr[data-run="1"]');
  expect(row1).toContain("A line is being written.");
  expect(row1).toContain("80");
  // the half line completes: the run moves on
  appendFileSync(join(runB, "metrics.jsonl"), ',"lr":0.001,"elapsed_s":20.25}\n');
  await waitFor(`document.querySelector('#runs tr[data-run="1"]').textContent.includes("4.1000")`);
}, 30_000);

test.skipIf(noBrowser)("training time on the x axis and a log scale redraw the charts from the same lines", async () => {
  await page.check('input[name="x"][value="time"]');
  await waitFor(`window.trainVocabDashboard.state.charts.loss.series[0].label === "training time"`);
  expect((await lastPoint("lr-2e-3 raw"))!.x).toBeCloseTo(121 * 0.25, 6);
  await page.check("#log");
  const distr = await page.evaluate("window.trainVocabDashboard.state.charts.loss.scales.y.distr");
  expect(distr).toBe(3);
  expect((await lastPoint("lr-2e-3 raw"))!.y).toBe(2.5);
  await page.screenshot({ path: join(tmp.dir, "dashboard.png"), fullPage: true });
  await page.check('input[name="x"][value="step"]');
  await page.uncheck("#log");
}, 30_000);

test.skipIf(noBrowser)("asking for a sample from a run without a checkpoint shows why on the page", async () => {
  await page.selectOption("#sample-run", "0");
  await page.click("#sample-button");
  await waitFor(`document.querySelector("#sample-out .error")?.textContent.includes("No model_checkpoint.bin")`);
}, 30_000);

test.skipIf(noBrowser)("a run folder that appears in a folder of runs joins the page with its curves", async () => {
  mkdirSync(join(group, "lr-1e-2"));
  writeFileSync(join(group, "lr-1e-2", "metrics.jsonl"), curve(30, 4));
  await waitFor(`window.trainVocabDashboard.state.charts.loss.series.some((s) => s.label === "lr-1e-2 raw")`);
  expect((await lastPoint("lr-1e-2 raw"))!.x).toBe(30);
  // the folder's own waiting row gave way to its run
  expect(await page.evaluate("window.trainVocabDashboard.state.runs.map((r) => r.name)")).toEqual(["lr-2e-3", "lr-5e-3", "not-started", "lr-1e-2"]);
}, 30_000);
