/**
 * The body of POST /v1/completions, checked with one zod schema: OpenAI's fields and defaults
 * (prompt, max_tokens 16, temperature 1, top_p 1, seed, stop, stream) plus top_k from llama.cpp's
 * server (0 = off) and ignore_eos from llama.cpp's and vLLM's (keep going past end-of-text, as
 * `generate --ignore-end`). Fields other clients send that change nothing here (model, user, ...) are
 * accepted and ignored; fields that would change the answer and are not supported (n > 1, echo,
 * logprobs, best_of, suffix, penalties other than 0, and other servers' knobs: logit_bias,
 * repetition_penalty, min_p, min_tokens, typical_p, mirostat, stop_token_ids, grammar,
 * response_format, max_completion_tokens) are refused by name rather than ignored.
 */
import { z } from "zod";
import { badRequest } from "./errors.ts";

export interface CompletionRequest {
  prompt: string;
  maxTokens: number;
  temperature: number;
  topP: number;
  topK: number;
  /** null: the server draws one. */
  seed: number | null;
  stop: string[];
  stream: boolean;
  ignoreEnd: boolean;
  /** stream_options.include_usage: a last chunk with the token counts before [DONE]. */
  includeUsage: boolean;
}

export interface RequestLimits {
  /** Largest max_tokens accepted (--max-tokens-limit). */
  maxTokens: number;
}

export const MAX_STOP_SEQUENCES = 4;
export const MAX_STOP_LENGTH = 256;
export const SEED_MAX = 0xffffffff;

const finite = (name: string, what: string) =>
  z.number({ invalid_type_error: `${name} must be ${what}`, required_error: `${name} is required` }).finite(`${name} must be a finite number`);

/** A field accepted only at the value that changes nothing. */
const neutral = (name: string, value: number) =>
  z.literal(value, { errorMap: () => ({ message: `${name} is not supported (only ${value})` }) }).nullish();

function schema(limits: RequestLimits) {
  const stopText = z
    .string({ invalid_type_error: "stop must be a string or an array of strings" })
    .min(1, "stop sequences must not be empty")
    .max(MAX_STOP_LENGTH, `stop sequences are at most ${MAX_STOP_LENGTH} characters`);
  return z
    .object({
      prompt: z
        .union([z.string(), z.array(z.string()).length(1, "prompt as an array takes exactly one string: one completion per request")], {
          errorMap: () => ({ message: "prompt must be a string (or an array of exactly one string; token arrays are not supported)" }),
        })
        .optional(),
      max_tokens: finite("max_tokens", "a whole number")
        .int("max_tokens must be a whole number")
        .min(0, "max_tokens must be at least 0")
        .max(limits.maxTokens, `max_tokens is at most ${limits.maxTokens} on this server (its --max-tokens-limit)`)
        .nullish(),
      temperature: finite("temperature", "a number from 0 to 2").min(0, "temperature must be from 0 to 2 (0 = greedy)").max(2, "temperature must be from 0 to 2 (0 = greedy)").nullish(),
      top_p: finite("top_p", "a number in (0, 1]").gt(0, "top_p must be in (0, 1] (1 = off)").max(1, "top_p must be in (0, 1] (1 = off)").nullish(),
      top_k: finite("top_k", "a whole number").int("top_k must be a whole number").min(0, "top_k must be at least 0 (0 = off)").max(1 << 24, "top_k is too large").nullish(),
      seed: finite("seed", "a whole number").int("seed must be a whole number").min(0, `seed must be from 0 to ${SEED_MAX}`).max(SEED_MAX, `seed must be from 0 to ${SEED_MAX}`).nullish(),
      stop: z
        .union([stopText, z.array(stopText).max(MAX_STOP_SEQUENCES, `stop takes at most ${MAX_STOP_SEQUENCES} sequences`)], {
          errorMap: (issue, ctx) => ({
            message: issue.code === "invalid_union" ? `stop must be a string or an array of at most ${MAX_STOP_SEQUENCES} strings` : ctx.defaultError,
          }),
        })
        .nullish(),
      stream: z.boolean({ invalid_type_error: "stream must be true or false" }).nullish(),
      ignore_eos: z.boolean({ invalid_type_error: "ignore_eos must be true or false" }).nullish(),
      stream_options: z
        .object({ include_usage: z.boolean({ invalid_type_error: "stream_options.include_usage must be true or false" }).nullish() }, {
          invalid_type_error: "stream_options must be an object",
        })
        .passthrough()
        .nullish(),
      n: z.literal(1, { errorMap: () => ({ message: "n must be 1: one completion per request" }) }).nullish(),
      best_of: z.literal(1, { errorMap: () => ({ message: "best_of must be 1" }) }).nullish(),
      echo: z.literal(false, { errorMap: () => ({ message: "echo is not supported" }) }).nullish(),
      logprobs: z.null({ errorMap: () => ({ message: "logprobs is not supported" }) }).optional(),
      suffix: z.null({ errorMap: () => ({ message: "suffix is not supported" }) }).optional(),
      presence_penalty: z.literal(0, { errorMap: () => ({ message: "presence_penalty is not supported (only 0)" }) }).nullish(),
      frequency_penalty: z.literal(0, { errorMap: () => ({ message: "frequency_penalty is not supported (only 0)" }) }).nullish(),
      // Other servers' sampling fields: refused unless they ask for what is done anyway.
      logit_bias: z.object({}, { errorMap: () => ({ message: "logit_bias is not supported (only {})" }) }).strict("logit_bias is not supported (only {})").nullish(),
      max_completion_tokens: z.undefined({ errorMap: () => ({ message: "max_completion_tokens is not supported here: use max_tokens" }) }).or(z.null()),
      repetition_penalty: neutral("repetition_penalty", 1),
      min_p: neutral("min_p", 0),
      min_tokens: neutral("min_tokens", 0),
      typical_p: neutral("typical_p", 1),
      mirostat: neutral("mirostat", 0),
      stop_token_ids: z.array(z.never(), { errorMap: () => ({ message: "stop_token_ids is not supported (use stop)" }) }).max(0, "stop_token_ids is not supported (use stop)").nullish(),
      grammar: z.undefined({ errorMap: () => ({ message: "grammar is not supported" }) }).or(z.null()),
      response_format: z.undefined({ errorMap: () => ({ message: "response_format is not supported" }) }).or(z.null()),
    })
    .passthrough();
}

/** The checked request, or an ApiError (400) naming the first bad field. */
export function parseCompletionRequest(body: unknown, limits: RequestLimits): CompletionRequest {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw badRequest("The request body must be a JSON object.");
  const result = schema(limits).safeParse(body);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const param = issue.path.length > 0 ? String(issue.path[0]) : null;
    const message = issue.message.startsWith(param ?? "\u0000") ? issue.message : `${param ?? "body"}: ${issue.message}`;
    throw badRequest(message, param, "invalid_value");
  }
  const r = result.data;
  const stop = r.stop == null ? [] : typeof r.stop === "string" ? [r.stop] : r.stop;
  return {
    prompt: r.prompt == null ? "" : typeof r.prompt === "string" ? r.prompt : r.prompt[0]!,
    maxTokens: r.max_tokens ?? Math.min(16, limits.maxTokens),
    temperature: r.temperature ?? 1,
    topP: r.top_p ?? 1,
    topK: r.top_k ?? 0,
    seed: r.seed ?? null,
    stop,
    stream: r.stream ?? false,
    ignoreEnd: r.ignore_eos ?? false,
    includeUsage: r.stream_options?.include_usage ?? false,
  };
}
