// tv_attention_decode_rows: B sequences' new queries against their own KV caches in one call must
// equal a float64 softmax attention per sequence, give each row the bytes of a separate
// tv_attention_decode call (lengths 1, around the 64-position chunk, unequal; whole sequences per
// task or head by head; rows sharing a cache, as a prompt's positions, in groups), and not depend
// on the thread count.
import { afterAll, describe, expect, test } from "bun:test";
import * as native from "../../src/native.ts";
import { seededUniform } from "./ref_matmul.ts";
import { referenceDecode } from "./reference.ts";

/** B sequences with caches of capacity P (longer than they are filled) and queries at stride 3C. */
function batch(lengths: number[], C: number, seed: number) {
  const rand = seededUniform(seed);
  const B = lengths.length, P = Math.max(...lengths) + 3, stride = 3 * C;
  const q = Float32Array.from({ length: B * stride }, () => rand() * 2);
  const k = lengths.map(() => Float32Array.from({ length: P * C }, () => rand() * 2));
  const v = lengths.map(() => Float32Array.from({ length: P * C }, rand));
  return { B, q, k, v, stride, lengths: Int32Array.from(lengths) };
}

const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
const best = native.isaBest();
afterAll(() => native.setIsa(best));

const CASES: [number[], number, number][] = [
  [[1], 8, 2],
  [[1, 1, 1], 12, 3],
  [[7, 64, 65, 1], 34, 2],
  [[200, 3, 129, 64, 1, 90], 64, 4],
  [Array.from({ length: 16 }, (_, b) => 1 + ((b * 37) % 150)), 128, 4],
  [[300, 17], 256, 8],
  // Enough sequences for whole sequences per task, one of them wider than the kernel's per-sequence
  // buffer (4096 channels), which goes head by head instead.
  [[3, 1, 70, 2, 5, 1, 9, 64], 4200, 5],
];

describe("attention_decode_rows", () => {
  for (const isa of native.supportedIsas()) {
    for (const [lengths, C, H] of CASES) {
      test(`${isa}: B=${lengths.length} C=${C} H=${H}: the float64 reference, and each row the bytes of its own tv_attention_decode`, () => {
        native.setIsa(isa);
        const { B, q, k, v, stride, lengths: L } = batch(lengths, C, lengths.length * 1000 + C);
        const out = new Float32Array(B * C).fill(Number.NaN);
        native.attentionDecodeRows(out, q, k, v, L, B, C, H, stride);
        for (let b = 0; b < B; b++) {
          const qb = q.subarray(b * stride, b * stride + C);
          const row = out.subarray(b * C, (b + 1) * C);
          const ref = referenceDecode(qb, k[b]!, v[b]!, lengths[b]!, C, H);
          for (let i = 0; i < C; i++) expect(Math.abs(row[i]! - ref[i]!)).toBeLessThan(1e-5);
          const one = new Float32Array(C);
          native.attentionDecode(one, qb, k[b]!, v[b]!, lengths[b]!, C, H);
          expect(bytes(row).equals(bytes(one))).toBe(true);
        }
      });
    }
  }

  for (const isa of native.supportedIsas()) {
    test(`${isa}: rows that share a cache (a prompt's positions, grouped to read it once) each have the bytes of their own call`, () => {
      native.setIsa(isa);
      for (const [C, H] of [[64, 4], [256, 2], [1088, 17], [1100, 4]] as const) {
        const rand = seededUniform(C * 7 + H);
        const P = 150, stride = 3 * C;
        const shared = { k: Float32Array.from({ length: P * C }, () => rand() * 2), v: Float32Array.from({ length: P * C }, rand) };
        const other = { k: Float32Array.from({ length: P * C }, () => rand() * 2), v: Float32Array.from({ length: P * C }, rand) };
        // Another sequence's row, then a prompt's 70 positions (1..70, across the 64-position chunk),
        // then the other again, then 11 more rows of the prompt cache out of order.
        const rows = [{ c: other, len: 33 }, ...Array.from({ length: 70 }, (_, i) => ({ c: shared, len: i + 1 })), { c: other, len: 34 },
          ...[140, 3, 65, 64, 150, 1, 2, 99, 100, 128, 129].map((len) => ({ c: shared, len }))];
        const B = rows.length;
        const q = Float32Array.from({ length: B * stride }, () => rand() * 2);
        const out = new Float32Array(B * C).fill(Number.NaN);
        native.attentionDecodeRows(out, q, rows.map((r) => r.c.k), rows.map((r) => r.c.v), Int32Array.from(rows.map((r) => r.len)), B, C, H, stride);
        let same = true;
        for (let b = 0; b < B; b++) {
          const one = new Float32Array(C);
          native.attentionDecode(one, q.subarray(b * stride, b * stride + C), rows[b]!.c.k, rows[b]!.c.v, rows[b]!.len, C, H);
          if (!bytes(out.subarray(b * C, (b + 1) * C)).equals(bytes(one))) same = false;
        }
        expect([isa, C, H, same]).toEqual([isa, C, H, true]);
      }
    });
  }

  // 8 sequences go whole sequence per task on 1 and 2 threads; 4 go whole on 1 thread and head by
  // head on 2.
  for (const lengths of [[512, 1, 300, 64, 65, 200, 7, 480], [130, 1, 64, 65]]) {
    test(`1 and 2 threads give identical bytes (B=${lengths.length})`, () => {
      const { B, q, k, v, stride, lengths: L } = batch(lengths, 128, 9);
      const C = 128, H = 4;
      const a = new Float32Array(B * C), b = new Float32Array(B * C);
      const threads = native.getThreads();
      try {
        native.setThreads(1);
        native.attentionDecodeRows(a, q, k, v, L, B, C, H, stride);
        native.setThreads(2);
        native.attentionDecodeRows(b, q, k, v, L, B, C, H, stride);
      } finally {
        native.setThreads(threads);
      }
      expect(bytes(a).equals(bytes(b))).toBe(true);
    });
  }

  test("bad sizes are refused", () => {
    const { B, q, k, v, stride, lengths } = batch([3, 2], 8, 1);
    const out = new Float32Array(B * 8);
    // 8 channels do not split into 3 heads: refused by C even when every buffer is long enough.
    expect(() => native.attentionDecodeRows(out, q, k, v, lengths, B, 8, 3, stride)).toThrow(/bad sizes/);
    // A query stride shorter than a row.
    expect(() => native.attentionDecodeRows(out, q, k, v, lengths, B, 8, 2, 4)).toThrow(/bad sizes/);
    expect(() => native.attentionDecodeRows(out, q, k, v, Int32Array.of(3, 0), B, 8, 2, stride)).toThrow(RangeError);
    expect(() => native.attentionDecodeRows(out, q, k, v, Int32Array.of(3, 99), B, 8, 2, stride)).toThrow(/k_caches\[1\] holds/);
    expect(() => native.attentionDecodeRows(out, q, k.slice(0, 1), v, lengths, B, 8, 2, stride)).toThrow(RangeError);
  });
});
