/** `train_vocab dashboard [OUTPUT_DIR...]`: a live page of one or more training runs, and samples from their checkpoints. */
import type { CAC } from "cac";
import { existsSync, statSync } from "node:fs";
import { UserError } from "../base/errors.ts";
import { text, wholeNumber } from "./use_flags.ts";

interface Flags {
  port: unknown;
  host: unknown;
  vocab?: unknown;
}

const LOOPBACK = new Set(["127.0.0.1", "localhost", "::1"]);

export function registerDashboard(cli: CAC): void {
  cli
    .command("dashboard [...folders]", "A live page of training runs (their metrics.jsonl): loss, learning rate, tokens/s; samples from the latest checkpoint")
    .option("--port <n>", "Port to listen on (integer; 0 picks a free one)", { default: 8081 })
    .option("--host <address>", "Address to listen on (the default serves this machine only)", { default: "127.0.0.1" })
    .option("--vocab <file>", "Vocabulary for samples (path; default: the .vocab in each run folder or its parent that its checkpoint was trained with)")
    .example("train_vocab dashboard                       # outputs/autoregressive, the default --output")
    .example("train_vocab dashboard runs/lr-1e-3 runs/lr-3e-3 --port 9000")
    .example("train_vocab dashboard runs/                 # every run folder inside runs/")
    .action(async (folders: string[], flags: Flags) => runDashboard(folders, flags));
}

async function runDashboard(folders: string[], flags: Flags): Promise<void> {
  const port = wholeNumber("--port", flags.port, 0, 65535);
  const host = text("--host", flags.host)!;
  const vocab = flags.vocab === undefined ? null : text("--vocab", flags.vocab)!;
  const { resolveRuns } = await import("../dashboard/runs.ts");
  const { startDashboard } = await import("../dashboard/server.ts");
  const paths = folders.length > 0 ? folders : ["outputs/autoregressive"];
  for (const p of paths) {
    if (!p.endsWith(".jsonl") && existsSync(p) && statSync(p).isFile()) {
      throw new UserError(`${p} is a file but not a metrics file (.jsonl): give a run folder (what training's --output named) or its metrics.jsonl.`);
    }
  }
  const runs = resolveRuns(paths);
  let dashboard;
  try {
    dashboard = startDashboard({ runs, host, port, vocab, rescan: () => resolveRuns(paths) });
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === "EADDRINUSE") throw new UserError(`Port ${port} on ${host} is in use: choose another with --port (0 picks a free one).`);
    if (code === "EADDRNOTAVAIL" || code === "ENOTFOUND") throw new UserError(`--host ${host}: not an address of this machine.`);
    if (code === "EACCES") throw new UserError(`--port ${port}: not allowed for this user; use a port above 1023.`);
    throw err;
  }
  if (!LOOPBACK.has(host)) {
    console.warn(`warning: listening on ${host}: anyone who reaches this machine there can read these runs' metrics and sample their models.`);
  }
  console.log(`Dashboard for ${runs.length === 1 ? "1 run" : `${runs.length} runs`}: ${dashboard.url}  (Ctrl-C to stop)`);
  for (const r of runs) {
    // A folder that does not exist yet is a run about to start; a typo looks the same, so say it.
    const note = existsSync(r.metrics) ? "" : existsSync(r.folder) ? "  (no metrics yet: shown when training writes them)" : "  (the folder does not exist yet: shown when a run writes there)";
    console.log(`  ${r.metrics}${note}`);
  }
  // Serve until interrupted; the server holds the event loop open.
  await new Promise<void>((done) => {
    const stop = () => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      void dashboard.stop().then(done);
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
}
