/**
 * import of a folder whose config.json declares an architecture far larger than its weight files:
 * refused by the tensors' shapes before the parameter buffer is allocated (the file sizes bound every
 * allocation), never an out-of-memory error or gigabytes allocated for a kilobyte file.
 */
import { afterAll, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../../src/base/errors.ts";
import { exportHf } from "../../src/hf/export.ts";
import { importHf } from "../../src/hf/import.ts";
import { type Architecture, parameterCount } from "../../src/model/layout.ts";
import { tempDir } from "../checkpoint/helpers.ts";

const tmp = tempDir();
afterAll(() => tmp.cleanup());

const arch: Architecture = { d_model: 8, num_heads: 2, num_layers: 1, d_ff: 16, vocab_size: 300, max_seq_len: 8, tied_embeddings: true, attention_bias: true };

test("a config.json declaring a huge model next to small weights is a UserError, with nothing large allocated", () => {
  const dir = join(tmp.dir, "hostile");
  exportHf(arch, new Float32Array(parameterCount(arch)).fill(0.5), null, dir);
  const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
  const cases: Record<string, number>[] = [
    { n_embd: 65536, n_head: 64, n_layer: 1024, n_inner: 262144 }, // ~5e13 parameters: beyond any allocation
    { n_embd: 4096, n_head: 32, n_layer: 64 }, // ~13e9 parameters
    { n_layer: 1024 }, // more layers than the file has
    { vocab_size: 1 << 24 },
    { n_positions: 1 << 20 },
  ];
  for (const change of cases) {
    writeFileSync(join(dir, "config.json"), JSON.stringify({ ...config, ...change }));
    const rssBefore = process.memoryUsage.rss();
    let error: unknown;
    try {
      importHf(dir);
    } catch (err) {
      error = err;
    }
    expect({ change, userError: error instanceof UserError }).toEqual({ change, userError: true });
    expect((error as Error).message).toMatch(/has shape \[.*\] but config\.json implies|is missing/);
    expect(process.memoryUsage.rss() - rssBefore).toBeLessThan(64 * 2 ** 20);
  }
  // The unchanged config still imports.
  writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  expect(importHf(dir).arch).toMatchObject({ d_model: 8, num_layers: 1, vocab_size: 300 });
});
