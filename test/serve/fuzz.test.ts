/** Fuzzing the HTTP surface on 127.0.0.1, bounded in count and time: random and mutated bodies, wrong
 * types, huge numbers, bad UTF-8, random methods and paths, raw sockets that send broken or partial
 * requests, trickle slowly, or hang up mid-answer. The server must answer each with a status below
 * 500 (OpenAI's error JSON for every refusal), free every slot, and keep serving. */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { Xoshiro128 } from "../../src/base/rng.ts";
import { type TinyServer, tinyServer, until } from "./helpers.ts";

const SEED = Number(process.env.TRAIN_VOCAB_FUZZ_SEED ?? 20261205);
const CASES = 400;
const TIME_LIMIT_MS = 15_000;

let s: TinyServer;
beforeAll(async () => {
  s = await tinyServer({ maxBodyBytes: 2048, maxTokens: 64, maxConcurrent: 8, idleTimeout: 1 });
});
afterAll(async () => {
  await s.close();
});

const rng = Xoshiro128.fromSeed(SEED);
const below = (n: number) => Math.floor(rng.nextFloat32() * n) % n;
const pick = <T>(xs: readonly T[]): T => xs[below(xs.length)]!;

const FIELDS = ["prompt", "max_tokens", "temperature", "top_p", "top_k", "seed", "stop", "stream", "n", "echo", "logprobs", "ignore_eos", "stream_options", "model", "logit_bias", "repetition_penalty", "min_p", "stop_token_ids", "max_completion_tokens"];
const ODD_VALUES: unknown[] = [
  null, true, false, 0, -0, 1, -1, 0.5, 1.5, 2, 2.0000001, 255, 65536, 2 ** 31, 2 ** 32, 2 ** 53 + 2, -(2 ** 53), 1e308, -1e308, 5e-324,
  "", "0", "1", "NaN", "Infinity", "\u0000", "\ud800", "a".repeat(300), [], [""], ["a", "b", "c", "d", "e"], [1], ["\n"], {}, { include_usage: "yes" },
  { include_usage: true }, [[["deep"]]],
];
const NUMBER_TEXT = ["1e400", "-1e400", "1e-400", "-0", "123456789012345678901234567890", "0.1e1", "00", "1.", ".5", "0x10", "NaN", "Infinity"];

function value(): unknown {
  return rng.nextFloat32() < 0.5 ? pick(ODD_VALUES) : { prompt: pick(["The", "", "ü", "🙂"]), max_tokens: below(8) }[pick(["prompt", "max_tokens"])];
}

/** One request body: bytes, and whether it is meant to be valid. */
function body(): Uint8Array<ArrayBuffer> {
  const enc = new TextEncoder();
  const kind = below(8);
  const base: Record<string, unknown> = { prompt: pick(["The cat", "", "a b c", "🙂 x"]), max_tokens: below(6), seed: below(100) };
  if (kind === 0) {
    // a valid request, sometimes streamed
    return enc.encode(JSON.stringify({ ...base, stream: rng.nextFloat32() < 0.5, temperature: below(3) / 2, stop: rng.nextFloat32() < 0.3 ? ["a"] : undefined }));
  }
  if (kind === 1) {
    // wrong types and odd values in random fields
    const b: Record<string, unknown> = { ...base };
    for (let i = below(4); i >= 0; i--) b[pick(FIELDS)] = value();
    return enc.encode(JSON.stringify(b));
  }
  if (kind === 2) {
    // numbers JSON.stringify cannot write: out of range, overlong, malformed
    return enc.encode(`{"prompt":"x","${pick(["max_tokens", "temperature", "top_p", "top_k", "seed"])}":${pick(NUMBER_TEXT)}}`);
  }
  if (kind === 3) {
    // random bytes
    const n = below(300);
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = below(256);
    return out;
  }
  if (kind === 4) {
    // valid JSON cut, or with bytes flipped
    const text = enc.encode(JSON.stringify({ ...base, stop: "x" }));
    if (rng.nextFloat32() < 0.5) return text.slice(0, below(text.length));
    const out = text.slice();
    for (let i = below(3); i >= 0; i--) out[below(out.length)] = below(256);
    return out;
  }
  if (kind === 5) {
    // bad UTF-8 inside a string
    const pre = enc.encode('{"prompt":"');
    const bad = pick([[0xff], [0xc3], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xe2, 0x82]]);
    return new Uint8Array([...pre, ...bad, ...enc.encode('","max_tokens":1}')]);
  }
  if (kind === 6) {
    // not an object, or oversized
    return enc.encode(pick(['"text"', "[]", "null", "42", "true", JSON.stringify({ prompt: "x".repeat(2100) }), " ", "{}"]));
  }
  // deep nesting
  const depth = 1 + below(2000);
  return enc.encode("[".repeat(depth) + "]".repeat(depth));
}

async function expectServed(res: Response): Promise<void> {
  expect(res.status).toBeLessThan(500);
  const text = await res.text();
  if (res.status >= 400) {
    const e = JSON.parse(text) as { error: { message: string; type: string } };
    expect(typeof e.error.message).toBe("string");
    expect(e.error.message.length).toBeGreaterThan(0);
    expect(typeof e.error.type).toBe("string");
  } else if (res.headers.get("content-type")?.startsWith("text/event-stream")) {
    expect(text.trimEnd().endsWith("data: [DONE]")).toBe(true);
  }
}

/** A raw socket: sends `parts` with `gapMs` between them, then reads until the server closes or
 * `waitMs` passes, then hangs up. Returns what came back. */
