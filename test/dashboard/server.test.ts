/**
 * The dashboard's server over HTTP on 127.0.0.1: the runs, incremental metrics with resets, samples from
 * a real checkpoint (and every way a sample request can be wrong), the page, and a bounded fuzz of
 * the HTTP surface (no 5xx, the server still answers).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { appendFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { atomicWrite } from "../../src/base/files.ts";
import { resolveRuns } from "../../src/dashboard/runs.ts";
import { type Dashboard, startDashboard } from "../../src/dashboard/server.ts";
import { isValRecord, readMetrics } from "../../src/train/metrics.ts";
import { BIN, learnableText, runCli, tempFolder, TINY, writeText } from "../cli/helpers.ts";

const tmp = tempFolder("tv-dash-");
let dash: Dashboard;
let base: string;
const live = join(tmp.dir, "live");
const trained = join(tmp.dir, "outputs", "trained");
const line = (step: number, loss: number) => JSON.stringify({ step, stage: 0, epoch: 1, epochs: 1, loss, lr: 0.001, grad_norm: 1, tokens_per_sec: 500, elapsed_s: step }) + "\n";

beforeAll(async () => {
  mkdirSync(live);
  writeFileSync(join(live, "metrics.jsonl"), line(1, 6) + line(2, 5));
  writeText(tmp.dir, "story.txt", learnableText(200));
  // A real run, its vocabulary in the parent folder as the defaults put it.
  const r = await runCli(["--data", "story.txt", "--vocab", "outputs/tokenizer.vocab", ...TINY, "--epochs", "1", "--max-steps", "3", "--output", trained], tmp.dir);
  if (r.code !== 0) throw new Error(r.out);
  dash = startDashboard({ runs: resolveRuns([live, join(tmp.dir, "missing"), trained]), host: "127.0.0.1", port: 0, vocab: null });
  base = dash.url.replace(/\/$/, "");
}, 120_000);
afterAll(async () => {
  await dash?.stop();
  tmp.cleanup();
});

const get = async (path: string) => {
  const res = await fetch(base + path);
  return { status: res.status, body: (await res.json()) as any };
};
const post = async (path: string, body: string, headers: Record<string, string> = { "content-type": "application/json" }) => {
  const res = await fetch(base + path, { method: "POST", body, headers });
  return { status: res.status, body: (await res.json()) as any };
};

test("GET /api/runs lists the runs with short names", async () => {
  const { status, body } = await get("/api/runs");
  expect(status).toBe(200);
  expect(body.runs.map((r: { name: string }) => r.name)).toEqual(["live", "missing", "trained"]);
});

test("its data goes to requests addressed to a loopback name only (DNS rebinding): others get 403", async () => {
  const port = new URL(base).port;
  for (const path of ["/api/runs", "/api/runs/0/metrics"]) {
    const refused = await fetch(base + path, { headers: { host: `evil.example:${port}` } });
    expect({ path, status: refused.status }).toEqual({ path, status: 403 });
    expect(((await refused.json()) as { error: { message: string } }).error.message).toContain('not to "evil.example:');
    expect((await fetch(base + path, { headers: { host: `localhost:${port}` } })).status).toBe(200);
  }
  const sample = await post("/api/runs/2/sample", "{}", { "content-type": "application/json", host: "evil.example" });
  expect(sample.status).toBe(403);
});

test("metrics come whole, then only what is new, and again whole after a rewrite", async () => {
  const first = await get("/api/runs/0/metrics");
  expect(first.body.status).toBe("ok");
  expect(first.body.reset).toBe(true);
  expect(first.body.train.step).toEqual([1, 2]);
  expect(first.body.train.loss).toEqual([6, 5]);
  const g = first.body.generation;
  await Bun.sleep(250); // polls closer than 200 ms reuse the last read
  appendFileSync(join(live, "metrics.jsonl"), line(3, 4.5) + '{"step":4,"lo');
  const next = await get(`/api/runs/0/metrics?generation=${g}&train=2&val=0`);
  expect(next.body.reset).toBe(false);
  expect(next.body.train.step).toEqual([3]);
  expect(next.body.partialBytes).toBeGreaterThan(0);
  expect(next.body.totals).toEqual({ train: 3, val: 0 });
  await Bun.sleep(250);
  atomicWrite(join(live, "metrics.jsonl"), line(1, 7));
  const again = await get(`/api/runs/0/metrics?generation=${g}&train=3&val=0`);
  expect(again.body.reset).toBe(true);
  expect(again.body.generation).toBeGreaterThan(g);
  expect(again.body.train.loss).toEqual([7]);
  // a page that claims more lines than there are is sent everything again
  const confused = await get(`/api/runs/0/metrics?generation=${again.body.generation}&train=50&val=0`);
  expect(confused.body.reset).toBe(true);
  expect(confused.body.train.step).toEqual([1]);
});

test("a folder that does not exist is a waiting state, not an error", async () => {
  const { status, body } = await get("/api/runs/1/metrics");
  expect(status).toBe(200);
  expect(body.status).toBe("waiting-folder");
  expect(body.message).toContain("does not exist yet");
  expect(body.train.step).toEqual([]);
});

test("a sample from the latest checkpoint, with the vocabulary found beside the run", async () => {
  const { status, body } = await post("/api/runs/2/sample", JSON.stringify({ prompt: "the cat", max_tokens: 6, temperature: 0, seed: 3 }));
  expect(status).toBe(200);
  expect(body.step).toBe(3);
  expect(body.vocab).toBe(join(tmp.dir, "outputs", "tokenizer.vocab"));
  expect(body.tokens).toBeGreaterThan(0);
  expect(typeof body.text).toBe("string");
  // greedy is deterministic: the same request, the same text
  const again = await post("/api/runs/2/sample", JSON.stringify({ prompt: "the cat", max_tokens: 6, temperature: 0, seed: 9 }));
  expect(again.body.text).toBe(body.text);
});

test("sample requests that cannot be served say why, with the right status", async () => {
  const noCheckpoint = await post("/api/runs/0/sample", "{}");
  expect(noCheckpoint.status).toBe(422);
  expect(noCheckpoint.body.error.message).toContain(`No model_checkpoint.bin in ${live} yet`);
  expect((await post("/api/runs/9/sample", "{}")).status).toBe(404);
  expect((await post("/api/runs/2/sample", "not json")).status).toBe(400);
  expect((await post("/api/runs/2/sample", "[1]")).status).toBe(400);
  expect((await post("/api/runs/2/sample", new TextDecoder("latin1").decode(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])))).status).toBe(400);
  for (const body of [{ max_tokens: 0 }, { max_tokens: 1e9 }, { max_tokens: 2.5 }, { temperature: -1 }, { temperature: "hot" }, { prompt: 5 }, { prompt: "x".repeat(5000) }, { seed: -1 }, { top_k: 1e12 }]) {
    const r = await post("/api/runs/2/sample", JSON.stringify(body));
    expect(r.status).toBe(400);
    expect(r.body.error.message.length).toBeGreaterThan(10);
  }
  const huge = await post("/api/runs/2/sample", JSON.stringify({ prompt: "y".repeat(40_000) }));
  expect(huge.status).toBe(413);
});

test("a run whose vocabulary cannot be found names the way out", async () => {
  const lone = join(tmp.dir, "lone", "run");
  mkdirSync(lone, { recursive: true });
  writeFileSync(join(lone, "model_checkpoint.bin"), new Uint8Array(await Bun.file(join(trained, "model_checkpoint.bin")).arrayBuffer()));
  const other = startDashboard({ runs: resolveRuns([lone]), host: "127.0.0.1", port: 0, vocab: null });
  try {
    const res = await fetch(`${other.url}api/runs/0/sample`, { method: "POST", body: "{}" });
    expect(res.status).toBe(422);
    expect(((await res.json()) as any).error.message).toContain("start the dashboard with --vocab");
  } finally {
    await other.stop();
  }
});

test("the page is served with its bundled script", async () => {
  const res = await fetch(base + "/");
  expect(res.status).toBe(200);
  const html = await res.text();
  expect(html).toContain("<title>train_vocab dashboard</title>");
  const src = /<script[^>]+src="([^"]+)"/.exec(html)?.[1];
  expect(src).toBeDefined();
  const js = await fetch(new URL(src!, base + "/").href);
  expect(js.status).toBe(200);
  expect(await js.text()).toContain("trainVocabDashboard");
});

test("unknown paths are 404 and wrong methods 405, as JSON", async () => {
  expect((await get("/nope")).status).toBe(404);
  const wrong = await fetch(base + "/api/runs/0/metrics", { method: "DELETE" });
  expect(wrong.status).toBe(405);
  expect(((await wrong.json()) as any).error.message).toContain("DELETE");
});

test("fuzz: random methods, paths, queries and bodies never get a 5xx, and the server keeps answering", async () => {
  let seed = 777;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)]!;
  const paths = ["/api/runs", "/api/runs/0/metrics", "/api/runs/2/sample", "/api/runs/-1/metrics", "/api/runs/1e3/sample", "/api/runs/%ff/metrics", "/api/runs/0/metrics?generation=x&train=-5&val=1e400", "/api/runs/0/metrics?train=99999999999999999999", "/", "/api/", "/api/runs/0/sample/extra"];
  const bodies = [
    () => "",
    () => "{",
    () => JSON.stringify({ prompt: null, max_tokens: null }),
    () => JSON.stringify({ prompt: "ab", max_tokens: Math.floor(rand() * 400) - 50, temperature: rand() * 8 - 1, top_k: Math.floor(rand() * 10), seed: Math.floor(rand() * 100) }),
    () => JSON.stringify({ prompt: { a: 1 }, max_tokens: "5" }),
    () => String.fromCharCode(...Array.from({ length: Math.floor(rand() * 300) }, () => Math.floor(rand() * 256))),
    () => JSON.stringify({ max_tokens: 1e308, temperature: 1e308, seed: 2 ** 60 }),
  ];
  const started = Date.now();
  for (let i = 0; i < 150 && Date.now() - started < 20_000; i++) {
    const method = pick(["GET", "POST", "PUT", "DELETE", "PATCH"]);
    const body = method === "GET" ? undefined : pick(bodies)();
    const res = await fetch(base + pick(paths), { method, body });
    expect(res.status).toBeLessThan(500);
    await res.arrayBuffer();
  }
  expect((await get("/api/runs")).status).toBe(200);
}, 60_000);

test("a run followed from before its folder exists to its end: the page's copy equals the file", async () => {
  const out = join(tmp.dir, "outputs", "followed");
  const d = startDashboard({ runs: resolveRuns([out]), host: "127.0.0.1", port: 0, vocab: null });
  try {
    const url = `${d.url}api/runs/0/metrics`;
    const first = (await (await fetch(url)).json()) as any;
    expect(first.status).toBe("waiting-folder");
    const train = Bun.spawn(["bun", "run", BIN, "--data", "story.txt", "--vocab", "outputs/tokenizer.vocab", ...TINY, "--epochs", "3", "--save-every", "3", "--output", out], { cwd: tmp.dir, stdout: "ignore", stderr: "pipe" });
    // The page's way: keep what came, ask for what is new, start over on a new generation.
    const have = { generation: -1, step: [] as number[], loss: [] as number[], val: [] as number[] };
    const poll = async () => {
      const r = (await (await fetch(`${url}?generation=${have.generation}&train=${have.step.length}&val=${have.val.length}`)).json()) as any;
      if (r.reset) (have.step = []), (have.loss = []), (have.val = []);
      have.generation = r.generation;
      have.step.push(...r.train.step);
      have.loss.push(...r.train.loss);
      have.val.push(...r.val.loss);
      return r;
    };
    const deadline = Date.now() + 60_000;
    while (train.exitCode === null && Date.now() < deadline) {
      await poll();
      await Bun.sleep(100);
    }
    expect(await train.exited).toBe(0);
    await Bun.sleep(250);
    const last = await poll();
    expect(last.status).toBe("ok");
    const records = readMetrics(join(out, "metrics.jsonl"));
    const steps = records.filter((r) => !isValRecord(r));
    expect(have.step).toEqual(steps.map((r) => r.step));
    expect(have.loss).toEqual(steps.map((r) => (r as { loss: number }).loss));
    expect(have.val).toEqual(records.filter(isValRecord).map((r) => r.val_loss));
  } finally {
    await d.stop();
  }
}, 90_000);

test("a folder of runs gains the run folders made in it while the dashboard is up", async () => {
  const sweep = join(tmp.dir, "sweep");
  mkdirSync(sweep);
  const d = startDashboard({ runs: resolveRuns([sweep]), host: "127.0.0.1", port: 0, vocab: null, rescan: () => resolveRuns([sweep]) });
  try {
    const list = async () => ((await (await fetch(`${d.url}api/runs`)).json()) as { runs: { id: number; name: string }[] }).runs;
    expect(await list()).toEqual([expect.objectContaining({ id: 0, name: "sweep" })]);
    for (const name of ["b", "a"]) {
      mkdirSync(join(sweep, name));
      writeFileSync(join(sweep, name, "metrics.jsonl"), line(1, name === "a" ? 3 : 4));
    }
    await Bun.sleep(1100); // the list is looked at again at most once a second
    const now = await list();
    expect(now.map((r) => [r.id, r.name])).toEqual([[1, "a"], [2, "b"]]);
    const a = (await (await fetch(`${d.url}api/runs/1/metrics`)).json()) as any;
    expect(a.train.loss).toEqual([3]);
  } finally {
    await d.stop();
  }
});
