// Headless Chromium for the tests of web pages, driven by playwright-core. Chromium comes from the
// system (Debian's `chromium`; .ci/run installs it). Where it is missing, browser tests are skipped
// with a note, unless TRAIN_VOCAB_REQUIRE_BROWSER=1 (set by CI), which makes a missing browser a failure.
import { existsSync } from "node:fs";
import { chromium, type Browser } from "playwright-core";

const CANDIDATES = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];

/** The Chromium executable: $CHROMIUM_PATH, else the first of the usual system paths; null if none. */
export function chromiumPath(): string | null {
  const fromEnv = process.env.CHROMIUM_PATH;
  if (fromEnv) return existsSync(fromEnv) ? fromEnv : null;
  return CANDIDATES.find((p) => existsSync(p)) ?? null;
}

const required = process.env.TRAIN_VOCAB_REQUIRE_BROWSER === "1";

/** True when browser tests should be skipped (no Chromium here and CI does not require one). */
export const noBrowser: boolean = (() => {
  const found = chromiumPath() !== null;
  if (!found && !required) console.warn("note: no Chromium found (set CHROMIUM_PATH); browser tests skipped");
  return !found && !required;
})();

/** Launches headless Chromium; throws, naming what to install, when it cannot be found. */
export async function launchChromium(): Promise<Browser> {
  const executablePath = chromiumPath();
  if (!executablePath) throw new Error("no Chromium: install Debian's `chromium` or set CHROMIUM_PATH");
  // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
  return chromium.launch({ executablePath, headless: true, args: ["--no-sandbox"] });
}
