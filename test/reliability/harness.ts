/** Shared by the reliability tests: a seeded RNG, spawning the CLI with extra environment, waiting. */
import { resolve } from "node:path";

export const BIN = resolve(import.meta.dir, "../../bin/train-vocab.ts");

/** The fuzzer's seeded dice: pick kill moments reproducibly. */
export { rng } from "../../fuzz/mutate.ts";

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
