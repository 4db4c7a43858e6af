/**
 * The short fuzz run: a few hundred seeded mutants of every file format through the real readers
 * (the long run is `bun run fuzz`). No case may crash, hang, throw anything but a UserError, or grow
 * memory far past the file's size; each format must also see both outcomes (some mutants still load,
 * most are refused), or the mutations are not reaching the reader.
 */
import { expect, setDefaultTimeout, test } from "bun:test";
import { resolve } from "node:path";
import { FORMATS } from "../../fuzz/formats.ts";
import { caseSeed, jsonStructure, rng } from "../../fuzz/mutate.ts";

setDefaultTimeout(300_000);

const RUNNER = resolve(import.meta.dir, "../../fuzz/run.ts");
const CASES = Number(process.env.FUZZ_CASES ?? 200);
const SEED = Number(process.env.FUZZ_SEED ?? 20261129);

test(`${CASES} seeded mutants per format (${FORMATS.length} formats): each a valid load or a clear error, never a bug`, async () => {
  const proc = Bun.spawn([process.execPath, RUNNER, "--cases", String(CASES), "--seed", String(SEED), "--json"], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  const summary = JSON.parse(out) as { formats: Record<string, { ok: number; error: number; bug: number }>; bugs: unknown[]; seconds: number };
  expect({ bugs: summary.bugs, stderr: err.slice(-2000) }).toEqual({ bugs: [], stderr: "" });
  expect(code).toBe(0);
  for (const format of FORMATS) {
    const t = summary.formats[format]!;
    expect({ format, total: t.ok + t.error + t.bug }).toEqual({ format, total: CASES });
    expect({ format, refused: t.error > CASES / 2 }).toEqual({ format, refused: true });
  }
  // Formats without a checksum or fingerprint over everything must let some mutants through.
  for (const format of ["lopos", "loopos-vocab", "tokenizer-json", "train-config", "hf-config", "hf-weights"]) {
    expect({ format, loaded: summary.formats[format]!.ok > 0 }).toEqual({ format, loaded: true });
  }
  console.log(
    `fuzz (seed ${SEED}): ${CASES * FORMATS.length} cases in ${summary.seconds.toFixed(1)} s — ` +
      FORMATS.map((f) => `${f} ${summary.formats[f]!.ok} loaded/${summary.formats[f]!.error} refused`).join(", "),
  );
});

test("the fuzzer's cases are reproducible from (seed, format, case); its runner counts exceptions, crashes and runaway memory as bugs", async () => {
  expect(caseSeed(1, "vocab", 5)).toBe(caseSeed(1, "vocab", 5));
  expect(caseSeed(1, "vocab", 5)).not.toBe(caseSeed(1, "vocab", 6));
  const mutate = jsonStructure();
  const valid = new TextEncoder().encode(JSON.stringify({ a: [1, 2, { b: "c" }], d: 4 }));
  const a = mutate(rng(9), valid);
  const b = mutate(rng(9), valid);
  expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
  expect(Buffer.from(a).equals(Buffer.from(valid))).toBe(false);
  // The runner's own check: a format whose reader sometimes throws a TypeError or kills its process.
  const self = Bun.spawnSync([process.execPath, RUNNER, "--formats", "selftest", "--cases", "24", "--seed", "3", "--json"]);
  expect(self.exitCode).toBe(1);
  const report = JSON.parse(self.stdout.toString()) as { formats: { selftest: { ok: number; error: number; bug: number } }; bugs: { detail: string }[] };
  const t = report.formats.selftest;
  expect(t.ok + t.error + t.bug).toBe(24);
  expect(t.ok).toBeGreaterThan(0);
  expect(t.error).toBeGreaterThan(0);
  expect(report.bugs.some((b) => b.detail.startsWith("TypeError: not a UserError"))).toBe(true);
  expect(report.bugs.some((b) => b.detail.startsWith("worker died (SIGKILL)"))).toBe(true);
  expect(report.bugs.some((b) => /^resident memory grew by 2\d\d MiB for a 4-byte file/.test(b.detail))).toBe(true);
  // An unknown format is refused by the runner (exit 2) rather than silently fuzzing nothing.
  const bad = Bun.spawnSync([process.execPath, RUNNER, "--formats", "nope"]);
  expect(bad.exitCode).toBe(2);
  expect(bad.stderr.toString()).toContain('unknown format "nope"');
});
