/** The HTTP API end to end on 127.0.0.1: answers equal `generate`'s, streaming, stop sequences,
 * limits, every error status, and a client that leaves. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { events, post, type TinyServer, tinyServer, until } from "./helpers.ts";

let s: TinyServer;
beforeAll(async () => {
  s = await tinyServer({ maxBodyBytes: 4096, maxTokens: 200 });
});
afterAll(async () => {
  await s.close();
});

const completion = (body: object | string) => post(`${s.url}/v1/completions`, body);

interface Answer {
  object: string;
  model: string;
  choices: { text: string; index: number; logprobs: null; finish_reason: string }[];
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

describe("POST /v1/completions", () => {
  test("four concurrent requests: each answer is what `generate` writes for the same prompt, seed and settings", async () => {
    const before = s.scheduler.stats();
    const asks = [
      { prompt: "The cat sat on the mat.", max_tokens: 30, temperature: 0.8, top_k: 40, top_p: 0.95, seed: 1 },
      { prompt: "A bird sang", max_tokens: 45, temperature: 1, top_k: 0, top_p: 1, seed: 2, ignore_eos: true }, // slides past the 24-token context
      { prompt: "Über den Wolken", max_tokens: 25, temperature: 0, top_k: 0, top_p: 1, seed: 3 },
      { prompt: "", max_tokens: 20, temperature: 1.3, top_k: 5, top_p: 0.7, seed: 4 },
    ];
    const answers = (await Promise.all(asks.map(async (a) => {
      const res = await completion(a);
      expect(res.status).toBe(200);
      return (await res.json()) as Answer;
    })));
    asks.forEach((a, i) => {
      const ref = s.reference(a.prompt, { maxTokens: a.max_tokens, temperature: a.temperature, topK: a.top_k, topP: a.top_p, seed: a.seed, ignoreEnd: a.ignore_eos });
      const got = answers[i]!;
      expect(got.object).toBe("text_completion");
      expect(got.model).toBe("tiny");
      expect(got.choices[0]!.text).toBe(ref.text);
      expect(got.usage.completion_tokens).toBe(ref.tokens);
      expect(got.choices[0]!.finish_reason).toBe(ref.stop === "end-of-text" ? "stop" : "length");
      expect(got.usage.total_tokens).toBe(got.usage.prompt_tokens + got.usage.completion_tokens);
    });
    expect(answers[1]!.usage.completion_tokens).toBe(45);
    // Whether they overlapped depends on when the server read them; scheduler.test.ts batches for sure.
    expect(s.scheduler.stats().generatedTokens).toBeGreaterThan(before.generatedTokens);
  });

  test("a streamed answer is the whole answer in pieces, then finish_reason, usage and [DONE]", async () => {
    const ask = { prompt: "The dog", max_tokens: 40, seed: 9, ignore_eos: true };
    const whole = (await (await completion(ask)).json()) as Answer;
    const res = await completion({ ...ask, stream: true, stream_options: { include_usage: true } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toStartWith("text/event-stream");
    const data = await events(res);
    expect(data.at(-1)).toBe("[DONE]");
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
    const usage = chunks.pop();
    expect(usage.choices).toEqual([]);
    expect(usage.usage).toEqual(whole.usage);
    const last = chunks.pop();
    expect(last.choices[0].finish_reason).toBe("length");
    expect(chunks.length).toBeGreaterThan(1);
    for (const c of chunks) {
      expect(c.object).toBe("text_completion");
      expect(c.id).toBe(last.id);
      expect(c.choices[0].finish_reason).toBeNull();
    }
    expect(chunks.map((c) => c.choices[0].text).join("")).toBe(whole.choices[0]!.text);
  });

  test("a stop sequence ends the answer just before it, streamed or not", async () => {
    const ask = { prompt: "The cat", max_tokens: 60, seed: 5, ignore_eos: true };
    const full = ((await (await completion(ask)).json()) as Answer).choices[0]!.text;
    expect(full.length).toBeGreaterThan(12);
    const stop = full.slice(8, 11);
    const expected = full.slice(0, full.indexOf(stop));
    const cut = (await (await completion({ ...ask, stop: [stop, "\u0001never"] })).json()) as Answer;
    expect(cut.choices[0]!.text).toBe(expected);
    expect(cut.choices[0]!.finish_reason).toBe("stop");
    const data = await events(await completion({ ...ask, stop, stream: true }));
    const text = data.slice(0, -1).map((d) => JSON.parse(d).choices[0].text).join("");
    expect(text).toBe(expected);
  });

  test("max_tokens 0 answers at once with no text", async () => {
    const a = (await (await completion({ prompt: "The", max_tokens: 0 })).json()) as Answer;
    expect(a.choices[0]!.text).toBe("");
    expect(a.choices[0]!.finish_reason).toBe("length");
    expect(a.usage.completion_tokens).toBe(0);
  });
});

describe("other routes", () => {
  test("requests addressed to localhost, 127.0.0.1 or [::1] are answered", async () => {
    const port = new URL(s.url).port;
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, "LOCALHOST", "127.0.0.2"]) {
      expect({ host, status: (await fetch(`${s.url}/v1/models`, { headers: { host } })).status }).toEqual({ host, status: 200 });
    }
  });

  test("GET /v1/models, /v1/models/{id}, /health and the playground", async () => {
    const list = await (await fetch(`${s.url}/v1/models`)).json();
    expect(list).toMatchObject({ object: "list", data: [{ id: "tiny", object: "model", owned_by: "train-vocab" }] });
    expect(await (await fetch(`${s.url}/v1/models/tiny`)).json()).toMatchObject({ id: "tiny" });
    const health = await (await fetch(`${s.url}/health`)).json();
    expect(health).toMatchObject({ status: "ok", model: "tiny", slots: 32, limits: { max_body_bytes: 4096, max_tokens: 200, max_concurrent: 32 } });
    const page = await fetch(`${s.url}/`);
    expect(page.headers.get("content-type")).toStartWith("text/html");
    const html = await page.text();
    expect(html).toContain("train-vocab playground");
    expect(html).toContain('id="generate"');
  });
});

describe("errors: OpenAI's error JSON with the right status", () => {
  const big = "x".repeat(5000);
  const cases: [string, () => Promise<Response>, number, string | null, RegExp][] = [
    ["unknown path", () => fetch(`${s.url}/v1/chat/completions`, { method: "POST", body: "{}" }), 404, "unknown_url", /Unknown path: POST \/v1\/chat\/completions/],
    ["unknown model", () => fetch(`${s.url}/v1/models/gpt-4`), 404, "model_not_found", /'gpt-4' does not exist/],
    ["GET on completions", () => fetch(`${s.url}/v1/completions`), 405, "method_not_allowed", /GET is not allowed on \/v1\/completions: use POST/],
    ["DELETE on /health", () => fetch(`${s.url}/health`, { method: "DELETE" }), 405, "method_not_allowed", /use GET/],
    ["body over the limit (declared length)", () => completion({ prompt: big }), 413, "request_too_large", /larger than 4096 bytes/],
    [
      "body over the limit (chunked, no length)",
      () => {
        const bytes = new TextEncoder().encode(JSON.stringify({ prompt: big }));
        const body = new ReadableStream({ start(c) { for (let i = 0; i < bytes.length; i += 1000) c.enqueue(bytes.subarray(i, i + 1000)); c.close(); } });
        return fetch(`${s.url}/v1/completions`, { method: "POST", body });
      },
      413, "request_too_large", /larger than 4096 bytes/,
    ],
    ["not JSON", () => completion("{prompt: 'x'"), 400, null, /not valid JSON/],
    ["empty body", () => completion(""), 400, null, /body is empty/],
    ["bad UTF-8", () => fetch(`${s.url}/v1/completions`, { method: "POST", body: new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]) }), 400, null, /not valid UTF-8/],
    ["a wrong field", () => completion({ prompt: "x", temperature: "hot" }), 400, "invalid_value", /temperature must be/],
    ["max_tokens over the server's limit", () => completion({ prompt: "x", max_tokens: 201 }), 400, "invalid_value", /at most 200 on this server/],
    // DNS rebinding: a page of another site that points its name at 127.0.0.1 still sends that name.
    ["a request addressed to another name", () => fetch(`${s.url}/v1/models`, { headers: { host: "evil.example" } }), 403, "forbidden_host", /not to "evil\.example"/],
    ["a request addressed to another name with a port", () => fetch(`${s.url}/health`, { headers: { host: "attacker.test:8080" } }), 403, "forbidden_host", /--host/],
  ];
  for (const [label, send, status, code, message] of cases) {
    test(`${status}: ${label}`, async () => {
      const res = await send();
      expect(res.status).toBe(status);
      expect(res.headers.get("content-type")).toBe("application/json");
      const body = (await res.json()) as { error: Record<string, unknown> };
      expect(Object.keys(body.error).sort()).toEqual(["code", "message", "param", "type"]);
      expect(body.error.type).toBe("invalid_request_error");
      expect(body.error.code).toBe(code);
      expect(String(body.error.message)).toMatch(message);
      if (status === 405) expect(res.headers.get("allow")).toBeTruthy();
    });
  }
});

describe("limits and clients that leave", () => {
  let one: TinyServer;
  beforeAll(async () => {
    one = await tinyServer({ maxConcurrent: 1, maxTokens: 1 << 20 });
  });
  afterAll(async () => {
    await one.close();
  });
  const health = async () => (await (await fetch(`${one.url}/health`)).json()) as { active: number; waiting: number; generatedTokens: number };
  const endless = { prompt: "The", max_tokens: 1 << 20, ignore_eos: true };

  test("a stream whose client disconnects stops generating; while it ran, the one slot was taken (429)", async () => {
    const abort = new AbortController();
    const res = await post(`${one.url}/v1/completions`, { ...endless, stream: true }, { signal: abort.signal });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    await reader.read(); // generation is under way

    const busy = await post(`${one.url}/v1/completions`, { prompt: "x", max_tokens: 1 });
    expect(busy.status).toBe(429);
    expect(busy.headers.get("retry-after")).toBe("1");
    expect(((await busy.json()) as { error: { type: string } }).error.type).toBe("rate_limit_error");

    abort.abort();
    expect(await until(async () => (await health()).active === 0)).toBe(true);
    const stopped = (await health()).generatedTokens;
    await Bun.sleep(100);
    expect((await health()).generatedTokens).toBe(stopped);
    expect(stopped).toBeLessThan(1 << 20);
    // The slot is free again.
    expect((await post(`${one.url}/v1/completions`, { prompt: "x", max_tokens: 2 })).status).toBe(200);
  });

  test("a whole-answer request whose client disconnects stops generating too", async () => {
    const abort = new AbortController();
    const pending = post(`${one.url}/v1/completions`, endless, { signal: abort.signal }).catch((e: Error) => e);
    expect(await until(async () => (await health()).active === 1)).toBe(true);
    abort.abort();
    expect(await pending).toBeInstanceOf(Error);
    expect(await until(async () => (await health()).active === 0)).toBe(true);
  });
});
