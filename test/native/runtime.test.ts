// The runtime layer: ISA dispatch and its override, the thread count, and the library loader's errors.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import * as native from "../../src/native.ts";

const root = join(import.meta.dir, "..", "..");
const cli = join(root, "bin", "train-vocab.ts");

function doctor(env: Record<string, string>): { code: number; json: Record<string, unknown> | null; stderr: string } {
  const run = Bun.spawnSync(["bun", "run", cli, "doctor", "--json"], { env: { ...process.env, ...env }, cwd: root });
  const out = run.stdout.toString();
  return { code: run.exitCode, json: run.exitCode === 0 ? JSON.parse(out) : null, stderr: run.stderr.toString() };
}

describe("ISA dispatch", () => {
  test("the best level is chosen by default and every lower level can be selected", () => {
    const best = native.isaBest();
    const levels = native.supportedIsas();
    expect(levels[levels.length - 1]).toBe(best);
    expect(levels[0]).toBe("portable");
    for (const level of levels) {
      native.setIsa(level);
      expect(native.isaCurrent()).toBe(level);
    }
    native.setIsa(best);
  });

  test("a level above the CPU's best is refused", () => {
    const unsupported = native.ISA_LEVELS.filter((l) => !native.supportedIsas().includes(l));
    for (const level of unsupported) expect(() => native.setIsa(level)).toThrow(/not supported/);
  });

  test("TRAIN_VOCAB_ISA forces a lower level in a new process, and doctor reports it", () => {
    const r = doctor({ TRAIN_VOCAB_ISA: "portable" });
    expect(r.code).toBe(0);
    expect(r.json!.isa_in_use).toBe("portable");
    expect(r.json!.isa_best).toBe(native.isaBest());
  });

  test("TRAIN_VOCAB_ISA never raises the level above what the CPU supports", () => {
    const r = doctor({ TRAIN_VOCAB_ISA: "avx512" });
    expect(r.json!.isa_in_use).toBe(native.isaBest());
  });
});

describe("threads", () => {
  test("thread count is configurable and TRAIN_VOCAB_THREADS sets the default", () => {
    const before = native.getThreads();
    native.setThreads(1);
    expect(native.getThreads()).toBe(1);
    native.setThreads(3);
    expect(native.getThreads()).toBe(3);
    native.setThreads(before);
    expect(() => native.setThreads(0)).toThrow(RangeError);
    expect(doctor({ TRAIN_VOCAB_THREADS: "1" }).json!.threads).toBe(1);
  });
});

describe("loader", () => {
  test("a missing library is a clear error that says how to build it", () => {
    const r = doctor({ TRAIN_VOCAB_LIB: join(root, "build", "no-such-library.so") });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("Cannot load the native library");
    expect(r.stderr).toContain("make");
  });
});

describe("buffer checks before the FFI call", () => {
  test("a buffer shorter than its shape is refused on the TypeScript side", () => {
    const small = new Float32Array(3);
    expect(() => native.geluForward(small, new Float32Array(4), 4)).toThrow(/out holds 3 elements, needs 4/);
    expect(() => native.matmulForward(new Float32Array(6), new Float32Array(6), new Float32Array(8), null, 2, 3, 3)).toThrow(
      /weight holds 8 elements, needs 9/,
    );
    expect(() => native.geluForward(small, small, 2.5)).toThrow(/positive integer/);
  });
});
