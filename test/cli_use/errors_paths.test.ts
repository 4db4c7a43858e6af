/** A path of the wrong kind (a folder for a file, a file for a folder, a missing or unreadable file) is
 * one line naming the argument or flag as typed and what to give instead: exit 2, no stack trace. */
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { REPO, runCli, tempDir, tinyModelFiles } from "../generate/fixtures.ts";

const { dir, cleanup } = tempDir("tv-errpaths-");
afterAll(cleanup);

// run/ is a training output folder (model_checkpoint.bin, tokenizer.vocab); bare/ is an empty folder;
// hf/ stands for a HuggingFace folder (only the names matter to these checks).
mkdirSync(join(dir, "run"));
tinyModelFiles(join(dir, "run"));
mkdirSync(join(dir, "bare"));
mkdirSync(join(dir, "hf"));
writeFileSync(join(dir, "hf", "config.json"), "{}\n");
writeFileSync(join(dir, "hf", "tokenizer.json"), "{}\n");
writeFileSync(join(dir, "sample.txt"), "the cat sat on the mat\n");
writeFileSync(join(dir, "ids.txt"), "1 2 3\n");

const VOCAB = ["--vocab", "run/tokenizer.vocab"];

/** Runs the CLI in the temp folder (so messages show the relative paths as typed). */
function cli(...args: string[]) {
  return runCli(args, { cwd: dir });
}

function expectUserError(r: { code: number | null; stdout: string; stderr: string }, ...parts: string[]): void {
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 2, stderr: expect.stringMatching(/^error: /) });
  for (const p of parts) expect(r.stderr).toContain(p);
  expect(r.stderr.trim().split("\n")).toHaveLength(1);
  expect(r.stderr).not.toContain("    at ");
  expect(r.stderr).not.toMatch(/EISDIR|ENOENT|EACCES/);
}

describe("tokenizer: the input file", () => {
  test("encode, decode and inspect with a folder say so (encode used to print a stack trace)", () => {
    expectUserError(cli("tokenizer", "encode", "run/", ...VOCAB), "tokenizer encode run/: that is a folder, not a file", "Give the text file to encode");
    expectUserError(cli("tokenizer", "decode", "run/", ...VOCAB), "tokenizer decode run/: that is a folder, not a file", "file of ids");
    const inspect = cli("tokenizer", "inspect", "run/", ...VOCAB);
    expectUserError(inspect, "tokenizer inspect run/: that is a folder, not a file");
    expect(inspect.stdout).toBe(""); // no report before the error
  });

  test("a missing input is 'no such file', not 'the folder does not exist'", () => {
    for (const action of ["encode", "decode", "inspect"]) {
      const r = cli("tokenizer", action, "missing.txt", ...VOCAB);
      expectUserError(r, `tokenizer ${action} missing.txt: no such file.`);
      expect(r.stderr).not.toContain("folder does not exist");
    }
  });

  test("import-hf names the tokenizer.json it takes, and points into a folder that holds one", () => {
    expectUserError(cli("tokenizer", "import-hf", "hf/", "--vocab", "out/x.vocab"), "tokenizer import-hf hf/: that is a folder, not a file. Did you mean hf/tokenizer.json?");
    const bare = cli("tokenizer", "import-hf", "bare/", "--vocab", "out/x.vocab");
    expectUserError(bare, "tokenizer import-hf bare/: that is a folder", "Give the tokenizer.json file to import", "train_vocab import");
    expect(bare.stderr).not.toContain("vocab file");
    expectUserError(cli("tokenizer", "import-hf", "missing.json", "--vocab", "out/x.vocab"), "tokenizer import-hf missing.json: no such file.");
    // the input is checked before the --vocab to write (an existing one would be refused otherwise)
    expectUserError(cli("tokenizer", "import-hf", "bare/", ...VOCAB), "tokenizer import-hf bare/: that is a folder");
  });

  test("--vocab: a folder (with the vocabulary in it named), a missing file", () => {
    expectUserError(cli("tokenizer", "encode", "sample.txt", "--vocab", "run/"), "--vocab run/: that is a folder, not a file. Did you mean run/tokenizer.vocab?");
    expectUserError(cli("tokenizer", "export-hf", "--vocab", "bare/", "--out", "t.json"), "--vocab bare/: that is a folder, not a file. Give the .vocab file");
    expectUserError(cli("tokenizer", "decode", "ids.txt", "--vocab", "missing.vocab"), "--vocab missing.vocab: no such file.");
  });

  test("--out of encode: a folder is refused before the work", () => {
    expectUserError(cli("tokenizer", "encode", "sample.txt", ...VOCAB, "--out", "bare/"), "--out bare/: that is a folder");
    expectUserError(cli("tokenizer", "encode", "sample.txt", ...VOCAB, "--out", "nowhere/x.ids"), "--out nowhere/x.ids: cannot write it (the folder does not exist)");
  });

  test("the same actions on good files still work", () => {
    const enc = cli("tokenizer", "encode", "sample.txt", ...VOCAB);
    expect(enc.code).toBe(0);
    const dec = runCli(["tokenizer", "decode", "-", ...VOCAB], { cwd: dir, stdin: enc.stdout });
    expect({ code: dec.code, out: dec.stdout }).toEqual({ code: 0, out: "the cat sat on the mat\n" });
    expect(cli("tokenizer", "inspect", "sample.txt", ...VOCAB).stdout).toContain("bytes per token");
    writeFileSync(join(dir, "nothing.txt"), "");
    expect(cli("tokenizer", "inspect", "nothing.txt", ...VOCAB).stdout).toContain("on nothing.txt: empty, nothing to measure");
  });
});

