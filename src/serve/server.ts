/**
 * The HTTP server: an OpenAI-style completions API on Bun.serve, and the playground page.
 *
 *   GET  /                 the playground
 *   GET  /health           {"status":"ok", load and limits}
 *   GET  /v1/models        the one model served; GET /v1/models/{id} that model
 *   POST /v1/completions   a completion, whole or streamed as server-sent events
 *
 * Every error is OpenAI's error JSON with its status: 400 bad body or field, 404 unknown path or
 * model, 405 wrong method, 413 body over the limit, 429 all slots taken. Limits: the body's bytes
 * (checked on the declared length and again while reading, so a chunked body cannot pass them),
 * max_tokens, requests generating at once, and the idle time of a connection. A request's
 * generation is stopped when its client goes away (the request's abort signal, or the stream's
 * cancel).
 */
import type { Server } from "bun";
import type { InferenceEngine } from "../generate/engine.ts";
import { promptTokens } from "../generate/generate.ts";
import type { Tokenizer } from "../tokenizer/index.ts";
import { foreignHost } from "../base/loopback.ts";
import { ApiError, badRequest, errorBody, errorResponse } from "./errors.ts";
import { playgroundPage } from "./playground.ts";
import { type CompletionRequest, parseCompletionRequest, SEED_MAX } from "./request.ts";
import { type FinishReason, type JobHandle, Scheduler } from "./scheduler.ts";

export interface ServeLimits {
  /** Largest request body, in bytes. */
  maxBodyBytes: number;
  /** Largest max_tokens a request may ask for. */
  maxTokens: number;
  /** Requests generating at once; one more is refused with 429. */
  maxConcurrent: number;
  /** Seconds a connection may stay silent before it is closed (Bun's limit: 1..255). */
  idleTimeout: number;
}

export interface ServeConfig extends ServeLimits {
  host: string;
  /** 0: any free port. */
  port: number;
  /** The model's id in /v1/models and in responses. */
  modelId: string;
}

export const DEFAULT_LIMITS: ServeLimits = { maxBodyBytes: 1 << 20, maxTokens: 2048, maxConcurrent: 32, idleTimeout: 30 };

export interface RunningServer {
  /** http://host:port */
  url: string;
  port: number;
  scheduler: Scheduler;
  /** Stop accepting, end open connections. */
  stop(): Promise<void>;
}

type Handler = (req: Request, server: Server<undefined>) => Response | Promise<Response>;

const JSON_HEADERS = { "content-type": "application/json" };
const json = (value: unknown, status = 200) => new Response(JSON.stringify(value), { status, headers: JSON_HEADERS });

