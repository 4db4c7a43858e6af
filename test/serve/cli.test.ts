/** `train_vocab serve` as users start it: the address it prints, an answer equal to `generate`'s,
 * Ctrl-C, and the errors for a missing file and a busy port. */
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { runCli } from "../cli/helpers.ts";
import { tempDir, tinyModelFiles } from "../generate/fixtures.ts";

const BIN = join(import.meta.dir, "..", "..", "bin", "train-vocab.ts");
const { dir, cleanup } = tempDir("tv-serve-cli-");
const files = tinyModelFiles(dir);
afterAll(cleanup);

/** Start the server; resolves with the process and the URL it printed. */
async function start(args: string[]) {
  const proc = Bun.spawn(["bun", "run", BIN, "serve", "--checkpoint", files.checkpoint, "--vocab", files.vocab, ...args], {
    cwd: dir, stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" },
  });
  const decoder = new TextDecoder();
  let out = "";
  const reader = proc.stdout.getReader();
  while (!/on (http:\/\/\S+)/.test(out)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`serve ended before printing its address: ${out} ${await new Response(proc.stderr).text()}`);
    out += decoder.decode(value, { stream: true });
  }
  reader.releaseLock();
  return { proc, url: /on (http:\/\/\S+)/.exec(out)![1]!, out };
}

describe("train_vocab serve", () => {
  test("prints where it listens, answers as `generate` does for the same seed, and stops cleanly on SIGINT", async () => {
    const { proc, url, out } = await start(["--port", "0", "--model-name", "tiny-model"]);
    try {
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(out).toContain("Serving tiny-model");
      const res = await fetch(`${url}/v1/completions`, {
        method: "POST",
        body: JSON.stringify({ prompt: "The cat", max_tokens: 12, temperature: 0.7, top_k: 20, top_p: 0.9, seed: 42 }),
      });
      const answer = (await res.json()) as { model: string; choices: { text: string }[] };
      expect(answer.model).toBe("tiny-model");
      const gen = await runCli(
        ["generate", "--checkpoint", files.checkpoint, "--vocab", files.vocab, "--prompt", "The cat", "--max-tokens", "12",
          "--temperature", "0.7", "--top-k", "20", "--top-p", "0.9", "--seed", "42", "--no-echo"],
        dir,
      );
      expect(gen.code).toBe(0);
      expect(answer.choices[0]!.text + "\n").toBe(gen.stdout);
    } finally {
      proc.kill("SIGINT");
    }
    expect(await proc.exited).toBe(0);
  }, 30_000);

  test("a missing checkpoint and a busy port are one-line errors, exit 2", async () => {
    const missing = await runCli(["serve", "--checkpoint", join(dir, "nope.bin"), "--vocab", files.vocab], dir);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("Checkpoint file not found");

    // A holder that allows sharing the port (SO_REUSEPORT, as another Bun server in production mode
    // has): a server of ours must still refuse it, not start beside it.
    const other = Bun.serve({ hostname: "127.0.0.1", port: 0, reusePort: true, fetch: () => new Response("") });
    try {
      const busy = await runCli(["serve", "--checkpoint", files.checkpoint, "--vocab", files.vocab, "--port", String(other.port)], dir);
      expect(busy.code).toBe(2);
      expect(busy.stderr).toMatch(/Port \d+ on 127\.0\.0\.1 is in use \(--port\)/);
    } finally {
      await other.stop(true);
    }
  }, 30_000);
});
