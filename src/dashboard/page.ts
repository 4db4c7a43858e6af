/**
 * The dashboard's page: polls each run's new metrics once a second and draws them with uPlot —
 * loss (train smoothed, raw faint, validation dots), learning rate and tokens/s, against step or
 * training time, linear or log, every run overlaid in its own colour — and asks the server for a
 * sample from a run's latest checkpoint. `window.trainVocabDashboard` exposes the charts and the
 * data for scripts and tests.
 */
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { formatDuration, TIME_STEPS } from "../train/curves.ts";
import { alignTo, combine, table, type Table } from "./columns.ts";
import type { Columns, RunSnapshot } from "./follow.ts";

interface RunInfo {
  id: number;
  name: string;
  folder: string;
}

interface MetricsReply extends RunSnapshot {
  id: number;
  reset: boolean;
  train: Columns["train"];
  val: Columns["val"];
  more: boolean;
}

interface RunView extends RunInfo {
  color: string;
  snapshot: RunSnapshot | null;
  train: Columns["train"];
  val: Columns["val"];
}

type ChartName = "loss" | "lr" | "tps";

const POLL_MS = 1000;
const LIVE_MS = 15_000;
const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be185d", "#4d7c0f", "#7c2d12", "#475569"];

const state = {
  runs: [] as RunView[],
  xMode: "step" as "step" | "time",
  log: false,
  raw: true,
  charts: {} as Partial<Record<ChartName, uPlot>>,
  chartKeys: {} as Partial<Record<ChartName, string>>,
  updatedAt: 0,
  /** How long the last redraw of the charts took (ms). */
  drawMs: 0,
};

declare global {
  interface Window {
    trainVocabDashboard: { state: typeof state; refresh: () => Promise<void> };
  }
}
window.trainVocabDashboard = { state, refresh };

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

async function start(): Promise<void> {
  try {
    await syncRuns();
  } catch {
    $("connection").textContent = "the dashboard's server is not answering; retrying";
    $("connection").classList.add("down");
    setTimeout(start, POLL_MS);
    return;
  }
  for (const input of document.querySelectorAll<HTMLInputElement>("input[name=x]")) {
    input.addEventListener("change", () => {
      state.xMode = input.value === "time" ? "time" : "step";
      draw();
    });
  }
  $<HTMLInputElement>("log").addEventListener("change", (e) => {
    state.log = (e.target as HTMLInputElement).checked;
    draw();
  });
  $<HTMLInputElement>("raw").addEventListener("change", (e) => {
    state.raw = (e.target as HTMLInputElement).checked;
    draw();
  });
  $<HTMLFormElement>("sample-form").addEventListener("submit", (e) => {
    e.preventDefault();
    void sample();
  });
  window.addEventListener("resize", () => {
    for (const [name, chart] of Object.entries(state.charts)) chart?.setSize(size($(`chart-${name}`)));
  });
  await loop();
}

/**
 * The server's list of runs: new ones (a run folder that appeared in a folder of runs) join with the
 * next colour, runs no longer listed leave; a run keeps its colour and its data.
 */
async function syncRuns(): Promise<boolean> {
  const reply = (await fetch("/api/runs").then((r) => r.json())) as { runs: RunInfo[] };
  const known = new Map(state.runs.map((r) => [r.id, r]));
  const before = state.runs.map((r) => `${r.id}:${r.name}`).join(",");
  state.runs = reply.runs.map((info) => {
    const run = known.get(info.id);
    if (run) return Object.assign(run, { name: info.name });
    return { ...info, color: COLORS[info.id % COLORS.length]!, snapshot: null, train: emptyTrain(), val: emptyVal() };
  });
  if (state.runs.map((r) => `${r.id}:${r.name}`).join(",") === before) return false;
  const select = $<HTMLSelectElement>("sample-run");
  const chosen = select.value;
  select.innerHTML = "";
  for (const r of state.runs) select.add(new Option(r.name, String(r.id)));
  if (state.runs.some((r) => String(r.id) === chosen)) select.value = chosen;
  return true;
}

let polls = 0;
let runsChanged = false;
async function loop(): Promise<void> {
  if (++polls % 3 === 0 && (await syncRuns().catch(() => false))) runsChanged = true;
  await refresh().catch(() => {});
  // A redraw of very long runs takes a while: poll less often than that, so the page stays responsive.
  setTimeout(loop, Math.max(POLL_MS, 3 * state.drawMs));
}

/** Fetches what is new for every run, then redraws if anything changed. */
async function refresh(): Promise<void> {
  const connection = $("connection");
  try {
    const changed = await Promise.all(state.runs.map(update));
    state.updatedAt = Date.now();
    connection.textContent = `updated ${new Date(state.updatedAt).toLocaleTimeString()}`;
    connection.classList.remove("down");
    if (changed.some(Boolean) || runsChanged || Object.keys(state.charts).length === 0) draw();
    else renderTable();
    runsChanged = false;
  } catch {
    connection.textContent = "the dashboard's server is not answering; retrying";
    connection.classList.add("down");
    throw new Error("refresh failed");
  }
}