describe("unreadable files", () => {
  // chmod 000 does not stop root; as root, the CLI runs as nobody (setpriv) when that is possible.
  const root = process.getuid?.() === 0;
  const setpriv = Bun.which("setpriv");
  const asUser = (args: string[]) => {
    if (!root) return cli(...args);
    const proc = Bun.spawnSync(
      [setpriv!, "--reuid=65534", "--regid=65534", "--clear-groups", "bun", "run", join(REPO, "bin", "train-vocab.ts"), ...args],
      { cwd: dir, stdin: "ignore", env: { ...process.env, HOME: "/nonexistent", NO_COLOR: "1" } },
    );
    return { code: proc.exitCode, stdout: proc.stdout.toString(), stderr: proc.stderr.toString() };
  };

  // As nobody, the CLI's own files must be readable (a checkout inside a private folder is not).
  const nobodyRuns = !root || (setpriv !== null && Bun.spawnSync([setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "test", "-r", join(REPO, "bin", "train-vocab.ts")]).exitCode === 0);

  test.skipIf(!nobodyRuns)("an input, a --vocab and a --config that cannot be read: permission denied, named", () => {
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, "locked.txt"), "text\n");
    writeFileSync(join(dir, "locked.vocab"), "x\n");
    writeFileSync(join(dir, "locked.json"), "{}\n");
    for (const f of ["locked.txt", "locked.vocab", "locked.json"]) chmodSync(join(dir, f), 0);
    for (const f of ["run", "run/tokenizer.vocab", "sample.txt"]) chmodSync(join(dir, f), f === "run" ? 0o755 : 0o644);
    for (const action of ["encode", "decode", "inspect"]) {
      expectUserError(asUser(["tokenizer", action, "locked.txt", ...VOCAB]), `tokenizer ${action} locked.txt: cannot read it (permission denied)`);
    }
    expectUserError(asUser(["tokenizer", "import-hf", "locked.txt", "--vocab", "out/x.vocab"]), "tokenizer import-hf locked.txt: cannot read it (permission denied)");
    expectUserError(asUser(["tokenizer", "encode", "sample.txt", "--vocab", "locked.vocab"]), "--vocab locked.vocab: cannot read it (permission denied)");
    // any command reading a vocabulary (this one used to print a stack trace)
    expectUserError(asUser(["generate", "run/model_checkpoint.bin", "--vocab", "locked.vocab"]), "locked.vocab: cannot read it (permission denied)");
    expectUserError(asUser(["--config", "locked.json"]), "--config locked.json: cannot read it (permission denied)");
  });
});

describe("--config", () => {
  test("a folder is named as a folder, with what --config takes", () => {
    for (const args of [["--config", "run/"], ["--data", "sample.txt", "--config", "run/"]]) {
      expectUserError(cli(...args), "--config run/: that is a folder, not a file", "--config takes a JSON file of options");
    }
  });

  test("a missing file is 'file not found'", () => {
    expectUserError(cli("--config", "missing.json"), "--config missing.json: file not found.", "configs/tiny.json");
  });
});

describe("export, inspect, import: the model argument first", () => {
  test("export with a folder says it is a folder, not that the default vocabulary is missing", () => {
    const r = cli("export", "run/", "--out", "hfx");
    expectUserError(r, "run/ is a folder; expected a checkpoint file. Did you mean run/model_checkpoint.bin?");
    expect(r.stderr).not.toContain("Vocabulary");
    expectUserError(cli("export", "bare/", "--out", "hfx"), "bare/ is a folder; expected a checkpoint file", "model_checkpoint.bin");
    expectUserError(cli("export", "run", "--format", "lopos", "--out", "x.bin"), "run is a folder; expected a checkpoint file. Did you mean run/model_checkpoint.bin?");
  });

  test("export with another kind of file as the checkpoint names that before the vocabulary", () => {
    const r = cli("export", "run/tokenizer.vocab", "--out", "hfx");
    expectUserError(r, "run/tokenizer.vocab", "not a checkpoint");
    expect(r.stderr).not.toContain("Vocabulary file not found");
  });

  test("inspect with a folder says it is a folder", () => {
    expectUserError(cli("inspect", "run/"), "run/ is a folder; expected a checkpoint file");
  });

  test("import with a file names it and the folder it takes; a file inside a model folder points to the folder", () => {
    expectUserError(cli("import", "sample.txt", "--out", "imp/m.bin"), "import sample.txt: that is a file, not a folder. Give the folder saved by save_pretrained");
    expectUserError(cli("import", "hf/config.json", "--out", "imp/m.bin"), "Did you mean its folder hf?");
    expectUserError(cli("import", "hf/tokenizer.json", "--out", "imp/m.bin"), "train_vocab tokenizer import-hf hf/tokenizer.json");
    // checked before the outputs: an existing --out is not what is reported
    expectUserError(cli("import", "sample.txt", "--out", "run/model_checkpoint.bin"), "import sample.txt: that is a file");
    expectUserError(cli("import", "nowhere/", "--out", "run/model_checkpoint.bin"), "Model folder not found: nowhere/.");
  });
});