export function startServer(engine: InferenceEngine, tokenizer: Tokenizer, config: ServeConfig): RunningServer {
  const scheduler = new Scheduler(engine, tokenizer, config.maxConcurrent);
  const created = Math.floor(Date.now() / 1000);
  const model = { id: config.modelId, object: "model", created, owned_by: "train-vocab" };
  const page = playgroundPage(config.modelId, config.maxTokens);

  const routes: Record<string, Partial<Record<string, Handler>>> = {
    "/": { GET: () => new Response(page, { headers: { "content-type": "text/html; charset=utf-8" } }) },
    "/health": {
      GET: () => json({ status: "ok", model: config.modelId, ...scheduler.stats(), limits: limitsOf(config) }),
    },
    "/v1/models": { GET: () => json({ object: "list", data: [model] }) },
    "/v1/completions": { POST: (req, server) => completions(req, server) },
  };

  async function completions(req: Request, server: Server<undefined>): Promise<Response> {
    const request = parseCompletionRequest(await readJson(req, config.maxBodyBytes), { maxTokens: config.maxTokens });
    const start = promptTokens(tokenizer, request.prompt, engine.contextSize);
    if (start === null) throw badRequest("prompt is empty and this model's vocabulary has no end-of-text token to start from: give some text.", "prompt");
    if (scheduler.load >= config.maxConcurrent) {
      throw new ApiError(
        429,
        `All ${config.maxConcurrent} generation slots are busy (the server's --max-concurrent). Retry shortly.`,
        "rate_limit_error", null, "too_many_requests", { "retry-after": "1" },
      );
    }
    // A long generation sends nothing for a while (whole answers) or between tokens: the idle limit
    // is for silent clients, not for the server's own work.
    server.timeout(req, 0);
    const id = `cmpl-${crypto.randomUUID().replaceAll("-", "")}`;
    const base = { id, object: "text_completion", created: Math.floor(Date.now() / 1000), model: config.modelId };
    const seed = request.seed ?? Math.floor(Math.random() * (SEED_MAX + 1));
    const jobOf = (onText: (t: string) => void, onFinish: (r: FinishReason, n: number) => void, onError: (e: Error) => void) => ({
      promptIds: start.ids,
      maxTokens: request.maxTokens,
      ignoreEnd: request.ignoreEnd,
      sampling: { temperature: request.temperature, topK: request.topK, topP: request.topP, seed },
      stop: request.stop,
      onText, onFinish, onError,
    });
    const usage = (n: number) => ({ prompt_tokens: start.ids.length, completion_tokens: n, total_tokens: start.ids.length + n });
    const choice = (text: string, finish: FinishReason | null) => ({ text, index: 0, logprobs: null, finish_reason: finish });
    return request.stream ? streamed(req, request, jobOf, base, choice, usage) : whole(req, jobOf, base, choice, usage);
  }

  function whole(req: Request, jobOf: JobFactory, base: object, choice: ChoiceOf, usage: UsageOf): Promise<Response> {
    return new Promise<Response>((resolve) => {
      let text = "";
      const handle = scheduler.submit(
        jobOf(
          (t) => void (text += t),
          (reason, n) => resolve(json({ ...base, choices: [choice(text, reason)], usage: usage(n) })),
          (err) => resolve(serverError(err)),
        ),
      );
      onGone(req, () => {
        handle.cancel();
        resolve(new Response(null, { status: 499 })); // nobody will read it
      });
    });
  }

  function streamed(req: Request, request: CompletionRequest, jobOf: JobFactory, base: object, choice: ChoiceOf, usage: UsageOf): Response {
    const encoder = new TextEncoder();
    let handle: JobHandle | null = null;
    let open = true;
    const gone = () => {
      open = false;
      handle?.cancel();
    };
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        const send = (event: unknown) => {
          if (!open) return;
          try {
            controller.enqueue(encoder.encode(`data: ${typeof event === "string" ? event : JSON.stringify(event)}\n\n`));
          } catch {
            gone();
          }
        };
        const close = () => {
          if (!open) return;
          open = false;
          try {
            controller.close();
          } catch {
            // already closed by the client
          }
        };
        handle = scheduler.submit(
          jobOf(
            (t) => send({ ...base, choices: [choice(t, null)] }),
            (reason, n) => {
              send({ ...base, choices: [choice("", reason)] });
              if (request.includeUsage) send({ ...base, choices: [], usage: usage(n) });
              send("[DONE]");
              close();
            },
            (err) => {
              // The status line is gone already: the error travels as an event.
              console.error(err.stack ?? err.message);
              send(JSON.parse(errorBody(`Internal error: ${err.message}`, "server_error", null, null)));
              close();
            },
          ),
        );
      },
      cancel() {
        gone();
      },
    });
    onGone(req, gone);
    return new Response(stream, {
      headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", connection: "keep-alive" },
    });
  }

  async function fetch(req: Request, server: Server<undefined>): Promise<Response> {
    try {
      const foreign = foreignHost(req, config.host);
      if (foreign) throw new ApiError(403, foreign, "invalid_request_error", null, "forbidden_host");
      const url = new URL(req.url);
      const method = req.method === "HEAD" ? "GET" : req.method;
      const route = routes[url.pathname];
      if (!route) {
        const m = /^\/v1\/models\/(.+)$/.exec(url.pathname);
        if (m) {
          if (method !== "GET") throw notAllowed(req.method, url.pathname, ["GET"]);
          const wanted = decodedOrRaw(m[1]!);
          if (wanted !== config.modelId) {
            throw new ApiError(404, `The model '${wanted}' does not exist: this server serves '${config.modelId}'.`, "invalid_request_error", "model", "model_not_found");
          }
          return json(model);
        }
        throw new ApiError(
          404,
          `Unknown path: ${req.method} ${url.pathname}. This server answers GET /, GET /health, GET /v1/models and POST /v1/completions.`,
          "invalid_request_error", null, "unknown_url",
        );
      }
      const handler = route[method];
      if (!handler) throw notAllowed(req.method, url.pathname, Object.keys(route));
      return await handler(req, server);
    } catch (err) {
      if (err instanceof ApiError) return errorResponse(err);
      return serverError(err);
    }
  }

  let server: Server<undefined>;
  try {
    server = Bun.serve({
      hostname: config.host,
      port: config.port,
      idleTimeout: config.idleTimeout,
      // Our own check answers in OpenAI's format; Bun's cap is only the backstop above it.
      maxRequestBodySize: config.maxBodyBytes + 65536,
      development: false,
      // Bun turns SO_REUSEPORT on when development is off: a second server on the same port would start
      // and take half the connections instead of failing with "in use".
      reusePort: false,
      fetch,
      error: (err) => serverError(err),
    });
  } catch (err) {
    scheduler.close();
    throw err;
  }
  return {
    url: `http://${config.host.includes(":") ? `[${config.host}]` : config.host}:${server.port}`,
    port: server.port!,
    scheduler,
    stop: async () => {
      scheduler.close();
      await server.stop(true);
    },
  };
}

