/**
 * The dashboard's HTTP server (Bun.serve, 127.0.0.1 unless told otherwise): the page, bundled by Bun
 * from page.html with uPlot; each run's metrics as columns, only what is new since the page's last
 * request; and a sample from a run's latest checkpoint.
 *
 *   GET  /api/runs                                   the runs: id, name, folder (run folders that
 *                                                    appeared in a folder of runs included)
 *   GET  /api/runs/:id/metrics?generation=G&train=N&val=M
 *        what came after the first N train and M val lines the page has of generation G (everything,
 *        with reset: true, when the file was rewritten since); status and message for the run's state
 *   POST /api/runs/:id/sample  {prompt, max_tokens, temperature, top_k, seed}
 */
import type { Server } from "bun";
import { resolve } from "node:path";
import { UserError } from "../base/errors.ts";
import { foreignHost } from "../base/loopback.ts";
import { type Columns, MetricsFollower, type RunSnapshot } from "./follow.ts";
import page from "./page.html";
import { type RunSource, shortNames } from "./runs.ts";
import { CheckpointSampler, type SampleRequest } from "./sample.ts";

export interface DashboardOptions {
  runs: RunSource[];
  host: string;
  port: number;
  /** The vocabulary for samples (--vocab); null to find each run's own. */
  vocab: string | null;
  /** The runs as they are now (a folder of runs gains run folders while the dashboard is up). */
  rescan?: () => RunSource[];
}

export interface Dashboard {
  server: Server<undefined>;
  url: string;
  stop(): Promise<void>;
}

/** Polls closer together than this reuse the last read (several tabs, or a page and a script). */
const MIN_POLL_MS = 200;
/** How often the list of runs is looked at again, at most. */
const RESCAN_MS = 1000;
/** Points per response; a longer log comes over several requests (more: true). */
const MAX_POINTS = 100_000;
const MAX_BODY = 16 << 10;
export const SAMPLE_LIMITS = { maxTokens: 256, promptChars: 4000, temperature: 5, topK: 100_000 };

interface Run {
  id: number;
  name: string;
  source: RunSource;
  follower: MetricsFollower;
  last: { at: number; snapshot: RunSnapshot } | null;
}

export function startDashboard(o: DashboardOptions): Dashboard {
  const runs: Run[] = [];
  let shown: Run[] = [];
  const sampler = new CheckpointSampler(o.vocab);
  /** Adds runs not seen before (ids never change); shows exactly the ones listed. */
  const update = (sources: RunSource[]) => {
    const byPath = new Map(runs.map((r) => [resolve(r.source.metrics), r]));
    shown = sources.map((source) => {
      let run = byPath.get(resolve(source.metrics));
      if (!run) {
        run = { id: runs.length, name: "", source, follower: new MetricsFollower(source.folder, source.metrics), last: null };
        runs.push(run);
      }
      return run;
    });
    const names = shortNames(shown.map((r) => r.source));
    shown.forEach((r, i) => (r.name = names[i]!));
  };
  update(o.runs);
  let scannedAt = Date.now();
  const listRuns = () => {
    if (o.rescan && Date.now() - scannedAt >= RESCAN_MS) {
      scannedAt = Date.now();
      update(o.rescan());
    }
    return shown.map((r) => ({ id: r.id, name: r.name, folder: r.source.folder, metrics: r.source.metrics }));
  };

  const poll = (run: Run): RunSnapshot => {
    const now = Date.now();
    if (!run.last || now - run.last.at >= MIN_POLL_MS) run.last = { at: now, snapshot: run.follower.poll() };
    return run.last.snapshot;
  };
  const runOf = (req: Request & { params: { id: string } }): Run => {
    const id = Number(req.params.id);
    const run = Number.isInteger(id) ? runs[id] : undefined;
    if (!run) throw new HttpError(404, `No run ${req.params.id}: this dashboard shows runs 0 to ${runs.length - 1}.`);
    return run;
  };

  // The page itself holds no data; what it reads comes through /api, answered to loopback names only.
  const local = (req: Request) => {
    const foreign = foreignHost(req, o.host);
    if (foreign) throw new HttpError(403, foreign);
  };
  const server = Bun.serve({
    hostname: o.host,
    port: o.port,
    development: false,
    // Bun turns SO_REUSEPORT on when development is off: a second server on the same port would start
    // and take half the connections instead of failing with "in use".
    reusePort: false,
    routes: {
      "/": page,
      "/api/runs": {
        GET: (req) => handle(() => (local(req), Response.json({ runs: listRuns() }))),
      },
      "/api/runs/:id/metrics": {
        GET: (req) => handle(() => (local(req), metricsResponse(runOf(req), new URL(req.url).searchParams, poll))),
      },
      "/api/runs/:id/sample": {
        POST: (req) => handle(async () => (local(req), Response.json(sampler.sample(runOf(req).source.folder, parseSample(await readBody(req)))))),
      },
    },
    fetch: (req) => {
      const path = new URL(req.url).pathname;
      const known = path === "/api/runs" || /^\/api\/runs\/[^/]+\/(metrics|sample)$/.test(path);
      return known ? jsonError(405, `${req.method} is not allowed on ${path}.`) : jsonError(404, `Nothing at ${path}: the dashboard is at /.`);
    },
    error: (err) => jsonError(500, `The dashboard failed: ${err.message}`),
  });
  return { server, url: `http://${o.host.includes(":") ? `[${o.host}]` : o.host}:${server.port}/`, stop: () => server.stop(true) };
}

