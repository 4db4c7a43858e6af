/**
 * The token store: round trips (2- and 4-byte ids), incremental builds, shared folders, damaged
 * indexes and parts, dead writers' leftovers, files that change or vanish, a full disk.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, truncateSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { scanData } from "../../src/data/fingerprint.ts";
import { idBytesFor, indexChecksum, storedTokens, type StoredTokens } from "../../src/data/store.ts";
import { TokenWindows } from "../../src/data/windows.ts";
import { encodeFile, trainTokenizer, type Tokenizer } from "../../src/tokenizer/index.ts";
import { learnableText, runCli, tempFolder, TINY } from "../cli/helpers.ts";
import { BIN } from "../reliability/harness.ts";

setDefaultTimeout(60_000);

const tmp = tempFolder("tv-store-");
afterAll(() => tmp.cleanup());
let n = 0;
const fresh = (name: string) => {
  const d = join(tmp.dir, `${name}-${n++}`);
  mkdirSync(d, { recursive: true });
  return d;
};

writeFileSync(join(tmp.dir, "vocab-text.txt"), learnableText(400, 2));
const tok = trainTokenizer({ data: join(tmp.dir, "vocab-text.txt"), vocabSize: 300, minFrequency: 2 });

function corpus(dir: string, sizes: number[]): string[] {
  return sizes.map((s, i) => {
    const p = join(dir, `doc${String(i).padStart(2, "0")}.txt`);
    writeFileSync(p, learnableText(s, 10 + i));
    return p;
  });
}

function load(files: string[], store: string, t: Tokenizer = tok): { got: StoredTokens; notes: string[] } {
  const notes: string[] = [];
  const got = storedTokens(scanData(files).files, t, store, (m) => notes.push(m));
  return { got, notes };
}

const asArrays = (s: StoredTokens) => s.documents.map((d) => d.flatMap((p) => Array.from(p)));
const expected = (files: string[], t: Tokenizer = tok) => files.map((f) => Array.from(encodeFile(t, f)));
const parts = (store: string) => readdirSync(store).filter((x) => x.endsWith(".ids"));

describe("round trips", () => {
  test("ids come back as the encoder gives them, 2 bytes each, then from the store without tokenizing", () => {
    const data = fresh("data"), store = fresh("store");
    const files = corpus(data, [300, 0, 50, 800]);
    const first = load(files, store);
    expect(first.got.tokenized).toBe(4);
    expect(asArrays(first.got)).toEqual(expected(files));
    expect(first.got.documents.flat().every((p) => p instanceof Uint16Array)).toBe(true);
    const stored = parts(store).reduce((s, p) => s + statSync(join(store, p)).size, 0);
    expect(stored - 64 * parts(store).length).toBe(2 * asArrays(first.got).flat().length);
    expect(first.got.tokens).toBe(asArrays(first.got).flat().length + 3); // and the 3 end-of-text ids between the 4 files
    // Finished parts are recorded as their writer left them (so an unchanged part is not read to check it).
    const index = JSON.parse(readFileSync(join(store, readdirSync(store).find((x) => x.endsWith(".json"))!), "utf8"));
    expect(index.parts).toEqual(Object.fromEntries(parts(store).map((p) => [p, { size: statSync(join(store, p)).size, mtime_ms: statSync(join(store, p)).mtimeMs }])));
    const second = load(files, store);
    expect(second.got.tokenized).toBe(0);
    expect(second.notes).toEqual([]);
    expect(asArrays(second.got)).toEqual(expected(files));
  });

  test("vocabularies of more than 65,536 tokens store 4-byte ids", () => {
    // A tokenizer without end-of-text whose ids run past 65,535 (the store is not BPE-specific).
    const wide: Tokenizer = {
      type: "loopos-word", vocabSize: 70_000, fingerprint: "f".repeat(32), endOfTextId: null,
      encode: (t) => Uint32Array.from(typeof t === "string" ? new TextEncoder().encode(t) : t, (b, i) => (b * 577 + i * 7919) % 70_000),
      decode: () => "", decodeBytes: () => new Uint8Array(0),
    };
    expect([idBytesFor(65_536), idBytesFor(65_537)]).toEqual([2, 4]);
    const data = fresh("data"), store = fresh("store");
    const files = corpus(data, [100, 30]);
    const first = load(files, store, wide);
    expect(first.got.documents.flat().every((p) => p instanceof Uint32Array)).toBe(true);
    expect(asArrays(first.got)).toEqual(files.map((f) => Array.from(wide.encode(readFileSync(f)))));
    expect(Math.max(...asArrays(first.got).flat())).toBeGreaterThan(65_535);
    expect(asArrays(load(files, store, wide).got)).toEqual(asArrays(first.got));
  });

  test("windows over the store equal windows over the ids joined in memory", () => {
    const data = fresh("data"), store = fresh("store");
    const files = corpus(data, [200, 120]);
    const { got } = load(files, store);
    const e = expected(files);
    const joined = Uint32Array.from([...e[0]!, tok.endOfTextId!, ...e[1]!]);
    const a = new TokenWindows(got, 16, 0), b = new TokenWindows(joined, 16, 0);
    expect(a.count).toBe(b.count);
    const ta = new Int32Array(16 * a.count), tb = new Int32Array(16 * a.count), ga = new Int32Array(16 * a.count), gb = new Int32Array(16 * a.count);
    const all = Array.from({ length: a.count }, (_, i) => i);
    a.fill(all, ta, ga);
    b.fill(all, tb, gb);
    expect([ta, ga]).toEqual([tb, gb]);
  });
});

describe("incremental builds", () => {
  test("an added file is tokenized alone; a changed one again, with a note; a moved copy is reused", () => {
    const data = fresh("data"), store = fresh("store");
    const files = corpus(data, [100, 100, 100]);
    load(files, store);
    const added = join(data, "doc99.txt");
    writeFileSync(added, learnableText(70, 99));
    const second = load([...files, added], store);
    expect(second.got.tokenized).toBe(1);
    expect(asArrays(second.got)).toEqual(expected([...files, added]));
    writeFileSync(files[1]!, learnableText(90, 1234));
    const third = load([...files, added], store);
    expect(third.got.tokenized).toBe(1);
    expect(third.notes.join("\n")).toContain(`${files[1]} changed since it was tokenized: tokenizing it again`);
    expect(asArrays(third.got)).toEqual(expected([...files, added]));
    const moved = join(fresh("elsewhere"), "renamed.txt");
    writeFileSync(moved, readFileSync(files[0]!));
    expect(load([moved], store).got.tokenized).toBe(0);
  });

  test("two vocabularies share a folder without meeting; runs sharing a store keep each other's entries", () => {
    const data = fresh("data"), store = fresh("store");
    const files = corpus(data, [80, 60]);
    writeFileSync(join(tmp.dir, "vocab-text-2.txt"), learnableText(300, 77) + "zebra quagga okapi\n".repeat(50));
    const other = trainTokenizer({ data: join(tmp.dir, "vocab-text-2.txt"), vocabSize: 280, minFrequency: 2 });
    load([files[0]!], store);
    load([files[1]!], store, other);
    load([files[1]!], store); // a second run adds to the first vocabulary's index
    expect(readdirSync(store).filter((x) => x.endsWith(".json")).length).toBe(2);
    expect(load(files, store).got.tokenized).toBe(0);
    expect(asArrays(load(files, store, other).got)).toEqual(expected(files, other));
  });
});

describe("damage and leftovers", () => {
  const setUp = () => {
    const data = fresh("data"), store = fresh("store");
    const files = corpus(data, [150, 150]);
    load(files, store);
    const index = readdirSync(store).find((x) => x.endsWith(".json"))!;
    return { files, store, index: join(store, index), part: join(store, parts(store)[0]!) };
  };

  test("a damaged or foreign index is said and rebuilt, never trusted", () => {
    for (const damage of [
      (t: string) => t.slice(0, t.length / 2), // cut short: not JSON
      (t: string) => t.replace(/"count":(\d)/, '"count":9$1'), // edited: checksum
      (t: string) => t.replace('"version":1', '"version":7'), // another version
      () => "[]",
    ]) {
      const { files, store, index } = setUp();
      writeFileSync(index, damage(readFileSync(index, "utf8")));
      const r = load(files, store);
      expect(r.notes.join("\n")).toMatch(/token store index .* is (damaged|not a token store index)/);
      expect(r.got.tokenized).toBe(2);
      expect(asArrays(r.got)).toEqual(expected(files));
    }
  });

  test("damaged, short or missing parts are said and those files tokenized again", () => {
    const cases: [string, (part: string) => void][] = [
      ["damaged (their checksum", (p) => {
        const b = readFileSync(p);
        b[b.length - 3] ^= 0x5a;
        writeFileSync(p, b);
      }],
      ["incomplete", (p) => truncateSync(p, statSync(p).size - 10)],
      ["missing", (p) => unlinkSync(p)],
      ["missing", (p) => {
        const b = readFileSync(p);
        b[20] ^= 1; // the header's vocabulary fingerprint
        writeFileSync(p, b);
      }],
    ];
    for (const [problem, damage] of cases) {
      const { files, store, part } = setUp();
      damage(part);
      const r = load(files, store);
      expect(r.notes.join("\n")).toContain(`are ${problem}`);
      expect(asArrays(r.got)).toEqual(expected(files));
      expect(load(files, store).got.tokenized).toBe(0);
    }
  });

  test("a part a killed writer left unrecorded is checked in full, then recorded once all its ids have been", () => {
    const { files, store, index, part } = setUp();
    const name = part.split("/").pop()!;
    const dead = name.replace(/-\d+-/, "-999999999-");
    renameSync(part, join(store, dead));
    const text = readFileSync(index, "utf8").replaceAll(name, dead);
    const parsed = JSON.parse(text);
    parsed.parts = {};
    parsed.checksum = indexChecksum(parsed.entries, parsed.parts);
    writeFileSync(index, JSON.stringify(parsed));
    // Only one of its files: not every entry in the part is checked, so it stays unrecorded.
    expect(asArrays(load([files[0]!], store).got)).toEqual(expected([files[0]!]));
    expect(JSON.parse(readFileSync(index, "utf8")).parts).toEqual({});
    const r = load(files, store);
    expect([r.got.tokenized, r.notes]).toEqual([0, []]);
    expect(asArrays(r.got)).toEqual(expected(files));
    const st = statSync(join(store, dead));
    expect(JSON.parse(readFileSync(index, "utf8")).parts).toEqual({ [dead]: { size: st.size, mtime_ms: st.mtimeMs } });
  });

  test("parts no index names are removed once their writer is dead, kept while it lives", () => {
    const { files, store, part } = setUp();
    const name = part.split("/").pop()!;
    const prefix = name.slice(0, "tokens-".length + 16);
    const dead = join(store, `${prefix}-999999999-zz.ids`);
    const living = join(store, `${prefix}-${process.ppid}-zz.ids`);
    const deadTemp = join(store, `.${prefix}.json.999999999.abcdefgh.tmp`);
    for (const p of [dead, living, deadTemp]) writeFileSync(p, "leftover");
    load(files, store);
    expect([existsSync(dead), existsSync(living), existsSync(deadTemp), existsSync(part)]).toEqual([false, true, false, true]);
  });
});

describe("files that change or vanish", () => {
  test("a file that changed after it was hashed is a clear error, and what was stored before it is kept", () => {
    const data = fresh("data"), store = fresh("store");
    const files = corpus(data, [100, 100]);
    const scanned = scanData(files).files;
    writeFileSync(files[1]!, learnableText(100, 555));
    expect(() => storedTokens(scanned, tok, store, () => {})).toThrow(`--data ${files[1]}: it changed while it was being read`);
    const again = load(files, store);
    expect(again.got.tokenized).toBe(1);
    expect(asArrays(again.got)).toEqual(expected(files));
  });

  test("a file deleted between runs: the others come from the store, nothing is said, nothing rebuilt", () => {
    const data = fresh("data"), store = fresh("store");
    const files = corpus(data, [60, 60, 60]);
    load(files, store);
    rmSync(files[1]!);
    const left = [files[0]!, files[2]!];
    const r = load(left, store);
    expect([r.got.tokenized, r.notes]).toEqual([0, []]);
    expect(asArrays(r.got)).toEqual(expected(left));
  });

  test("a file deleted after it was listed is a clear error naming it", () => {
    const data = fresh("data"), store = fresh("store");
    const files = corpus(data, [50, 50]);
    const scanned = scanData(files).files;
    rmSync(files[0]!);
    expect(() => storedTokens(scanned, tok, store, () => {})).toThrow(`--data ${files[0]}: cannot read it`);
    expect(() => scanData(files)).toThrow(`--data ${files[0]}: cannot read it`);
  });
});

test("a full disk while the store is written: a clear error, exit 2, the checkpoint untouched, the store usable after", async () => {
  const dir = fresh("disk");
  const small = join(dir, "small.txt");
  writeFileSync(small, learnableText(200, 3));
  const vocab = join(dir, "tok.vocab");
  const out = join(dir, "out");
  const first = await runCli(["--data", small, "--vocab", vocab, ...TINY, "--epochs", "1", "--output", out], dir);
  expect(first.code).toBe(0);
  const ckpt = join(out, "model_checkpoint.bin");
  const before = readFileSync(ckpt);
  // More data than the file-size limit lets the store's part hold (ulimit -f counts 1 KiB or 512-byte blocks).
  const big = join(dir, "big");
  mkdirSync(big);
  for (let i = 0; i < 4; i++) writeFileSync(join(big, `part${i}.txt`), learnableText(12_000, 40 + i));
  const store = join(dir, "cache");
  const proc = Bun.spawn(["sh", "-c", `trap '' XFSZ; ulimit -f 400; exec "$@"`, "sh", "bun", "run", BIN,
    "resume", ckpt, "--data", big, "--vocab", vocab, "--output", out, "--token-cache", store, "--epochs", "1", "--threads", "1"], {
    cwd: dir, stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1" },
  });
  const [o, e, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  expect(code).toBe(2);
  expect(o + e).toContain(`error: Could not write the token store in ${store}: the file is larger than the file-size limit allows.`);
  expect(o + e).not.toContain("    at ");
  expect(Buffer.compare(readFileSync(ckpt), before)).toBe(0);
  // What was committed before the limit is whole: the next run (no limit) finishes the store.
  const r = await runCli(["resume", ckpt, "--data", big, "--vocab", vocab, "--output", out, "--token-cache", store, "--epochs", "1", "--max-steps", "1"], dir);
  expect(r.code).toBe(0);
  expect(r.out).toMatch(/Data: [\d,]+ tokens from 4 files \(tokenized \d of 4 files, the others' ids already stored|Data: [\d,]+ tokens from 4 files \(tokenized; ids cached/);
});

test("--token-cache: a resume into a new --output tokenizes nothing; an earlier version's cache is noted, not read", async () => {
  const dir = fresh("cli");
  const data = join(dir, "data");
  mkdirSync(data);
  corpus(data, [150, 150]);
  const vocab = join(dir, "tok.vocab"), cache = join(dir, "cache");
  const first = await runCli(["--data", data, "--vocab", vocab, ...TINY, "--epochs", "1", "--max-steps", "2", "--output", join(dir, "a"), "--token-cache", cache], dir);
  expect(first.code).toBe(0);
  expect(first.stdout).toContain(`(tokenized; ids cached in ${cache}/tokens-`);
  expect(readdirSync(join(dir, "a")).filter((x) => x.startsWith("tokens-"))).toEqual([]);
  const old = join(dir, "b", "tokens-0123456789abcdef.bin");
  mkdirSync(join(dir, "b"));
  writeFileSync(old, new Uint8Array(2_000_000));
  const resumed = await runCli(["resume", join(dir, "a", "model_checkpoint.bin"), "--data", data, "--vocab", vocab, "--output", join(dir, "b"), "--token-cache", cache, "--max-steps", "1"], dir);
  expect(resumed.code).toBe(0);
  expect(resumed.stdout).toMatch(/Data: [\d,]+ tokens from 2 files \(cached ids /);
  expect(resumed.stdout).toContain(`Note: tokens-0123456789abcdef.bin in ${join(dir, "b")}: token cache of an earlier version, no longer read (the ids are in the token store now); delete it to free 2 MB.`);
});
