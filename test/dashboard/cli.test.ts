/** `train_vocab dashboard` as a user runs it: the address printed, served until Ctrl-C, and bad flags or a busy port said plainly. */
import { afterAll, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BIN, runCli, tempFolder } from "../cli/helpers.ts";

const tmp = tempFolder("tv-dash-cli-");
afterAll(() => tmp.cleanup());

/** Starts the command and returns its process and the address it printed, once its output holds `until` (bounded wait). */
async function startCommand(args: string[], until: string): Promise<{ proc: ReturnType<typeof Bun.spawn>; url: string; out: string }> {
  const proc = Bun.spawn(["bun", "run", BIN, "dashboard", ...args], { cwd: tmp.dir, stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" } });
  const reader = (proc.stdout as ReadableStream<Uint8Array>).getReader();
  let out = "";
  const deadline = Date.now() + 20_000;
  while (!out.includes(until) && Date.now() < deadline) {
    const next = await Promise.race([reader.read(), Bun.sleep(Math.max(0, deadline - Date.now())).then(() => null)]);
    if (!next || next.done) break;
    out += new TextDecoder().decode(next.value);
  }
  reader.releaseLock();
  return { proc, url: /http:\/\/127\.0\.0\.1:\d+\//.exec(out)?.[0] ?? "", out };
}

test("dashboard prints its address and each run's metrics file, serves, and stops cleanly on SIGINT", async () => {
  const runs = join(tmp.dir, "runs");
  for (const name of ["a", "b"]) {
    mkdirSync(join(runs, name), { recursive: true });
    writeFileSync(join(runs, name, "metrics.jsonl"), JSON.stringify({ step: 1, stage: 0, epoch: 1, epochs: 1, loss: 4, lr: 0.001, grad_norm: 1, tokens_per_sec: 5 }) + "\n");
  }
  const { proc, url, out } = await startCommand(["runs", "--port", "0"], `${join("runs", "b", "metrics.jsonl")}\n`);
  try {
    expect(out).toContain("Dashboard for 2 runs: http://127.0.0.1:");
    expect(out).toContain(`  ${join("runs", "a", "metrics.jsonl")}\n  ${join("runs", "b", "metrics.jsonl")}`);
    const listed = (await (await fetch(`${url}api/runs`)).json()) as { runs: { name: string }[] };
    expect(listed.runs.map((r) => r.name)).toEqual(["a", "b"]);
  } finally {
    proc.kill("SIGINT");
  }
  expect(await proc.exited).toBe(0);
});

test("a busy port and bad flags are one error line each, exit 2", async () => {
  const busy = Bun.serve({ hostname: "127.0.0.1", port: 0, reusePort: true, fetch: () => new Response("taken") });
  try {
    const r = await runCli(["dashboard", "runs", "--port", String(busy.port)], tmp.dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`error: Port ${busy.port} on 127.0.0.1 is in use: choose another with --port (0 picks a free one).`);
  } finally {
    await busy.stop(true);
  }
  const high = await runCli(["dashboard", "--port", "70000"], tmp.dir);
  expect(high.code).toBe(2);
  expect(high.stderr).toContain("--port");
  const typo = await runCli(["dashboard", "--prot", "9000"], tmp.dir);
  expect(typo.code).toBe(2);
  expect(typo.stderr).toContain("did you mean `--port`?");
});
