/** Shared by the reliability tests: a seeded RNG, spawning the CLI with extra environment, waiting. */
import { resolve } from "node:path";

export const BIN = resolve(import.meta.dir, "../../bin/train-vocab.ts");

/** mulberry32: small, seeded, good enough to pick moments and mutations reproducibly. */
export function rng(seed: number): { next(): number; int(lo: number, hi: number): number; pick<T>(xs: readonly T[]): T } {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: (xs) => xs[Math.floor(next() * xs.length)]!,
  };
}

export interface Started {
  proc: ReturnType<typeof Bun.spawn>;
  /** stdout + stderr as they arrive. */
  output: () => string;
  done: Promise<{ code: number | null; signal: string | null; out: string }>;
}

/** Start the CLI in `cwd`; output is collected while it runs. */
export function startCli(args: string[], cwd: string, env: Record<string, string> = {}): Started {
  const proc = Bun.spawn(["bun", "run", BIN, ...args], {
    cwd,
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, NO_COLOR: "1", ...env },
  });
  let out = "";
  const decoder = new TextDecoder();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) out += decoder.decode(chunk, { stream: true });
  };
  const pumps = Promise.all([pump(proc.stdout as ReadableStream<Uint8Array>), pump(proc.stderr as ReadableStream<Uint8Array>)]);
  const done = (async () => {
    const code = await proc.exited;
    await pumps;
    return { code: proc.signalCode ? null : code, signal: proc.signalCode ? String(proc.signalCode) : null, out };
  })();
  return { proc, output: () => out, done };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