async function raw(parts: (string | Uint8Array)[], gapMs: number, waitMs: number): Promise<string> {
  let received = "";
  let closed = false;
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port: s.port,
    socket: {
      data(_, chunk) { received += new TextDecoder().decode(chunk); },
      close() { closed = true; },
      error() { closed = true; },
    },
  });
  for (const p of parts) {
    if (closed) break;
    socket.write(p);
    if (gapMs > 0) await Bun.sleep(gapMs);
  }
  const end = Date.now() + waitMs;
  while (!closed && Date.now() < end) await Bun.sleep(10);
  socket.end();
  return received;
}

const statusOf = (reply: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(reply)?.[1] ?? 0);

test(`${CASES} random requests (seed ${SEED}) get answers below 500, in error JSON when refused`, async () => {
  const started = Date.now();
  const methods = ["POST", "GET", "PUT", "PATCH", "DELETE", "OPTIONS"];
  const paths = ["/v1/completions", "/v1/completions", "/v1/completions", "/v1/models", "/health", "/", "/v1/models/tiny", "/v1/models/%ff", "/v1/%2e%2e/x", "/" + "a".repeat(3000)];
  let done = 0;
  const statuses = new Map<number, number>();
  while (done < CASES && Date.now() - started < TIME_LIMIT_MS) {
    const batch = Array.from({ length: 8 }, async () => {
      // Mostly the completions endpoint, where bodies are read; the rest anywhere.
      const [method, path] = rng.nextFloat32() < 0.75 ? ["POST", "/v1/completions"] : [pick(methods), pick(paths)];
      const init: RequestInit = { method, headers: { "content-type": pick(["application/json", "text/plain", "application/x-www-form-urlencoded"]) } };
      if (method !== "GET" && method !== "OPTIONS") init.body = body();
      const res = await fetch(`${s.url}${path}`, init);
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      await expectServed(res);
    });
    await Promise.all(batch);
    done += 8;
  }
  expect(done).toBeGreaterThanOrEqual(Math.min(CASES, 80));
  // The mix reached the model and every kind of refusal.
  expect(statuses.get(200) ?? 0).toBeGreaterThan(done / 20);
  expect(statuses.get(400) ?? 0).toBeGreaterThan(done / 4);
  for (const status of [404, 405, 413]) expect(statuses.get(status) ?? 0).toBeGreaterThan(0);
  for (const status of statuses.keys()) expect([200, 400, 404, 405, 413]).toContain(status);
}, 60_000);

test("raw sockets: broken request lines, lying lengths, trickling and vanishing clients", async () => {
  const port = s.port;
  const host = `Host: 127.0.0.1:${port}\r\n`;
  const req = (body: string, extra = "") => `POST /v1/completions HTTP/1.1\r\n${host}Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;
  const okBody = JSON.stringify({ prompt: "The", max_tokens: 3, seed: 1 });

  // Slow clients, started first and checked at the end since the server takes seconds to drop them:
  // a body shorter than its declared length then silence (closed by the idle limit, 1 s here, which
  // Bun checks every few seconds), and headers that never end (closed by Bun's HTTP layer, ~10 s).
  const timed = async (parts: string[]) => {
    const t0 = Date.now();
    const reply = await raw(parts, 0, 20_000);
    return { ms: Date.now() - t0, reply };
  };
  const silentBody = timed([`POST /v1/completions HTTP/1.1\r\n${host}Content-Length: 100\r\n\r\n{"prompt":`]);
  const endlessHeaders = timed([`POST /v1/completions HTTP/1.1\r\n${host}X-Slow: `]);

  // A complete request sent one byte every few milliseconds is still answered.
  const slow = await raw([...req(okBody)].map((c) => c), 2, 3000);
  expect(statusOf(slow)).toBe(200);

  // Garbage request lines and headers: Bun's HTTP layer refuses them before our code sees them (505
  // is HTTP's own answer to a version it does not speak, not a fault).
  const junk: [string, number][] = [
    ["GARBAGE\r\n\r\n", 400],
    ["\u0000\u0001\u0002\r\n\r\n", 400],
    [`POST /v1/completions HTTP/1.1\r\n${host}Content-Length: -5\r\n\r\n`, 400],
    [`POST /v1/completions HTTP/1.1\r\n${host}Content-Length: 5\r\nContent-Length: 7\r\n\r\n{}`, 400],
    ["POST /v1/completions HTTP/9.9\r\n\r\n", 505],
  ];
  for (const [request, status] of junk) expect(statusOf(await raw([request], 0, 1000))).toBe(status);

  // A declared length over the limit is refused before the body is read.
  const huge = await raw([`POST /v1/completions HTTP/1.1\r\n${host}Content-Length: 99999999\r\n\r\n{`], 0, 1500);
  expect(statusOf(huge)).toBe(413);

  // Clients that hang up mid-stream and mid-answer: their slots come back.
  for (let i = 0; i < 6; i++) {
    const stream = i % 2 === 0;
    await raw([req(JSON.stringify({ prompt: "The", max_tokens: 64, ignore_eos: true, stream }))], 0, stream ? 30 : 5);
  }
  expect(await until(async () => s.scheduler.load === 0)).toBe(true);

  const [body, headers] = await Promise.all([silentBody, endlessHeaders]);
  expect(body.ms).toBeLessThan(10_000);
  expect(statusOf(body.reply) === 0 || statusOf(body.reply) < 500).toBe(true);
  expect(headers.ms).toBeLessThan(19_000);
  expect(headers.reply).toBe("");

  // And the server still works.
  const after = await raw([req(okBody, "Connection: close\r\n")], 0, 3000);
  expect(statusOf(after)).toBe(200);
  const health = await (await fetch(`${s.url}/health`)).json();
  expect(health).toMatchObject({ status: "ok", active: 0, waiting: 0 });
}, 60_000);
