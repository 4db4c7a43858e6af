/**
 * Exact resume where the window order is the seeded permutation (more than ORDER_ARRAY_LIMIT
 * training windows): a stage stopped by --max-steps and resumed ends with the bytes of one never
 * stopped. Windows of one token keep the data small (4.5 M ids).
 */
import { afterAll, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { ORDER_ARRAY_LIMIT } from "../../src/data/windows.ts";
import { learnableText, runCli, tempFolder, TINY, withFlags, writeText } from "../cli/helpers.ts";

setDefaultTimeout(120_000);
const tmp = tempFolder("tv-perm-");
afterAll(() => tmp.cleanup());

test("above the array limit, --max-steps then resume gives the uninterrupted run's checkpoint", async () => {
  const dir = tmp.dir;
  writeText(dir, "v.txt", learnableText(300, 1));
  const data = writeText(dir, "data.txt", learnableText(520_000, 9));
  const vocab = join(dir, "tok.vocab");
  const flags = [...withFlags(TINY, "--max-length", "1", "--batch-size", "8"), "--epochs", "1", "--vocab", vocab, "--data", data, "--token-cache", join(dir, "cache")];
  expect((await runCli(["tokenizer", "train", "--data", "v.txt", "--vocab", vocab, "--vocab-size", "300"], dir)).code).toBe(0);
  const straight = await runCli([...flags, "--output", join(dir, "straight"), "--max-steps", "6"], dir);
  expect(straight.code).toBe(0);
  const windows = Number(/Windows: ([\d,]+) for training/.exec(straight.stdout)![1]!.replaceAll(",", ""));
  expect(windows).toBeGreaterThan(ORDER_ARRAY_LIMIT);
  const cut = await runCli([...flags, "--output", join(dir, "cut"), "--max-steps", "3"], dir);
  expect(cut.code).toBe(0);
  const resumed = await runCli(["resume", join(dir, "cut", "model_checkpoint.bin"), "--data", data, "--vocab", vocab, "--token-cache", join(dir, "cache"), "--max-steps", "3", "--threads", "1"], dir);
  expect(resumed.code).toBe(0);
  expect(resumed.stdout).toContain("Continuing stage 0");
  const a = readFileSync(join(dir, "straight", "model_checkpoint.bin")), b = readFileSync(join(dir, "cut", "model_checkpoint.bin"));
  expect(Buffer.compare(a, b)).toBe(0);
});
