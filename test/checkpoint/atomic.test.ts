import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { atomicWrite } from "../../src/base/files.ts";
import { readCheckpoint, writeCheckpoint } from "../../src/checkpoint/index.ts";
import { UserError } from "../../src/base/errors.ts";
import { paramsFor, tempDir, tinyArch } from "./helpers.ts";

const tmp = tempDir();
afterAll(tmp.cleanup);

function fsError(code: string): Error {
  return Object.assign(new Error(`${code}: simulated`), { code });
}

describe("atomicWrite", () => {
  test("replaces the file with the concatenated chunks and leaves no temp file", () => {
    const path = join(tmp.dir, "a.txt");
    writeFileSync(path, "old contents");
    atomicWrite(path, ["hello ", new Uint8Array([0x77, 0x6f]), new Float32Array([1]).subarray(0, 0), Buffer.from("rld")]);
    expect(readFileSync(path, "utf8")).toBe("hello world");
    atomicWrite(path, "single string");
    expect(readFileSync(path, "utf8")).toBe("single string");
    expect(readdirSync(tmp.dir).filter((f) => f.includes(".tmp"))).toEqual([]);
  });

  test("keeps the permissions of the file it replaces", () => {
    const path = join(tmp.dir, "mode.txt");
    writeFileSync(path, "x");
    chmodSync(path, 0o600);
    atomicWrite(path, "y");
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  test("a failure mid-write (disk full) keeps the old file, removes the temp file, names the path", () => {
    const path = join(tmp.dir, "keep.txt");
    writeFileSync(path, "previous");
    function* failing() {
      yield "partial data";
      throw fsError("ENOSPC");
    }
    expect(() => atomicWrite(path, failing())).toThrow(new UserError(`Could not write ${path}: no space left on the device. Free some space or choose another output folder; the previous file (if any) is unchanged.`));
    expect(readFileSync(path, "utf8")).toBe("previous");
    expect(readdirSync(tmp.dir).filter((f) => f.startsWith(".keep.txt"))).toEqual([]);
  });

  test("a bug (an error without a system code) is rethrown as itself, still cleaning up", () => {
    const path = join(tmp.dir, "bug.txt");
    const bug = new TypeError("not a user problem");
    function* failing() {
      yield "x";
      throw bug;
    }
    expect(() => atomicWrite(path, failing())).toThrow(bug);
    expect(readdirSync(tmp.dir).filter((f) => f.startsWith(".bug.txt"))).toEqual([]);
  });

  test("a missing folder is a UserError with a hint", () => {
    const path = join(tmp.dir, "no-such-folder", "f.bin");
    expect(() => atomicWrite(path, "x")).toThrow(/Could not write .*no-such-folder\/f\.bin: the folder does not exist\. Create the folder/);
  });
});

describe("checkpoint writes under a file-size limit", () => {
  test("EFBIG: the previous checkpoint stays intact and readable, the error names the path", async () => {
    const path = join(tmp.dir, "model_checkpoint.bin");
    const params = paramsFor(tinyArch, 5);
    writeCheckpoint(path, { arch: tinyArch, tokenizer: null, training: null, params });
    const before = readFileSync(path);
    expect(before.byteLength).toBeLessThan(64 * 1024);

    // 256 KiB limit, a ~1.2 MB checkpoint. SIGXFSZ is ignored (inherited across exec) so write(2)
    // returns EFBIG instead of killing the child, as it would for a server started that way.
    const fixture = join(import.meta.dir, "fixtures", "write_checkpoint.ts");
    const child = Bun.spawn(["bash", "-c", 'trap "" XFSZ; ulimit -f 256; exec "$@"', "bash", process.execPath, fixture, path, "4096"], {
      stdout: "pipe",
      stderr: "pipe",
    });
    const out = await new Response(child.stdout).text();
    expect(await child.exited).toBe(0);
    const result = JSON.parse(out) as { ok: boolean; userError?: boolean; message?: string };
    expect(result.ok).toBe(false);
    expect(result.userError).toBe(true);
    expect(result.message).toBe(
      `Could not write ${path}: the file is larger than the file-size limit allows. Raise the limit (ulimit -f) or choose another output folder; the previous file (if any) is unchanged.`,
    );
    expect(Buffer.compare(readFileSync(path), before)).toBe(0);
    expect(readCheckpoint(path).params).toEqual(params);
    expect(readdirSync(tmp.dir).filter((f) => f.endsWith(".tmp"))).toEqual([]);

    // Without the limit the same child succeeds, so the failure above was the limit.
    const ok = Bun.spawn([process.execPath, fixture, path, "4096"], { stdout: "pipe" });
    expect(JSON.parse(await new Response(ok.stdout).text())).toEqual({ ok: true });
    expect(readCheckpoint(path).arch.vocab_size).toBe(4096);
  });
});
