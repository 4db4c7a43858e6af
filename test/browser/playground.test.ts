/** The playground in headless Chromium: a completion streams into the page, piece by piece, and ends
 * with the same text the API gives for the same seed. */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { type TinyServer, tinyServer } from "../serve/helpers.ts";
import { tempDir } from "../generate/fixtures.ts";
import { launchChromium, noBrowser } from "./chromium.ts";

let s: TinyServer;
let browser: Browser | null = null;
const shots = tempDir("tv-playground-");

beforeAll(async () => {
  if (noBrowser) return;
  s = await tinyServer();
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await s?.close();
  shots.cleanup();
});

test.skipIf(noBrowser)("the playground streams a completion and ends with the API's text for the same seed", async () => {
  const page = await browser!.newPage({ viewport: { width: 1100, height: 700 } });
  await page.goto(`${s.url}/`);
  expect(await page.textContent("#model")).toBe("tiny");
  await page.fill("#prompt", "The cat sat");
  await page.fill("#max_tokens", "60");
  await page.fill("#temperature", "0.9");
  await page.fill("#seed", "11");
  // Count the pieces appended to the completion as they land (records, not callbacks: pieces that
  // arrive in one read are appended in one task).
  await page.evaluate(`window.updates = 0;
    new MutationObserver((records) => { window.updates += records.length; }).observe(document.getElementById("completion"), { childList: true, characterData: true, subtree: true });`);
  await page.click("#generate");
  await page.waitForSelector('body[data-state="done"]', { timeout: 20_000 });
  const shown = await page.textContent("#completion");
  const updates = Number(await page.evaluate("window.updates"));
  const status = await page.textContent("#status");

  const res = await fetch(`${s.url}/v1/completions`, {
    method: "POST",
    body: JSON.stringify({ prompt: "The cat sat", max_tokens: 60, temperature: 0.9, top_p: 0.95, top_k: 40, seed: 11 }),
  });
  const answer = (await res.json()) as { choices: { text: string }[]; usage: { completion_tokens: number } };
  expect(shown).toBe(answer.choices[0]!.text);
  expect(answer.usage.completion_tokens).toBeGreaterThan(1);
  expect(updates).toBeGreaterThan(1);
  expect(status).toContain(`${answer.usage.completion_tokens} tokens`);
  expect(await page.textContent("#prompt-echo")).toBe("The cat sat");

  const png = await page.screenshot({ path: join(shots.dir, "playground.png") });
  expect([...png.subarray(1, 4)].map((c) => String.fromCharCode(c)).join("")).toBe("PNG");
  await page.close();
}, 60_000);

test.skipIf(noBrowser)("a refused request shows the server's message", async () => {
  const page = await browser!.newPage();
  await page.goto(`${s.url}/`);
  await page.fill("#temperature", "5");
  await page.click("#generate");
  await page.waitForSelector('body[data-state="error"]', { timeout: 10_000 });
  expect(await page.textContent("#status")).toContain("temperature must be from 0 to 2");
  await page.close();
}, 30_000);
