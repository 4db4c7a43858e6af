/** `train_vocab serve`: an OpenAI-style completions API and a playground page for a checkpoint. */
import type { CAC } from "cac";
import { basename, dirname, resolve } from "node:path";
import { UserError } from "../base/errors.ts";
import { checkpointOf, DEFAULT_CHECKPOINT, requireFile, text, wholeNumber } from "./use_flags.ts";

interface Options {
  checkpoint?: unknown;
  vocab: unknown;
  host: unknown;
  port: unknown;
  modelName?: unknown;
  maxConcurrent: unknown;
  maxTokensLimit: unknown;
  maxBodyBytes: unknown;
  idleTimeout: unknown;
  threads?: unknown;
}

export function registerServe(cli: CAC): void {
  cli
    .command("serve [checkpoint]", "Serve a model over HTTP: OpenAI-style /v1/completions and a playground page")
    .option("--checkpoint <file>", `Model checkpoint (ours, or a LoopOS LOPOS v1 file), or give it as the first argument (path; default: ${DEFAULT_CHECKPOINT})`)
    .option("--vocab <file>", "Vocabulary the model was trained with (path)", { default: "outputs/tokenizer.vocab" })
    .option("--host <address>", "Address to listen on; anything but a loopback address lets other machines in, with no authentication (string)", { default: "127.0.0.1" })
    .option("--port <n>", "Port (integer 0..65535; 0 = any free port, printed at start)", { default: 8080 })
    .option("--model-name <id>", "The model's id in /v1/models and in answers (string; default: the checkpoint's folder name)")
    .option("--max-concurrent <n>", "Requests generating at once, decoded together; one more gets 429 (integer >= 1)", { default: 32 })
    .option("--max-tokens-limit <n>", "Largest max_tokens a request may ask for (integer >= 1)", { default: 2048 })
    .option("--max-body-bytes <n>", "Largest request body; larger gets 413 (integer >= 1024)", { default: 1 << 20 })
    .option("--idle-timeout <seconds>", "Close a connection silent for this long (integer 1..255)", { default: 30 })
    .option("--threads <n>", "Kernel threads (integer, default: all CPUs)")
    .example("train_vocab serve --checkpoint outputs/autoregressive/model_checkpoint.bin --vocab outputs/tokenizer.vocab")
    .example(`curl -s localhost:8080/v1/completions -H 'content-type: application/json' -d '{"prompt": "The jury", "max_tokens": 20}'`)
    .action(async (checkpoint: unknown, o: Options) => run(checkpoint, o));
}

async function run(argument: unknown, o: Options): Promise<void> {
  const { path: checkpoint, from } = checkpointOf(argument, o.checkpoint);
  const vocab = text("--vocab", o.vocab)!;
  const host = text("--host", o.host)!;
  const port = wholeNumber("--port", o.port, 0, 65535);
  const maxConcurrent = wholeNumber("--max-concurrent", o.maxConcurrent, 1, 1024);
  const maxTokens = wholeNumber("--max-tokens-limit", o.maxTokensLimit, 1, 1 << 20);
  const maxBodyBytes = wholeNumber("--max-body-bytes", o.maxBodyBytes, 1024, 1 << 30);
  const idleTimeout = wholeNumber("--idle-timeout", o.idleTimeout, 1, 255, "Bun's limit");
  const threads = o.threads === undefined ? undefined : wholeNumber("--threads", o.threads, 1, 256);
  requireFile(checkpoint, "checkpoint", from);
  requireFile(vocab, "vocab", "--vocab", checkpoint);
  const modelId = text("--model-name", o.modelName, false) ?? (basename(dirname(resolve(checkpoint))) || "model");

  const { setThreads } = await import("../native.ts");
  if (threads !== undefined) setThreads(threads);
  const { loadModel } = await import("../generate/load.ts");
  const { InferenceEngine } = await import("../generate/engine.ts");
  const { startServer } = await import("../serve/server.ts");
  const { checkpoint: ckpt, tokenizer } = loadModel(checkpoint, vocab);
  const engine = new InferenceEngine(ckpt.arch, ckpt.params);
  let server;
  try {
    server = startServer(engine, tokenizer, { host, port, modelId, maxConcurrent, maxTokens, maxBodyBytes, idleTimeout });
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === "EADDRINUSE") throw new UserError(`Port ${port} on ${host} is in use (--port): stop the program using it, or pick another port (--port 0 takes any free one).`);
    if (code === "EADDRNOTAVAIL" || code === "EACCES") throw new UserError(`Cannot listen on ${host}:${port} (--host, --port): ${(err as Error).message}.`);
    throw err;
  }
  const { arch } = ckpt;
  console.log(`Serving ${modelId} (${arch.num_layers} layers, d_model ${arch.d_model}, vocabulary ${tokenizer.vocabSize}, context ${arch.max_seq_len}) on ${server.url}`);
  console.log(`  playground ${server.url}/ · POST ${server.url}/v1/completions · up to ${maxConcurrent} requests at once · Ctrl-C stops`);
  if (!isLoopback(host)) console.error(`warning: listening on ${host}: anyone who can reach this machine can use the model (there is no authentication).`);
  await new Promise<void>((done) => {
    const stop = () => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      void server.stop().then(done);
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
}

function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\./.test(host);
}
