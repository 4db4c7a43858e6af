/**
 * The runs a dashboard shows, from its command-line arguments: a run folder (what --output named),
 * a metrics.jsonl file itself, or a folder of run folders (each subfolder that has a metrics.jsonl).
 * A path that does not exist yet, or has no metrics yet, is still a run: its page says it is waiting.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { METRICS_NAME } from "../train/run.ts";

export interface RunSource {
  /** As shown on the page: the path as given (or given/subfolder). */
  name: string;
  folder: string;
  metrics: string;
}

export function resolveRuns(paths: string[]): RunSource[] {
  const out: RunSource[] = [];
  const seen = new Set<string>();
  const add = (name: string, folder: string, metrics: string) => {
    const key = resolve(metrics);
    if (seen.has(key)) return;
    seen.add(key);
    out.push({ name, folder, metrics });
  };
  for (const given of paths) {
    const st = statOrNull(given);
    if (st?.isFile()) {
      add(given, dirname(given), given);
      continue;
    }
    const own = join(given, METRICS_NAME);
    if (st?.isDirectory() && !existsSync(own)) {
      const inner = subfoldersWithMetrics(given);
      if (inner.length > 0) {
        for (const sub of inner) add(join(given, sub), join(given, sub), join(given, sub, METRICS_NAME));
        continue;
      }
    }
    add(given, given, own);
  }
  return out;
}

function subfoldersWithMetrics(folder: string): string[] {
  try {
    return readdirSync(folder, { withFileTypes: true })
      .filter((e) => e.isDirectory() && !e.name.startsWith(".") && existsSync(join(folder, e.name, METRICS_NAME)))
      .map((e) => e.name)
      .sort();
  } catch {
    return [];
  }
}

function statOrNull(path: string) {
  try {
    return statSync(path);
  } catch {
    return null;
  }
}

/** A short label for a run: its folder's name, or the path when two runs would share one. */
export function shortNames(runs: RunSource[]): string[] {
  const base = runs.map((r) => basename(resolve(r.folder)));
  return runs.map((r, i) => (base.filter((b) => b === base[i]).length > 1 ? r.name : base[i]!));
}