function metricsResponse(run: Run, q: URLSearchParams, poll: (r: Run) => RunSnapshot): Response {
  const snap = poll(run);
  const cols = run.follower.columns;
  const same = q.get("generation") === String(snap.generation);
  let trainFrom = same ? whole(q.get("train")) : 0;
  let valFrom = same ? whole(q.get("val")) : 0;
  const reset = !same || trainFrom > cols.train.step.length || valFrom > cols.val.step.length;
  if (reset) trainFrom = valFrom = 0;
  const trainTo = Math.min(cols.train.step.length, trainFrom + MAX_POINTS);
  const valTo = Math.min(cols.val.step.length, valFrom + MAX_POINTS);
  return Response.json({
    id: run.id, name: run.name, folder: run.source.folder, ...snap, reset,
    train: sliceColumns(cols.train, trainFrom, trainTo), val: sliceColumns(cols.val, valFrom, valTo),
    totals: { train: cols.train.step.length, val: cols.val.step.length },
    more: trainTo < cols.train.step.length || valTo < cols.val.step.length,
  });
}

function sliceColumns<T extends Columns["train"] | Columns["val"]>(cols: T, from: number, to: number): T {
  const out: Record<string, unknown[]> = {};
  for (const [k, v] of Object.entries(cols)) out[k] = (v as unknown[]).slice(from, to);
  return out as T;
}

function whole(v: string | null): number {
  const n = Number(v ?? 0);
  return Number.isInteger(n) && n >= 0 ? n : 0;
}

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

async function handle(work: () => Response | Promise<Response>): Promise<Response> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof HttpError) return jsonError(err.status, err.message);
    // A checkpoint or vocabulary that cannot be used says why, as the CLI would.
    if (err instanceof UserError) return jsonError(422, err.message);
    return jsonError(500, `The dashboard failed: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function jsonError(status: number, message: string): Response {
  return Response.json({ error: { message, status } }, { status });
}

async function readBody(req: Request): Promise<unknown> {
  const declared = Number(req.headers.get("content-length") ?? 0);
  if (declared > MAX_BODY) throw new HttpError(413, `The request body is ${declared} bytes; at most ${MAX_BODY} are read.`);
  const bytes = new Uint8Array(await req.arrayBuffer());
  if (bytes.length > MAX_BODY) throw new HttpError(413, `The request body is ${bytes.length} bytes; at most ${MAX_BODY} are read.`);
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    throw new HttpError(400, "The request body is not JSON in UTF-8.");
  }
}

/** The sample request's fields, each checked, with the defaults of the page's form. */
export function parseSample(body: unknown): SampleRequest {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new HttpError(400, "The request body must be a JSON object.");
  const b = body as Record<string, unknown>;
  const prompt = b.prompt ?? "";
  if (typeof prompt !== "string") throw new HttpError(400, "prompt must be a string.");
  if (prompt.length > SAMPLE_LIMITS.promptChars) throw new HttpError(400, `prompt has ${prompt.length} characters; at most ${SAMPLE_LIMITS.promptChars}.`);
  const number = (name: string, fallback: number, lo: number, hi: number, integer: boolean): number => {
    const v = b[name] ?? fallback;
    if (typeof v !== "number" || !Number.isFinite(v) || v < lo || v > hi || (integer && !Number.isInteger(v))) {
      throw new HttpError(400, `${name} must be ${integer ? "a whole number" : "a number"} from ${lo} to ${hi}.`);
    }
    return v;
  };
  return {
    prompt,
    maxTokens: number("max_tokens", 48, 1, SAMPLE_LIMITS.maxTokens, true),
    temperature: number("temperature", 0.8, 0, SAMPLE_LIMITS.temperature, false),
    topK: number("top_k", 40, 0, SAMPLE_LIMITS.topK, true),
    seed: number("seed", 1, 0, 2 ** 32 - 1, true),
  };
}
