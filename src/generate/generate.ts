/**
 * The generation loop: encode the prompt (cut from the left to fit the context), prefill it, then
 * sample one token at a time, feeding each back through the KV cache, until end-of-text or the limit.
 * When prompt + output outgrow the context, the cache is rebuilt from the most recent half of the
 * context (positions are baked into the cache: learned ones into every row, rotary ones into the
 * keys), so long outputs cost one prefill per half-context of tokens rather than one per token.
 */
import { UserError } from "../base/errors.ts";
import { count, int } from "../base/format.ts";
import type { Tokenizer } from "../tokenizer/index.ts";
import type { InferenceEngine } from "./engine.ts";
import { Sampler, type SamplerOptions } from "./sampler.ts";
import { TextStream } from "./stream.ts";

export interface GenerateOptions extends SamplerOptions {
  maxTokens: number;
  /** Keep going past end-of-text (default: stop there). */
  ignoreEnd?: boolean;
  /** Called with each piece of text as soon as it is known. */
  onText?: (text: string) => void;
  /** Called once with the prompt ids the model will see (after any cut), before the first forward. */
  onPrompt?: (ids: number[], cut: boolean) => void;
  /** One-line notices for the user (prompt cut, context slid). */
  onNotice?: (message: string) => void;
  /** Keep a copy of the logits every token was sampled from (reference checks). */
  recordLogits?: boolean;
}

export interface GenerateResult {
  /** The prompt as the model saw it (after any cut). */
  promptIds: number[];
  generated: number[];
  stop: "end-of-text" | "max-tokens";
  prefillSeconds: number;
  /** Time from the first sample to the last token: sampling, streaming and the per-token forwards. */
  decodeSeconds: number;
  /** Logits before each generated token while the context never slid: logits[i] predicts generated[i]. */
  logits: Float32Array[];
}

/**
 * The ids a prompt starts generation from: its tokens, the last `context` of them when it is longer
 * (`cut`), or end-of-text alone for an empty prompt; null when it is empty and the vocabulary has no
 * end-of-text token. `total` is the prompt's length before the cut.
 */
export function promptTokens(tok: Tokenizer, prompt: string, context: number): { ids: number[]; cut: boolean; total: number } | null {
  let ids = Array.from(tok.encode(prompt));
  if (ids.length === 0) {
    if (tok.endOfTextId === null) return null;
    ids = [tok.endOfTextId]; // GPT-2's convention for unconditional samples
  }
  const total = ids.length;
  const cut = total > context;
  if (cut) ids = ids.slice(total - context);
  return { ids, cut, total };
}

/** When the context is full: the cache is rebuilt from this many of the most recent tokens. */
export function slideKeep(context: number): number {
  return Math.ceil(context / 2);
}

export function generate(engine: InferenceEngine, tok: Tokenizer, prompt: string, opts: GenerateOptions): GenerateResult {
  const notice = opts.onNotice ?? (() => {});
  const context = engine.contextSize;
  const start = promptTokens(tok, prompt, context);
  if (start === null) throw new UserError("The prompt is empty and this vocabulary has no end-of-text token to start from. Give --prompt some text.");
  const { ids, cut } = start;
  if (cut) notice(`The prompt is ${count(start.total, "token")}; the model's context holds ${int(context)}: using the last ${int(context)}.`);
  opts.onPrompt?.(ids, cut);
  const sampler = new Sampler(opts);
  const stream = new TextStream(tok, ids[ids.length - 1]!);
  const emit = opts.onText ?? (() => {});
  const record = opts.recordLogits === true;
  const vocab = Math.min(tok.vocabSize, engine.arch.vocab_size);

  const t0 = performance.now();
  let logits = engine.prefill(ids);
  const t1 = performance.now();
  const result: GenerateResult = { promptIds: ids, generated: [], stop: "max-tokens", prefillSeconds: (t1 - t0) / 1000, decodeSeconds: 0, logits: [] };
  let slid = false;
  const recent = ids.slice(); // the context, for rebuilding the cache when it is full
  for (let i = 0; i < opts.maxTokens; i++) {
    if (record && !slid) result.logits.push(logits.slice(0, engine.arch.vocab_size));
    const id = sampler.sample(logits, vocab);
    if (id === tok.endOfTextId && opts.ignoreEnd !== true) {
      result.stop = "end-of-text";
      break;
    }
    result.generated.push(id);
    recent.push(id);
    const text = stream.push(id);
    if (text) emit(text);
    if (i + 1 === opts.maxTokens) break; // the last token's successor is never needed
    if (engine.length < context) {
      logits = engine.step(id);
      continue;
    }
    const keep = slideKeep(context);
    if (!slid) notice(`\n[context of ${count(context, "token")} full: continuing from the last ${int(keep)}]`);
    slid = true;
    recent.splice(0, recent.length - keep);
    logits = engine.prefill(recent);
  }
  const tail = stream.end();
  if (tail) emit(tail);
  result.decodeSeconds = (performance.now() - t1) / 1000;
  return result;
}