type JobFactory = (
  onText: (t: string) => void,
  onFinish: (r: FinishReason, n: number) => void,
  onError: (e: Error) => void,
) => Parameters<Scheduler["submit"]>[0];
type ChoiceOf = (text: string, finish: FinishReason | null) => object;
type UsageOf = (n: number) => object;

function limitsOf(l: ServeLimits) {
  return { max_body_bytes: l.maxBodyBytes, max_tokens: l.maxTokens, max_concurrent: l.maxConcurrent, idle_timeout_seconds: l.idleTimeout };
}

function notAllowed(method: string, path: string, allowed: string[]): ApiError {
  return new ApiError(405, `${method} is not allowed on ${path}: use ${allowed.join(" or ")}.`, "invalid_request_error", null, "method_not_allowed", {
    allow: allowed.join(", "),
  });
}

function serverError(err: unknown): Response {
  const e = err instanceof Error ? err : new Error(String(err));
  console.error(e.stack ?? e.message);
  return errorResponse(new ApiError(500, `Internal error: ${e.message}`, "server_error", null, null));
}

/** Run `f` once when the client disconnects before the answer is complete. */
function onGone(req: Request, f: () => void): void {
  if (req.signal.aborted) f();
  else req.signal.addEventListener("abort", f, { once: true });
}

/** A path segment decoded, or as sent when it is not valid percent-encoding. */
function decodedOrRaw(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

function tooLarge(limit: number): ApiError {
  return new ApiError(413, `The request body is larger than ${limit} bytes (the server's --max-body-bytes).`, "invalid_request_error", null, "request_too_large");
}

/** The body as JSON, within `limit` bytes, strictly UTF-8. */
async function readJson(req: Request, limit: number): Promise<unknown> {
  const declared = req.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) throw tooLarge(limit);
  const parts: Uint8Array[] = [];
  let size = 0;
  if (req.body) {
    try {
      const reader = req.body.getReader();
      for (;;) {
        const { value: part, done } = await reader.read();
        if (done) break;
        size += part.byteLength;
        if (size > limit) {
          void reader.cancel().catch(() => {});
          throw tooLarge(limit);
        }
        parts.push(part);
      }
    } catch (err) {
      if (err instanceof ApiError) throw err;
      // The client stopped sending (hung up, or went silent past the idle limit).
      throw badRequest(`The request body could not be read to its end (${err instanceof Error ? err.message : String(err)}).`);
    }
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    bytes.set(p, at);
    at += p.byteLength;
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw badRequest("The request body is not valid UTF-8.");
  }
  if (text.trim() === "") throw badRequest('The request body is empty: send a JSON object such as {"prompt": "Once upon a time", "max_tokens": 32}.');
  try {
    return JSON.parse(text);
  } catch (err) {
    throw badRequest(`The request body is not valid JSON (${err instanceof Error ? err.message : String(err)}).`);
  }
}
