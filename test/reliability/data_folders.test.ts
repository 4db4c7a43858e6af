/**
 * Data folders as users have them: symbolic link loops (`s1 -> .`) are skipped with one notice
 * instead of hanging or counting a file over and over, a file reached twice through links is read
 * once, and an output folder inside the data folder is not read as data. Through the CLI, for
 * training, `tokenizer train` and `eval`; every run is bounded in time (a hang fails, not blocks).
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { listDataFiles } from "../../src/tokenizer/index.ts";
import { BIN, learnableText, type RunResult, tempFolder, TINY, writeText } from "../cli/helpers.ts";

setDefaultTimeout(120_000);

const tmp = tempFolder("tv-data-folders-");
afterAll(() => tmp.cleanup());
let n = 0;
const fresh = () => {
  const d = join(tmp.dir, `case-${n++}`);
  mkdirSync(d, { recursive: true });
  return d;
};

/** runCli with a deadline: a run still going after `ms` is killed and reported as such. */
async function runBounded(args: string[], cwd: string, ms = 60_000): Promise<RunResult & { timedOut: boolean }> {
  const proc = Bun.spawn(["bun", "run", BIN, ...args], { cwd, stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" } });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    proc.kill("SIGKILL");
  }, ms);
  try {
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    return { code, stdout, stderr, out: stdout + stderr, timedOut };
  } finally {
    clearTimeout(timer);
    proc.kill("SIGKILL");
  }
}

const LOOP_NOTICE = /symbolic link loop/;
const linesMatching = (text: string, re: RegExp) => text.split("\n").filter((l) => re.test(l));

/** A data folder holding one text file and the given links (name -> target). */
function dataFolder(links: Record<string, string>, text = learnableText(200)): string {
  const d = join(fresh(), "data");
  mkdirSync(d, { recursive: true });
  writeText(d, "story.txt", text);
  for (const [name, target] of Object.entries(links)) symlinkSync(target, join(d, name));
  return d;
}

describe("symbolic link loops", () => {
  let twoLoops: { data: string; out: string; vocab: string };

  beforeAll(async () => {
    const data = dataFolder({ s1: ".", s2: "." });
    const base = join(data, "..");
    twoLoops = { data, out: join(base, "out"), vocab: join(base, "tok.vocab") };
  });

  test("two loops (s1 -> ., s2 -> .): training finishes, one notice names both, the file counts once", async () => {
    const { data, out, vocab } = twoLoops;
    const r = await runBounded(["--data", data, "--vocab", vocab, ...TINY, "--epochs", "1", "--output", out], join(data, ".."));
    expect({ timedOut: r.timedOut, code: r.code }).toEqual({ timedOut: false, code: 0 });
    const notices = linesMatching(r.out, LOOP_NOTICE);
    expect(notices).toHaveLength(1);
    expect(notices[0]).toContain("s1 -> .");
    expect(notices[0]).toContain("s2 -> .");
    expect(r.stdout).toMatch(/Data: [\d,]+ tokens from 1 file(?!s)/);
  });

  test("eval reads the looping folder the same way: it finishes, with the notice", async () => {
    // A model of its own (trained on the file alone), so this test does not depend on the one above.
    const { data } = twoLoops;
    const out = join(data, "..", "eval-model");
    const vocab = join(data, "..", "eval.vocab");
    const trained = await runBounded(["--data", join(data, "story.txt"), "--vocab", vocab, ...TINY, "--max-steps", "1", "--output", out], join(data, ".."));
    expect(trained.code).toBe(0);
    const r = await runBounded(["eval", "--checkpoint", join(out, "model_checkpoint.bin"), "--vocab", vocab, "--data", data, "--json"], join(data, ".."));
    expect({ timedOut: r.timedOut, code: r.code, err: r.code === 0 ? "" : r.stderr }).toEqual({ timedOut: false, code: 0, err: "" });
    expect(linesMatching(r.stderr, LOOP_NOTICE)).toHaveLength(1);
    const single = await runBounded(["eval", "--checkpoint", join(out, "model_checkpoint.bin"), "--vocab", vocab, "--data", join(data, "story.txt"), "--json"], join(data, ".."));
    expect(single.code).toBe(0);
    expect(JSON.parse(r.stdout).tokens).toBe(JSON.parse(single.stdout).tokens); // the file counted once
  });

  test("one loop: the file counts once, not once per level of links", async () => {
    const data = dataFolder({ again: "." });
    const r = await runBounded(["--data", data, "--vocab", join(data, "..", "tok.vocab"), ...TINY, "--max-steps", "1", "--output", join(data, "..", "out")], join(data, ".."));
    expect({ timedOut: r.timedOut, code: r.code }).toEqual({ timedOut: false, code: 0 });
    expect(r.stdout).toMatch(/Data: [\d,]+ tokens from 1 file(?!s)/);
    expect(linesMatching(r.out, LOOP_NOTICE)).toEqual([expect.stringContaining("again -> .")]);
  });

  test("a loop reached through a subfolder (sub/up -> ..) and a link to itself are skipped too", async () => {
    const data = dataFolder({ self: "self" });
    mkdirSync(join(data, "sub"));
    writeText(join(data, "sub"), "more.txt", learnableText(50, 7));
    symlinkSync("..", join(data, "sub", "up"));
    const files = listDataFiles(data);
    expect(files).toEqual([join(data, "story.txt"), join(data, "sub", "more.txt")]);
    const r = await runBounded(["tokenizer", "train", "--data", data, "--vocab", join(data, "..", "tok.vocab"), "--vocab-size", "300"], join(data, ".."));
    expect({ timedOut: r.timedOut, code: r.code }).toEqual({ timedOut: false, code: 0 });
    const notices = linesMatching(r.stderr, LOOP_NOTICE);
    expect(notices).toHaveLength(1);
    expect(notices[0]).toContain("self -> self");
    expect(notices[0]).toContain("sub/up -> ..");
    expect(r.stderr).toContain("in 2 file(s)");
  });
});

