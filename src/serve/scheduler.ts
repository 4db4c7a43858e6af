/**
 * Continuous batching: every accepted request is a sequence with its own KV cache, sampler and text
 * stream. Each turn of the loop (1) starts the sequences that arrived: the prompt is prefilled on
 * the batch-1 engine, its cache copied into the sequence's own, and its first token sampled; then
 * (2) runs one decode step for every running sequence together (BatchDecoder: one pass over the
 * weights) and samples each one's next token; then, after a turn that started a sequence or when
 * a couple of milliseconds have passed since the last time, yields to the event loop, so that
 * requests are read and streamed while generation goes on (yielding after every step would cost a
 * small model a large share of its step). A sequence leaves the batch when it ends, or at the
 * next turn when its client has gone; its cache is kept for the next request.
 *
 * Per sequence the rules are generate.ts's: the same sampler and seed, stop at end-of-text or
 * max_tokens, the context rebuilt from its most recent half when full. So a request gives the tokens
 * `train_vocab generate` gives for the same prompt, seed and settings (exactly while at most four
 * sequences decode together; see batch.ts for more).
 */
import { BatchDecoder, KvCache } from "../generate/batch.ts";
import type { InferenceEngine } from "../generate/engine.ts";
import { slideKeep } from "../generate/generate.ts";
import { Sampler, type SamplerOptions, SamplerScratch } from "../generate/sampler.ts";
import { TextStream } from "../generate/stream.ts";
import type { Tokenizer } from "../tokenizer/index.ts";
import { StopMatcher } from "./stop.ts";

export type FinishReason = "stop" | "length";

export interface Job {
  /** The prompt's ids as the model sees them (1..context of them). */
  promptIds: number[];
  maxTokens: number;
  /** Keep going past end-of-text (as `generate --ignore-end`). */
  ignoreEnd: boolean;
  sampling: SamplerOptions;
  stop: readonly string[];
  /** Each piece of text as soon as it is final. */
  onText: (text: string) => void;
  onFinish: (reason: FinishReason, completionTokens: number) => void;
  /** A fault of the server (never of the request): the sequence is dropped. */
  onError: (err: Error) => void;
}

export interface JobHandle {
  /** The client went away: stop generating and free the slot. Safe to call at any time. */
  cancel(): void;
}

class Sequence {
  cache: KvCache | null = null;
  recent: number[];
  generated = 0;
  /** The token the next decode step feeds. */
  next = -1;
  cancelled = false;
  done = false;
  readonly sampler: Sampler;
  readonly stream: TextStream;
  readonly stopper: StopMatcher;

  constructor(readonly job: Job, tok: Tokenizer, scratch: SamplerScratch) {
    this.recent = job.promptIds.slice();
    this.sampler = new Sampler(job.sampling, scratch);
    this.stream = new TextStream(tok, job.promptIds[job.promptIds.length - 1]!);
    this.stopper = new StopMatcher(job.stop);
  }
}

export interface SchedulerStats {
  active: number;
  waiting: number;
  slots: number;
  /** Decode steps run, and the rows they held in total (rows ÷ steps = the mean batch). */
  steps: number;
  rows: number;
  generatedTokens: number;
}

const YIELD_EVERY_MS = 2;
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

export class Scheduler {
  private waiting: Sequence[] = [];
  private active: Sequence[] = [];
  private readonly spare: KvCache[] = [];
  /** Sampling runs one sequence at a time: one set of work buffers for all. */
  private readonly samplerScratch = new SamplerScratch();
  private running = false;
  private readonly decoder: BatchDecoder;
  private readonly tokens: Int32Array;
  /** The running sequences' caches, in batch order (refilled each step, not reallocated). */
  private readonly caches: KvCache[] = [];
  private readonly vocab: number;
  private steps = 0;
  private rows = 0;
  private generatedTokens = 0;
  private lastYield = 0;

  constructor(private readonly engine: InferenceEngine, private readonly tok: Tokenizer, readonly slots: number) {
    this.decoder = new BatchDecoder(engine.arch, engine.weights, slots);
    this.tokens = new Int32Array(slots);
    this.vocab = Math.min(tok.vocabSize, engine.arch.vocab_size);
  }

  /** Sequences accepted and not yet finished. */
  get load(): number {
    return this.waiting.length + this.active.length;
  }

  stats(): SchedulerStats {
    return {
      active: this.active.length, waiting: this.waiting.length, slots: this.slots,
      steps: this.steps, rows: this.rows, generatedTokens: this.generatedTokens,
    };
  }

