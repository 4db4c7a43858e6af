/** The completions request schema and stop sequences, without a server. */
import { describe, expect, test } from "bun:test";
import { ApiError } from "../../src/serve/errors.ts";
import { parseCompletionRequest } from "../../src/serve/request.ts";
import { StopMatcher } from "../../src/serve/stop.ts";

const limits = { maxTokens: 100 };

function refusal(body: unknown): ApiError {
  try {
    parseCompletionRequest(body, limits);
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw err;
  }
  throw new Error(`accepted: ${JSON.stringify(body)}`);
}

describe("parseCompletionRequest", () => {
  test("OpenAI's defaults, and top_k off", () => {
    expect(parseCompletionRequest({}, limits)).toEqual({
      prompt: "", maxTokens: 16, temperature: 1, topP: 1, topK: 0, seed: null, stop: [], stream: false, ignoreEnd: false, includeUsage: false,
    });
  });

  test("every field read, a one-string prompt array and a stop string taken as a list; unknown fields ignored", () => {
    const r = parseCompletionRequest(
      { model: "x", user: "u", prompt: ["Hi"], max_tokens: 7, temperature: 0, top_p: 0.5, top_k: 3, seed: 4294967295, stop: "\n", stream: true, ignore_eos: true,
        stream_options: { include_usage: true }, n: 1, echo: false, logprobs: null,
        // other servers' knobs at the values that change nothing
        logit_bias: {}, repetition_penalty: 1, min_p: 0, min_tokens: 0, stop_token_ids: [], max_completion_tokens: null },
      limits,
    );
    expect(r).toEqual({ prompt: "Hi", maxTokens: 7, temperature: 0, topP: 0.5, topK: 3, seed: 4294967295, stop: ["\n"], stream: true, ignoreEnd: true, includeUsage: true });
    expect(parseCompletionRequest({ max_tokens: null, temperature: null, seed: null }, limits).maxTokens).toBe(16);
  });

  const bad: [string, unknown, string, RegExp][] = [
    ["an array body", [1, 2], "", /JSON object/],
    ["null body", null, "", /JSON object/],
    ["prompt a number", { prompt: 5 }, "prompt", /prompt must be a string/],
    ["prompt token ids", { prompt: [1, 2, 3] }, "prompt", /token arrays are not supported/],
    ["max_tokens over the limit", { max_tokens: 101 }, "max_tokens", /at most 100 on this server/],
    ["max_tokens negative", { max_tokens: -1 }, "max_tokens", /at least 0/],
    ["max_tokens fractional", { max_tokens: 1.5 }, "max_tokens", /whole number/],
    ["max_tokens a string", { max_tokens: "10" }, "max_tokens", /max_tokens must be a whole number/],
    ["max_tokens huge", { max_tokens: 1e308 }, "max_tokens", /at most 100/],
    ["temperature above 2", { temperature: 2.5 }, "temperature", /from 0 to 2/],
    ["temperature a bool", { temperature: true }, "temperature", /temperature must be/],
    ["top_p 0", { top_p: 0 }, "top_p", /\(0, 1\]/],
    ["top_k negative", { top_k: -3 }, "top_k", /at least 0/],
    ["seed negative", { seed: -1 }, "seed", /from 0 to 4294967295/],
    ["seed too large", { seed: 2 ** 32 }, "seed", /from 0 to 4294967295/],
    ["stop empty", { stop: "" }, "stop", /must not be empty/],
    ["stop five sequences", { stop: ["a", "b", "c", "d", "e"] }, "stop", /at most 4/],
    ["stop a number", { stop: 3 }, "stop", /string or an array/],
    ["stream a string", { stream: "yes" }, "stream", /true or false/],
    ["n = 2", { n: 2 }, "n", /n must be 1/],
    ["echo", { echo: true }, "echo", /not supported/],
    ["logprobs", { logprobs: 5 }, "logprobs", /not supported/],
    ["stream_options a string", { stream_options: "x" }, "stream_options", /must be an object/],
    ["prompt two strings", { prompt: ["a", "b"] }, "prompt", /exactly one string/],
    // Other servers' sampling knobs: refused rather than silently not applied.
    ["logit_bias", { logit_bias: { "101": 100 } }, "logit_bias", /logit_bias is not supported/],
    ["repetition_penalty", { repetition_penalty: 1.5 }, "repetition_penalty", /not supported \(only 1\)/],
    ["min_p", { min_p: 0.5 }, "min_p", /not supported \(only 0\)/],
    ["min_tokens", { min_tokens: 5 }, "min_tokens", /not supported/],
    ["typical_p", { typical_p: 0.9 }, "typical_p", /not supported/],
    ["mirostat", { mirostat: 2 }, "mirostat", /not supported/],
    ["stop_token_ids", { stop_token_ids: [7] }, "stop_token_ids", /use stop/],
    ["grammar", { grammar: "root ::= x" }, "grammar", /not supported/],
    ["response_format", { response_format: { type: "json_object" } }, "response_format", /not supported/],
    ["max_completion_tokens", { max_completion_tokens: 2 }, "max_completion_tokens", /use max_tokens/],
  ];
  for (const [label, body, param, message] of bad) {
    test(`400 naming the field: ${label}`, () => {
      const e = refusal(body);
      expect(e.status).toBe(400);
      expect(e.type).toBe("invalid_request_error");
      expect(e.param).toBe(param === "" ? null : param);
      expect(e.message).toMatch(message);
    });
  }
});

describe("StopMatcher", () => {
  const run = (stops: string[], pieces: string[]) => {
    const m = new StopMatcher(stops);
    let out = "";
    for (const p of pieces) {
      const r = m.push(p);
      out += r.text;
      if (r.stopped) return { out, stopped: true };
    }
    return { out: out + m.end(), stopped: false };
  };

  test("no stop sequences: text passes through at once", () => {
    const m = new StopMatcher([]);
    expect(m.push("abc")).toEqual({ text: "abc", stopped: false });
  });

  test("a stop sequence split over pieces ends the text before it, and none of it is shown", () => {
    const m = new StopMatcher(["END"]);
    expect(m.push("one E")).toEqual({ text: "one ", stopped: false });
    expect(m.push("N")).toEqual({ text: "", stopped: false });
    expect(m.push("Dtwo")).toEqual({ text: "", stopped: true });
  });

  test("held text that turns out not to be a stop sequence is released", () => {
    expect(run(["END"], ["a E", "NX b"])).toEqual({ out: "a ENX b", stopped: false });
    expect(run(["END"], ["a EN"])).toEqual({ out: "a EN", stopped: false });
  });

  test("the earliest of several stop sequences wins, including overlapping ones", () => {
    expect(run(["cd", "bcx", "\n\n"], ["ab", "cd"])).toEqual({ out: "ab", stopped: true });
    expect(run(["aab"], ["a", "a", "a", "b"])).toEqual({ out: "a", stopped: true });
    expect(run(["\n\n", "."], ["Hi", "\n", "\nthere."])).toEqual({ out: "Hi", stopped: true });
  });
});
