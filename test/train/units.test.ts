/** The pure parts of training: schedule, RNG state round trips, data windows and their order. */
import { expect, test } from "bun:test";
import { TokenWindows, epochOrder } from "../../src/data/windows.ts";
import { learningRate } from "../../src/train/schedule.ts";
import { Xoshiro128 } from "../../src/base/rng.ts";
import { epochRng } from "../../src/train/loop.ts";
import { arithmeticLine } from "../../src/train/report.ts";

const plan = { peak_lr: 1e-3, min_lr: 1e-4, warmup_steps: 10, total_steps: 110 };

test("learning rate: linear warmup to the peak, cosine down to min_lr at the stage's last step", () => {
  expect(learningRate(0, plan)).toBeCloseTo(1e-4, 12);
  expect(learningRate(9, plan)).toBeCloseTo(1e-3, 12);
  expect(learningRate(10, plan)).toBeCloseTo(1e-3, 12);
  expect(learningRate(60, plan)).toBeCloseTo(5.5e-4, 12);
  expect(learningRate(110, plan)).toBeCloseTo(1e-4, 12);
  expect(learningRate(500, plan)).toBeCloseTo(1e-4, 12);
  for (let s = 11; s < 110; s++) expect(learningRate(s, plan)).toBeLessThan(learningRate(s - 1, plan));
});

test("RNG: a saved state continues the same stream; a seed always gives the same stream", () => {
  const a = Xoshiro128.fromSeed(42);
  for (let i = 0; i < 10; i++) a.nextU32();
  const b = Xoshiro128.deserialize(a.serialize());
  for (let i = 0; i < 100; i++) expect(b.nextU32()).toBe(a.nextU32());
  expect(Xoshiro128.fromSeed(7).nextU32()).toBe(Xoshiro128.fromSeed(7).nextU32());
  expect(() => Xoshiro128.deserialize("nonsense")).toThrow();
});

test("epoch order: a permutation, rebuilt identically from (seed, stage, epoch), different per epoch", () => {
  const o1 = epochOrder(1000, epochRng(1, 0, 0));
  expect([...o1].sort((x, y) => x - y)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
  expect(epochOrder(1000, epochRng(1, 0, 0))).toEqual(o1);
  expect(epochOrder(1000, epochRng(1, 0, 1))).not.toEqual(o1);
  expect(epochOrder(1000, epochRng(1, 1, 0))).not.toEqual(o1);
});

test("windows: T+1 ids each, every id a target once, the last windows held out", () => {
  const ids = Uint32Array.from({ length: 101 }, (_, i) => i);
  const w = new TokenWindows(ids, 10, 0.2);
  expect([w.count, w.trainCount, w.valCount]).toEqual([10, 8, 2]);
  const tokens = new Int32Array(20), targets = new Int32Array(20);
  w.fill([3, 9], tokens, targets);
  expect([...tokens.subarray(0, 10)]).toEqual([30, 31, 32, 33, 34, 35, 36, 37, 38, 39]);
  expect([...targets.subarray(10, 20)]).toEqual([91, 92, 93, 94, 95, 96, 97, 98, 99, 100]);
  expect(() => new TokenWindows(ids.subarray(0, 10), 10, 0)).toThrow(/too few for one window/);
});

test("the arithmetic line says what the products run in, and when bf16 is available or falls back", () => {
  expect(arithmeticLine("fp32", false)).toBe("Arithmetic: fp32");
  expect(arithmeticLine("fp32", true)).toContain("--precision bf16 would train faster");
  expect(arithmeticLine("bf16", true)).toStartWith("Arithmetic: bf16 operands in the matmuls and attention");
  expect(arithmeticLine("bf16", false)).toContain("no AVX512_BF16: its products run in fp32");
});
