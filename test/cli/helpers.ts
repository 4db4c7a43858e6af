/** Running the CLI the way a user does (a fresh process in a temp folder) on text the tests make. */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const BIN = resolve(import.meta.dir, "../../bin/train-vocab.ts");

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout and stderr together, for messages whose stream does not matter. */
  out: string;
}

export function tempFolder(prefix = "tv-train-"): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A small text with structure to learn: "the <noun> <verb> the <noun> <place>." sentences, seeded.
 * Half of each sentence is predictable, so a model that learns shows a loss far below ln(vocab). */
export function learnableText(sentences: number, seed = 1): string {
  const nouns = ["cat", "dog", "bird", "fox", "horse"];
  const verbs = ["sees", "chases", "likes", "finds"];
  const places = ["in the park", "on the hill", "by the river"];
  // xorshift32, not the shared generator: test/train/golden.test.ts pins a run on this exact text.
  let s = seed >>> 0 || 1;
  const pick = <T>(xs: T[]): T => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return xs[s % xs.length]!;
  };
  const lines: string[] = [];
  for (let i = 0; i < sentences; i++) lines.push(`the ${pick(nouns)} ${pick(verbs)} the ${pick(nouns)} ${pick(places)}.`);
  return lines.join("\n") + "\n";
}

export function writeText(dir: string, name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** Flags for a model small enough that a whole run takes well under a second of compute. */
export const TINY = [
  "--d-model", "32", "--num-heads", "2", "--num-layers", "2", "--d-ff", "64",
  "--max-length", "16", "--batch-size", "4", "--learning-rate", "0.003", "--threads", "1",
  "--log-every", "1000", "--vocab-size", "300",
];

export async function runCli(args: string[], cwd: string, command: string[] = ["bun", "run", BIN]): Promise<RunResult> {
  const proc = Bun.spawn([...command, ...args], { cwd, stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" } });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr, out: stdout + stderr };
}

/** Start the CLI and send it `signal` once its output shows `when`; returns how it ended. */
export async function runCliAndSignal(args: string[], cwd: string, when: RegExp, signal: NodeJS.Signals): Promise<RunResult> {
  const proc = Bun.spawn(["bun", "run", BIN, ...args], { cwd, stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" } });
  let stdout = "";
  let sent = false;
  const decoder = new TextDecoder();
  const errText = new Response(proc.stderr).text();
  for await (const chunk of proc.stdout) {
    stdout += decoder.decode(chunk, { stream: true });
    if (!sent && when.test(stdout)) {
      proc.kill(signal);
      sent = true;
    }
  }
  const code = await proc.exited;
  const stderr = await errText;
  return { code, stdout, stderr, out: stdout + stderr };
}

/** `base` with some flags replaced by `more` (a flag may be given once): withFlags(TINY, "--log-every", "1"). */
export function withFlags(base: string[], ...more: string[]): string[] {
  const replaced = new Set(more.filter((a) => a.startsWith("--")));
  const kept = base.filter((a, i) => !replaced.has(a) && !(i > 0 && replaced.has(base[i - 1]!) && !a.startsWith("--")));
  return [...kept, ...more];
}
