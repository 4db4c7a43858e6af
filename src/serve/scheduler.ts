/**
 * Continuous batching: every accepted request is a sequence with its own KV cache, sampler and text
 * stream. Each turn of the loop runs one pass of the decoder (BatchDecoder.rows: one pass over the
 * weights) over a row for every decoding sequence's next token and, beside them, up to PROMPT_ROWS
 * positions of the prompts of sequences that arrived (a long prompt takes a few turns); it samples
 * the next token of every sequence whose row or whose prompt's last position was in it. Then, after a
 * turn that gave a sequence its first token or when a couple of milliseconds have passed since the
 * last time, it yields to the event loop, so that requests are read and streamed while generation
 * goes on (yielding after every step would cost a small model a large share of its step). A sequence
 * leaves the batch when it ends, or at the next turn when its client has gone; its cache is kept for
 * the next request.
 *
 * Per sequence the rules are generate.ts's: the same sampler and seed, stop at end-of-text or
 * max_tokens, the context rebuilt from its most recent half when full. Every row of a pass has the
 * bytes the engine computes for it alone, and a prompt the same in pieces as whole (batch.ts), so a
 * request gives exactly the tokens `train_vocab generate` gives for the same prompt, seed and
 * settings, however many requests share the passes. */
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
  /** While prefilling: the ids that go into the cache from position 0 (the prompt, or after a slide
   * the most recent half of the context), and how many of them are in already; null once decoding. */
  feed: number[] | null;
  fed = 0;
  /** Prompt positions in the current turn's rows. */
  taking = 0;
  cancelled = false;
  done = false;
  readonly sampler: Sampler;
  readonly stream: TextStream;
  readonly stopper: StopMatcher;

  constructor(readonly job: Job, tok: Tokenizer, scratch: SamplerScratch) {
    this.recent = job.promptIds.slice();
    this.feed = job.promptIds;
    this.sampler = new Sampler(job.sampling, scratch);
    this.stream = new TextStream(tok, job.promptIds[job.promptIds.length - 1]!);
    this.stopper = new StopMatcher(job.stop);
  }
}

export interface SchedulerStats {
  active: number;
  waiting: number;
  slots: number;
  /** Passes of the decoder run, the decoding rows they held in total (rows ÷ steps = the mean
   * batch), and the prompt positions that rode along. */
  steps: number;
  rows: number;
  promptRows: number;
  generatedTokens: number;
}

const YIELD_EVERY_MS = 2;
/** Prompt positions a turn takes at most, beside the decoding sequences' rows: a burst of new
 * requests goes in over a few turns rather than stalling the others for one long pass. */
const PROMPT_ROWS = 64;
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

export class Scheduler {
  private waiting: Sequence[] = [];
  private active: Sequence[] = [];
  private readonly spare: KvCache[] = [];
  /** Sampling runs one sequence at a time: one set of work buffers for all. */
  private readonly samplerScratch = new SamplerScratch();
  private running = false;
  private readonly decoder: BatchDecoder;
  /** A turn's rows: cache, token and position of each, and which rows' logits are sampled (refilled
   * each turn, not reallocated). */
  private readonly caches: KvCache[] = [];
  private readonly tokens: Int32Array;
  private readonly positions: Int32Array;
  private readonly want: Int32Array;
  private readonly vocab: number;
  private steps = 0;
  private rows = 0;
  private promptRows = 0;
  private generatedTokens = 0;
  private lastYield = 0;

  constructor(private readonly engine: InferenceEngine, private readonly tok: Tokenizer, readonly slots: number) {
    this.decoder = new BatchDecoder(engine.arch, engine.weights, slots + PROMPT_ROWS, slots);
    this.tokens = new Int32Array(slots + PROMPT_ROWS);
    this.positions = new Int32Array(slots + PROMPT_ROWS);
    this.want = new Int32Array(slots + PROMPT_ROWS);
    this.vocab = Math.min(tok.vocabSize, engine.arch.vocab_size);
  }

  /** Sequences accepted and not yet finished. */
  get load(): number {
    return this.waiting.length + this.active.length;
  }

