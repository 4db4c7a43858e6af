/** Following metrics.jsonl while it is written: appended pieces, half-written lines, rewrites, missing files, damage. */
import { afterAll, expect, test } from "bun:test";
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { atomicWrite } from "../../src/base/files.ts";
import { MetricsFollower } from "../../src/dashboard/follow.ts";
import { Smoother } from "../../src/train/curves.ts";

const root = mkdtempSync(join(tmpdir(), "tv-follow-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const folder = () => {
  const dir = join(root, `run${n++}`);
  mkdirSync(dir);
  return dir;
};

const stepLine = (step: number, loss: number, elapsed = step * 0.5) =>
  JSON.stringify({ step, stage: 0, epoch: 1, epochs: 1, loss, lr: 0.001 * step, grad_norm: 1, tokens_per_sec: 1000 + step, elapsed_s: elapsed }) + "\n";
const valLine = (step: number, loss: number, elapsed = step * 0.5) => JSON.stringify({ step, stage: 0, epoch: 1, epochs: 1, val_loss: loss, elapsed_s: elapsed }) + "\n";

test("lines appended between polls are read once each; a half-written last line waits for its newline", () => {
  const dir = folder();
  const path = join(dir, "metrics.jsonl");
  writeFileSync(path, stepLine(1, 5) + stepLine(2, 4));
  const f = new MetricsFollower(dir, path);
  expect(f.poll().status).toBe("ok");
  expect(f.columns.train.step).toEqual([1, 2]);
  const line = stepLine(3, 3.5);
  appendFileSync(path, line.slice(0, 20));
  const mid = f.poll();
  expect(mid.partialBytes).toBe(20);
  expect(mid.skipped).toBe(0);
  expect(f.columns.train.step).toEqual([1, 2]);
  appendFileSync(path, line.slice(20) + valLine(3, 3.9));
  const done = f.poll();
  expect(done.partialBytes).toBe(0);
  expect(f.columns.train).toEqual({ step: [1, 2, 3], time: [0.5, 1, 1.5], loss: [5, 4, 3.5], smoothed: smoothed([5, 4, 3.5]), lr: [0.001, 0.002, 0.003], tokensPerSec: [1001, 1002, 1003] });
  expect(f.columns.val).toEqual({ step: [3], time: [1.5], loss: [3.9] });
  expect(done.generation).toBe(mid.generation);
});

test("the training clock continues across a resume, whose process starts its clock again", () => {
  const dir = folder();
  const path = join(dir, "metrics.jsonl");
  writeFileSync(path, stepLine(1, 5, 10) + stepLine(2, 4, 20) + stepLine(3, 3, 2) + stepLine(4, 2, 5));
  const f = new MetricsFollower(dir, path);
  f.poll();
  expect(f.columns.train.time).toEqual([10, 20, 22, 25]);
});

test("a rewritten file (a resume dropping lines past its checkpoint) is read again under a new generation", () => {
  const dir = folder();
  const path = join(dir, "metrics.jsonl");
  writeFileSync(path, stepLine(1, 5) + stepLine(2, 4) + stepLine(3, 3));
  const f = new MetricsFollower(dir, path);
  const first = f.poll();
  atomicWrite(path, stepLine(1, 5) + stepLine(2, 4.5));
  const second = f.poll();
  expect(second.generation).toBeGreaterThan(first.generation);
  expect(f.columns.train.loss).toEqual([5, 4.5]);
  expect(f.columns.train.smoothed).toEqual(smoothed([5, 4.5]));
  // cut in place (shorter than what was read)
  writeFileSync(path, stepLine(1, 6));
  const third = f.poll();
  expect(third.generation).toBeGreaterThan(second.generation);
  expect(f.columns.train.loss).toEqual([6]);
});

test("a missing folder, a folder without metrics, an empty file and a folder in the file's place are states with messages", () => {
  const missing = join(root, "not-yet");
  const f1 = new MetricsFollower(missing, join(missing, "metrics.jsonl"));
  const s1 = f1.poll();
  expect(s1.status).toBe("waiting-folder");
  expect(s1.message).toContain(`${missing} does not exist yet`);

  const dir = folder();
  const path = join(dir, "metrics.jsonl");
  const f2 = new MetricsFollower(dir, path);
  const s2 = f2.poll();
  expect(s2.status).toBe("waiting-metrics");
  expect(s2.message).toContain(`No metrics.jsonl in ${dir} yet`);
  writeFileSync(path, "");
  expect(f2.poll().status).toBe("empty");
  appendFileSync(path, stepLine(1, 5));
  expect(f2.poll().status).toBe("ok");
  rmSync(path);
  const gone = f2.poll();
  expect(gone.status).toBe("waiting-metrics");
  expect(f2.columns.train.step).toEqual([]);

  const odd = folder();
  mkdirSync(join(odd, "metrics.jsonl"));
  const s3 = new MetricsFollower(odd, join(odd, "metrics.jsonl")).poll();
  expect(s3.status).toBe("unreadable");
  expect(s3.message).toContain("is not a file");
});

test("fuzz: metrics lines mixed with damaged ones, written in random pieces, are all read and the damage counted", () => {
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (let round = 0; round < 20; round++) {
    const dir = folder();
    const path = join(dir, "metrics.jsonl");
    let text = "";
    let good = 0, bad = 0, vals = 0;
    for (let i = 0; i < 60; i++) {
      const r = rand();
      if (r < 0.6) text += stepLine(++good, 10 * rand());
      else if (r < 0.7) (text += valLine(good, 5 * rand())), vals++;
      else if (r < 0.8) text += "\n"; // blank lines are not damage
      else {
        // damage: a line cut short, bytes that are not JSON, JSON without a step, a step that is not a number
        const kinds = [stepLine(99, 1).slice(0, 1 + Math.floor(rand() * 30)), "#" + String.fromCharCode(...Array.from({ length: 12 }, () => 33 + Math.floor(rand() * 90))), '{"loss":1}', '{"step":"7","loss":1}', "[1,2]", "null"];
        text += kinds[Math.floor(rand() * kinds.length)]!.replace(/\n/g, "") + "\n";
        bad++;
      }
    }
    const f = new MetricsFollower(dir, path);
    writeFileSync(path, "");
    for (let at = 0; at < text.length; ) {
      const piece = 1 + Math.floor(rand() * 200);
      appendFileSync(path, text.slice(at, at + piece));
      at += piece;
      expect(() => f.poll()).not.toThrow();
    }
    const end = f.poll();
    expect(f.columns.train.step.length).toBe(good);
    expect(f.columns.val.step.length).toBe(vals);
    expect(end.skipped).toBe(bad);
    expect(end.partialBytes).toBe(0);
  }
});

function smoothed(xs: number[]): number[] {
  const s = new Smoother();
  return xs.map((x) => s.next(x));
}