  submit(job: Job): JobHandle {
    const s = new Sequence(job, this.tok, this.samplerScratch);
    if (job.maxTokens === 0) {
      s.done = true;
      queueMicrotask(() => job.onFinish("length", 0));
      return { cancel: () => {} };
    }
    this.waiting.push(s);
    if (!this.running) {
      this.running = true;
      setImmediate(() => void this.loop());
    }
    return { cancel: () => void (s.cancelled = true) };
  }

  /** Cancel every sequence (the server is stopping). */
  close(): void {
    for (const s of [...this.active, ...this.waiting]) s.cancelled = true;
  }

  private async loop(): Promise<void> {
    try {
      while (this.waiting.length > 0 || this.active.length > 0) {
        let started = false;
        try {
          started = this.turn();
        } catch (err) {
          this.failAll(err instanceof Error ? err : new Error(String(err)));
        }
        // New sequences' first tokens go out at once; otherwise I/O waits for a few steps at most.
        if (started || performance.now() - this.lastYield >= YIELD_EVERY_MS) {
          await yieldToEventLoop();
          this.lastYield = performance.now();
        }
      }
    } finally {
      this.running = false;
    }
  }

  /** One turn; true when it started a sequence. */
  private turn(): boolean {
    this.active = this.active.filter((s) => !this.retireIfGone(s));
    let started = false;
    while (this.waiting.length > 0 && this.active.length < this.slots) {
      const s = this.waiting.shift()!;
      if (s.cancelled) continue;
      started = true;
      s.cache = this.spare.pop() ?? new KvCache(this.engine.arch);
      this.advance(s, this.prefill(s, s.job.promptIds));
      if (s.done) this.release(s);
      else this.active.push(s);
    }
    const batch = this.active;
    const B = batch.length;
    if (B === 0) return started;
    this.caches.length = B;
    for (let b = 0; b < B; b++) {
      this.tokens[b] = batch[b]!.next;
      this.caches[b] = batch[b]!.cache!;
    }
    this.decoder.step(this.caches, this.tokens, B);
    this.steps++;
    this.rows += B;
    for (let b = 0; b < B; b++) this.advance(batch[b]!, this.decoder.logitRows[b]!);
    this.active = batch.filter((s) => {
      if (s.done) this.release(s);
      return !s.done;
    });
    return started;
  }

  /** Fill the sequence's cache from `ids`, positions 0..; returns the last position's logits. */
  private prefill(s: Sequence, ids: number[]): Float32Array {
    const logits = this.engine.prefill(ids);
    this.engine.copyCacheTo(s.cache!.k, s.cache!.v);
    s.cache!.length = ids.length;
    return logits;
  }

  /** Sample from `logits` and go on until the sequence needs a decode step or ends. */
  private advance(s: Sequence, logits: Float32Array): void {
    const context = this.engine.contextSize;
    for (;;) {
      const id = s.sampler.sample(logits, this.vocab);
      if (id === this.tok.endOfTextId && !s.job.ignoreEnd) return this.finish(s, "stop", true);
      s.generated++;
      this.generatedTokens++;
      s.recent.push(id);
      const piece = s.stream.push(id);
      if (piece && this.emit(s, piece)) return this.finish(s, "stop", false);
      if (s.generated >= s.job.maxTokens) return this.finish(s, "length", true);
      if (s.cache!.length < context) {
        s.next = id;
        return;
      }
      s.recent.splice(0, s.recent.length - slideKeep(context));
      logits = this.prefill(s, s.recent);
    }
  }

  /** Pass text through the stop sequences; true when one was reached. */
  private emit(s: Sequence, text: string): boolean {
    const out = s.stopper.push(text);
    if (out.text) s.job.onText(out.text);
    return out.stopped;
  }

  private finish(s: Sequence, reason: FinishReason, flush: boolean): void {
    if (flush) {
      const tail = s.stream.end();
      if (tail && this.emit(s, tail)) reason = "stop";
      else {
        const held = s.stopper.end();
        if (held) s.job.onText(held);
      }
    }
    s.done = true;
    s.job.onFinish(reason, s.generated);
  }

  private retireIfGone(s: Sequence): boolean {
    if (!s.cancelled) return false;
    s.done = true;
    this.release(s);
    return true;
  }

  private release(s: Sequence): void {
    if (s.cache && this.spare.length < this.slots) this.spare.push(s.cache);
    s.cache = null;
  }

  private failAll(err: Error): void {
    for (const s of [...this.active, ...this.waiting]) {
      if (s.done) continue;
      s.done = true;
      this.release(s);
      try {
        s.job.onError(err);
      } catch {
        // the client is gone already
      }
    }
    this.active = [];
    this.waiting = [];
  }
}
