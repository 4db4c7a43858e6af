/**
 * The pictures in docs/dashboard.md, made from real runs: two small models trained on part of the
 * Brown corpus at two learning rates, the dashboard on both (headless Chromium through playwright-core),
 * and one run's loss_curve.svg.
 *
 *   bun run scripts/dashboard_screenshots.ts [--out docs/img]      (about a minute on 2 cores)
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { chromium } from "playwright-core";
import { brownCorpus } from "../src/data/brown.ts";
import { resolveRuns } from "../src/dashboard/runs.ts";
import { startDashboard } from "../src/dashboard/server.ts";
import { chromiumPath } from "../test/browser/chromium.ts";

const ROOT = resolve(import.meta.dir, "..");
const outArg = process.argv.indexOf("--out");
const out = resolve(outArg > 0 ? process.argv[outArg + 1]! : join(ROOT, "docs/img"));
const browserPath = chromiumPath();
if (!browserPath) {
  console.error("no Chromium: install Debian's `chromium` or set CHROMIUM_PATH");
  process.exit(2);
}

const work = mkdtempSync(join(tmpdir(), "tv-shots-"));
try {
  const data = join(work, "brown");
  mkdirSync(data);
  for (const d of (await brownCorpus()).filter((_, i) => i % 8 === 0)) writeFileSync(join(data, `${d.name}.txt`), d.text);
  const common = ["--data", data, "--vocab", join(work, "runs", "tokenizer.vocab"), "--vocab-size", "2000", "--d-model", "64", "--num-heads", "4",
    "--num-layers", "2", "--d-ff", "256", "--max-length", "64", "--batch-size", "8", "--epochs", "2", "--eval-every", "40", "--log-every", "1000"];
  for (const lr of ["0.002", "0.006"]) {
    const run = Bun.spawnSync(["bun", "run", join(ROOT, "bin/train-vocab.ts"), ...common, "--learning-rate", lr, "--output", join(work, "runs", `lr-${lr}`)], { stdout: "inherit", stderr: "inherit" });
    if (run.exitCode !== 0) throw new Error(`training at learning rate ${lr} failed`);
  }
  // Paths on the page as a user would type them, relative to where the dashboard runs.
  process.chdir(work);
  const dash = startDashboard({ runs: resolveRuns(["runs"]), host: "127.0.0.1", port: 0, vocab: null });
  const browser = await chromium.launch({ executablePath: browserPath, headless: true, args: ["--no-sandbox"] });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(dash.url);
    await page.waitForFunction("window.trainVocabDashboard?.state.charts.loss?.series.length > 4", undefined, { timeout: 20_000 });
    await page.fill("#sample-prompt", "The jury said");
    await page.fill("#sample-temperature", "0.7");
    await page.click("#sample-button");
    await page.waitForSelector("#sample-out .generated", { timeout: 20_000 });
    mkdirSync(out, { recursive: true });
    await page.screenshot({ path: join(out, "dashboard.png"), fullPage: true });
    await page.check('input[name="x"][value="time"]');
    await page.check("#log");
    await page.waitForFunction(`window.trainVocabDashboard.state.charts.loss.series[0].label === "training time"`, undefined, { timeout: 10_000 });
    await page.locator("section.charts").screenshot({ path: join(out, "dashboard_time_log.png") });
  } finally {
    await browser.close();
    await dash.stop();
  }
  copyFileSync(join(work, "runs", "lr-0.002", "loss_curve.svg"), join(out, "loss_curve.svg"));
  process.chdir(ROOT);
  console.log(`wrote ${join(out, "dashboard.png")}, dashboard_time_log.png and loss_curve.svg`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