test("a file reached twice through links (a folder and a link to it) counts once, with a notice", async () => {
  const data = dataFolder({});
  mkdirSync(join(data, "texts"));
  writeText(join(data, "texts"), "more.txt", learnableText(50, 3));
  symlinkSync("texts", join(data, "also-texts"));
  symlinkSync("story.txt", join(data, "story-link.txt"));
  const r = await runBounded(["--data", data, "--vocab", join(data, "..", "tok.vocab"), ...TINY, "--max-steps", "1", "--output", join(data, "..", "out")], join(data, ".."));
  expect({ timedOut: r.timedOut, code: r.code }).toEqual({ timedOut: false, code: 0 });
  expect(r.stdout).toMatch(/Data: [\d,]+ tokens from 2 file/);
  const notice = linesMatching(r.out, /reached again through symbolic links/);
  expect(notice).toHaveLength(1);
  expect(notice[0]).toContain("texts (same as also-texts)");
  expect(notice[0]).toContain("story.txt (same as story-link.txt)");
});

describe("an output folder inside the data folder", () => {
  test("listDataFiles leaves out excluded folders and files (by real path) with a notice, and refuses data that is such a folder", () => {
    const data = dataFolder({ "out-link": "out" });
    mkdirSync(join(data, "out"));
    writeText(join(data, "out"), "metrics.jsonl", '{"step":1,"loss":5}\n');
    const notices: string[] = [];
    expect(listDataFiles(data, (m) => notices.push(m), { exclude: [join(data, "out-link")] })).toEqual([join(data, "story.txt")]);
    expect(notices.join("\n")).toContain("left out out, out-link: written by this run");
    expect(listDataFiles(data, () => {}, { exclude: [join(data, "not-made-yet")] })).toHaveLength(2);
    expect(listDataFiles(data, () => {}, { exclude: [join(data, "story.txt")] })).toEqual([join(data, "out", "metrics.jsonl")]);
    expect(() => listDataFiles(data, () => {}, { exclude: [data + "/"] })).toThrow(/is the output folder/);
  });

  // Needs run.ts to pass what it writes: listDataFiles(o.data, io.warn, { exclude: [o.output, o.vocab] }).
  test("a second run does not train on the first run's metrics, token cache and vocabulary", async () => {
    const data = dataFolder({});
    const out = join(data, "run");
    const vocab = join(data, "tok.vocab");
    const args = ["--data", data, "--vocab", vocab, ...TINY, "--max-steps", "2", "--output", out];
    const first = await runBounded(args, join(data, ".."));
    expect(first.code).toBe(0);
    const second = await runBounded(["resume", join(out, "model_checkpoint.bin"), "--data", data, "--vocab", vocab, "--output", out, "--max-steps", "1"], join(data, ".."));
    expect({ timedOut: second.timedOut, code: second.code }).toEqual({ timedOut: false, code: 0 });
    expect(second.stdout).toMatch(/Data: [\d,]+ tokens from 1 file(?!s).*\(cached ids/);
    expect(second.stdout).toContain("Continuing stage 0"); // the same data as the first run
    expect(second.stderr).toContain(`Note: --data ${data}: left out run, tok.vocab: written by this run`);
    const both = dataFolder({});
    const same = await runBounded(["--data", both, "--vocab", join(data, "..", "tok.vocab"), ...TINY, "--max-steps", "1", "--output", both], join(data, ".."));
    expect(same.code).toBe(2);
    expect(same.stderr).toContain("is the output folder");
  });
});

test("a link to nothing and a name that is not UTF-8 are skipped with a note naming each, never dropped without a word", () => {
  const data = dataFolder({ "gone.txt": "nowhere.txt" });
  // caf\xe9.txt: a Latin-1 name, as files copied from old systems have
  const latin1 = Buffer.concat([Buffer.from(join(data, "caf")), Buffer.from([0xe9]), Buffer.from(".txt")]);
  writeFileSync(latin1, learnableText(20));
  const notices: string[] = [];
  expect(listDataFiles(data, (m) => notices.push(m))).toEqual([join(data, "story.txt")]);
  const said = notices.join("\n");
  expect(said).toContain("skipped 2 file(s) that are not text or cannot be read");
  expect(said).toContain("gone.txt (a symbolic link to nowhere.txt, which does not exist)");
  expect(said).toMatch(/caf\uFFFD\.txt \(its name is not valid UTF-8: rename it\)/);
  // a folder of only such files is refused, naming them
  const only = join(fresh(), "only");
  mkdirSync(only);
  symlinkSync("nowhere.txt", join(only, "gone.txt"));
  expect(() => listDataFiles(only, () => {})).toThrow(/no text files, only 1 that are not text or cannot be read: gone\.txt \(a symbolic link/);
});