async function update(run: RunView): Promise<boolean> {
  let changed = false;
  // A long log comes in several replies; bounded so one refresh cannot spin forever.
  for (let round = 0; round < 64; round++) {
    const generation = run.snapshot?.generation ?? -1;
    const q = `generation=${generation}&train=${run.train.step.length}&val=${run.val.step.length}`;
    const res = await fetch(`/api/runs/${run.id}/metrics?${q}`);
    if (!res.ok) throw new Error(`metrics ${res.status}`);
    const reply = (await res.json()) as MetricsReply;
    if (reply.reset) {
      run.train = emptyTrain();
      run.val = emptyVal();
      changed = true;
    }
    if (reply.train.step.length + reply.val.step.length > 0) changed = true;
    append(run.train, reply.train);
    append(run.val, reply.val);
    const { status, message, generation: g, skipped, partialBytes, changedAt } = reply;
    run.snapshot = { status, message, generation: g, skipped, partialBytes, changedAt };
    if (!reply.more) break;
  }
  return changed;
}

function append<T extends Record<string, unknown[]>>(into: T, more: T): void {
  // A loop, not push(...more): a reply may hold more values than a call takes arguments.
  for (const key of Object.keys(into)) {
    const to = into[key] as unknown[];
    for (const v of more[key] as unknown[]) to.push(v);
  }
}

function emptyTrain(): Columns["train"] {
  return { step: [], time: [], loss: [], smoothed: [], lr: [], tokensPerSec: [] };
}

function emptyVal(): Columns["val"] {
  return { step: [], time: [], loss: [] };
}

function draw(): void {
  const t0 = performance.now();
  renderTable();
  drawChart("loss");
  drawChart("lr");
  drawChart("tps");
  state.drawMs = performance.now() - t0;
}

/** One chart's x values and series for every run, on one shared x. */
function chartData(name: ChartName): { data: uPlot.AlignedData; series: uPlot.Series[] } | null {
  const tables: Table[] = [];
  const series: uPlot.Series[] = [{ label: state.xMode === "step" ? "step" : "training time", value: (_u, v) => (v == null ? "—" : formatX(v)) }];
  const add = (t: Table, s: uPlot.Series[]) => {
    tables.push(t);
    series.push(...s);
  };
  // On a log axis a value <= 0 has no place: a gap. (Values that were not finite arrive as null.)
  const positive = (col: (number | null)[]) => (state.log ? col.map((v) => (v == null || v <= 0 ? null : v)) : col);
  const fmt = name === "loss" ? (v: number) => v.toFixed(4) : name === "lr" ? (v: number) => v.toPrecision(3) : (v: number) => Math.round(v).toLocaleString("en-US");
  const value = (_u: uPlot, v: number | null) => (v == null ? "—" : fmt(v));
  for (const run of state.runs) {
    const xs = state.xMode === "step" ? run.train.step : run.train.time;
    if (name === "loss") {
      const cols = state.raw ? [run.train.smoothed, run.train.loss] : [run.train.smoothed];
      const t = table(xs, cols.map(positive));
      const v = table(state.xMode === "step" ? run.val.step : run.val.time, [positive(run.val.loss)]);
      const trainSeries: uPlot.Series[] = [{ label: `${run.name} train`, stroke: run.color, width: 2, spanGaps: true, points: { show: false }, value }];
      if (state.raw) trainSeries.push({ label: `${run.name} raw`, stroke: run.color + "40", width: 1, spanGaps: true, points: { show: false }, value });
      const valSeries: uPlot.Series = { label: `${run.name} val`, stroke: run.color, width: 1, dash: [4, 4], spanGaps: true, points: { show: true, size: 7, fill: run.color }, value };
      // Validation lines share the steps of training lines: then they are a sparse column of the same table.
      const aligned = t && v ? alignTo(t[0], v[0], v[1]!) : null;
      if (t && aligned) add([...t, aligned], [...trainSeries, valSeries]);
      else {
        if (t) add(t, trainSeries);
        if (v) add(v, [valSeries]);
      }
    } else {
      const col = name === "lr" ? run.train.lr : run.train.tokensPerSec;
      const t = table(xs, [name === "tps" ? col : positive(col)]);
      if (t) add(t, [{ label: run.name, stroke: run.color, width: 1.5, spanGaps: true, points: { show: false }, value }]);
    }
  }
  if (tables.length === 0) return null;
  return { data: combine(tables) as uPlot.AlignedData, series };
}

function formatX(v: number): string {
  return state.xMode === "step" ? String(Math.round(v)) : formatDuration(v);
}

