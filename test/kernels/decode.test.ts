// tv_attention_decode: one new query against a KV cache must equal a plain float64 softmax attention,
// on every ISA level, for awkward head sizes and cache lengths.
import { afterAll, describe, expect, test } from "bun:test";
import * as native from "../../src/native.ts";
import { seededUniform } from "./ref_matmul.ts";
import { referenceDecode } from "./reference.ts";

const best = native.isaBest();
afterAll(() => native.setIsa(best));

describe("attention_decode", () => {
  for (const isa of native.supportedIsas()) {
    for (const [T, C, H] of [[1, 8, 2], [7, 12, 3], [33, 34, 2], [200, 64, 4], [300, 256, 8]] as const) {
      test(`${isa}: T=${T} C=${C} H=${H} matches the float64 reference`, () => {
        native.setIsa(isa);
        const rand = seededUniform(T * 1000 + C);
        const q = Float32Array.from({ length: C }, () => rand() * 2);
        const k = Float32Array.from({ length: T * C }, () => rand() * 2);
        const v = Float32Array.from({ length: T * C }, () => rand());
        const out = new Float32Array(C);
        native.attentionDecode(out, q, k, v, T, C, H);
        const ref = referenceDecode(q, k, v, T, C, H);
        for (let i = 0; i < C; i++) expect(Math.abs(out[i]! - ref[i]!)).toBeLessThan(1e-5);
      });
    }
  }

  test("bad sizes are refused before reaching C", () => {
    const b = new Float32Array(8);
    const cache = new Float32Array(16);
    // 8 channels do not split into 3 heads: refused even when every buffer is long enough.
    expect(() => native.attentionDecode(b, b, cache, cache, 2, 8, 3)).toThrow(/bad sizes/);
    expect(() => native.attentionDecode(b, b, b, b, 2, 8, 2)).toThrow(/k_cache holds 8 elements, needs 16/);
  });

  test("1 and 2 threads give identical bytes", () => {
    const rand = seededUniform(5);
    const [T, C, H] = [512, 128, 4];
    const q = Float32Array.from({ length: C }, rand);
    const k = Float32Array.from({ length: T * C }, rand);
    const v = Float32Array.from({ length: T * C }, rand);
    const a = new Float32Array(C), b = new Float32Array(C);
    const threads = native.getThreads();
    native.setThreads(1);
    native.attentionDecode(a, q, k, v, T, C, H);
    native.setThreads(2);
    native.attentionDecode(b, q, k, v, T, C, H);
    native.setThreads(threads);
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
  });
});