  stats(): SchedulerStats {
    return {
      active: this.active.length, waiting: this.waiting.length, slots: this.slots,
      steps: this.steps, rows: this.rows, promptRows: this.promptRows, generatedTokens: this.generatedTokens,
    };
  }

  /** Accept a job; a prompt outside 1..context ids of the model's vocabulary is a caller's bug (the
   * server cuts and encodes prompts first): refused here, before it could hold a slot or fail a pass. */
  submit(job: Job): JobHandle {
    const { max_seq_len: P, vocab_size: V } = this.engine.arch;
    const ids = job.promptIds;
    if (ids.length < 1 || ids.length > P) throw new RangeError(`Scheduler.submit: a prompt of ${ids.length} ids, the context holds 1..${P}`);
    for (const id of ids) if (!Number.isInteger(id) || id < 0 || id >= V) throw new RangeError(`Scheduler.submit: prompt id ${id} is outside 0..${V - 1}`);
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

  /**
   * One turn: one pass of the decoder over a row for every decoding sequence and up to PROMPT_ROWS
   * rows of prompts (a sequence's prompt may take several turns); true when a sequence got its first
   * token.
   */
  private turn(): boolean {
    this.active = this.active.filter((s) => !this.retireIfGone(s));
    while (this.waiting.length > 0 && this.active.length < this.slots) {
      const s = this.waiting.shift()!;
      if (s.cancelled) continue;
      s.cache = this.spare.pop() ?? new KvCache(this.engine.arch);
      s.cache.length = 0;
      this.active.push(s);
    }
    const batch = this.active;
    if (batch.length === 0) return false;
    // Rows: each decoding sequence's next token, then prompt positions while the budget lasts.
    let B = 0, W = 0, budget = PROMPT_ROWS;
    for (const s of batch) {
      if (s.feed) {
        const m = Math.min(s.feed.length - s.fed, budget);
        budget -= m;
        for (let i = 0; i < m; i++) this.setRow(B++, s, s.feed[s.fed + i]!, s.fed + i);
        s.taking = m;
        if (m > 0 && s.fed + m === s.feed.length) this.want[W++] = B - 1;
      } else {
        this.setRow(B++, s, s.next, s.cache!.length);
        this.want[W++] = B - 1;
      }
    }
    if (B === 0) return false;
    this.decoder.rows(B, this.caches, this.tokens, this.positions, this.want, W);
    this.steps++;
    this.promptRows += PROMPT_ROWS - budget;
    this.rows += B - (PROMPT_ROWS - budget);
    let g = 0, started = false;
    for (const s of batch) {
      if (s.feed) {
        if (s.taking === 0) continue;
        s.fed += s.taking;
        s.cache!.length = s.fed;
        if (s.fed < s.feed.length) continue;
        s.feed = null;
        if (s.generated === 0) started = true; // its first token goes out (not a slide's re-feed)
      } else {
        s.cache!.length++;
      }
      this.advance(s, this.decoder.logitRows[g++]!);
    }
    this.active = batch.filter((s) => {
      if (s.done) this.release(s);
      return !s.done;
    });
    return started;
  }

  private setRow(b: number, s: Sequence, token: number, position: number): void {
    this.caches[b] = s.cache!;
    this.tokens[b] = token;
    this.positions[b] = position;
  }

  /** Sample from `logits`: the sequence then needs a decode step, or its context again, or it ends. */
  private advance(s: Sequence, logits: Float32Array): void {
    const id = s.sampler.sample(logits, this.vocab);
    if (id === this.tok.endOfTextId && !s.job.ignoreEnd) return this.finish(s, "stop", true);
    s.generated++;
    this.generatedTokens++;
    s.recent.push(id);
    const piece = s.stream.push(id);
    if (piece && this.emit(s, piece)) return this.finish(s, "stop", false);
    if (s.generated >= s.job.maxTokens) return this.finish(s, "length", true);
    s.next = id;
    if (s.cache!.length < this.engine.contextSize) return;
    // The context is full: its most recent half goes in again from position 0, as generate does.
    s.recent.splice(0, s.recent.length - slideKeep(this.engine.contextSize));
    s.feed = s.recent.slice();
    s.fed = 0;
    s.cache!.length = 0;
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