function drawChart(name: ChartName): void {
  const el = $(`chart-${name}`);
  const built = chartData(name);
  if (!built) {
    state.charts[name]?.destroy();
    delete state.charts[name];
    delete state.chartKeys[name];
    el.innerHTML = `<div class="empty">${state.runs.length === 0 ? "No runs." : "No points yet: the curves appear with the first metrics lines."}</div>`;
    return;
  }
  const key = [state.xMode, state.log, ...built.series.map((s) => s.label)].join("|");
  const chart = state.charts[name];
  if (chart && state.chartKeys[name] === key) {
    chart.setData(built.data);
    return;
  }
  chart?.destroy();
  el.innerHTML = "";
  const logY = state.log && name !== "tps";
  const opts: uPlot.Options = {
    ...size(el),
    scales: { x: { time: false }, y: logY ? { distr: 3 } : {} },
    axes: [
      state.xMode === "time"
        ? { label: "training time", incrs: TIME_STEPS, values: (_u, splits) => splits.map(formatDuration) }
        : { label: "step" },
      { label: name === "loss" ? "loss" : name === "lr" ? "learning rate" : "tokens/s", size: 70, values: (_u, splits) => splits.map(axisNumber) },
    ],
    series: built.series,
    legend: { live: true },
  };
  state.charts[name] = new uPlot(opts, built.data, el);
  state.chartKeys[name] = key;
}

/** A y-axis label: three significant digits, thousands separated (uPlot's own rounds 0.0001 to "0"). */
function axisNumber(v: number | null): string {
  if (v == null) return "";
  return Math.abs(v) >= 1000 ? Math.round(v).toLocaleString("en-US") : String(Number(v.toPrecision(3)));
}

function size(el: HTMLElement): { width: number; height: number } {
  return { width: Math.max(320, el.clientWidth || 560), height: 260 };
}

function renderTable(): void {
  const body = document.querySelector("#runs tbody")!;
  const now = Date.now();
  body.innerHTML = "";
  for (const run of state.runs) {
    const s = run.snapshot;
    const n = run.train.step.length;
    const last = <T>(xs: T[]) => (xs.length > 0 ? xs[xs.length - 1]! : null);
    const live = s?.status === "ok" && s.changedAt !== null && now - s.changedAt < LIVE_MS;
    const tr = document.createElement("tr");
    tr.dataset.run = String(run.id);
    const cells: [string, string][] = [
      ["", `<span class="swatch" style="background:${run.color}"></span>`],
      ["", `<span title="${escapeHtml(run.folder)}">${escapeHtml(run.name)}</span>`],
      ["state", `${live ? '<span class="live">● live</span> ' : ""}${escapeHtml(s?.message ?? "…")}` +
        (s && s.partialBytes > 0 ? " A line is being written." : "") + (s && s.skipped > 0 ? ` ${s.skipped} damaged line(s) skipped.` : "")],
      ["num step", n > 0 ? String(last(run.train.step)) : "—"],
      ["num loss", n > 0 ? `${last(run.train.loss)!.toFixed(4)} (smoothed ${last(run.train.smoothed)!.toFixed(4)})` : "—"],
      ["num val", run.val.loss.length > 0 ? last(run.val.loss)!.toFixed(4) : "—"],
      ["num lr", n > 0 && Number.isFinite(last(run.train.lr)) ? last(run.train.lr)!.toPrecision(3) : "—"],
      ["num tps", n > 0 && Number.isFinite(last(run.train.tokensPerSec)) ? Math.round(last(run.train.tokensPerSec)!).toLocaleString("en-US") : "—"],
      ["num time", n > 0 && last(run.train.time) != null ? formatDuration(last(run.train.time)!) : "—"],
    ];
    for (const [cls, html] of cells) {
      const td = document.createElement("td");
      if (cls) td.className = cls;
      td.innerHTML = html;
      tr.append(td);
    }
    body.append(tr);
  }
}

async function sample(): Promise<void> {
  const out = $("sample-out");
  const button = $<HTMLButtonElement>("sample-button");
  const runId = Number($<HTMLSelectElement>("sample-run").value);
  const prompt = $<HTMLInputElement>("sample-prompt").value;
  const body = {
    prompt,
    max_tokens: Number($<HTMLInputElement>("sample-tokens").value),
    temperature: Number($<HTMLInputElement>("sample-temperature").value),
    seed: Math.floor(Math.random() * 2 ** 31),
  };
  button.disabled = true;
  out.innerHTML = '<span class="meta">sampling…</span>';
  try {
    const res = await fetch(`/api/runs/${runId}/sample`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    const reply = await res.json();
    if (!res.ok) {
      out.innerHTML = `<span class="error">${escapeHtml(reply.error?.message ?? `error ${res.status}`)}</span>`;
      return;
    }
    const saved = new Date(reply.savedAt).toLocaleTimeString();
    out.innerHTML =
      `<div class="meta">${escapeHtml(reply.checkpoint)}${reply.step !== null ? `, step ${reply.step}` : ""}, saved ${saved}: ` +
      `${reply.tokens} tokens in ${reply.seconds.toFixed(2)} s</div>` +
      `${escapeHtml(reply.prompt)}<span class="generated">${escapeHtml(reply.text)}</span>`;
  } catch {
    out.innerHTML = '<span class="error">The dashboard\'s server did not answer.</span>';
  } finally {
    button.disabled = false;
  }
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

void start();
