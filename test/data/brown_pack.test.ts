/** The demo corpus's pack (what the standalone executable embeds): round trips, and damaged packs refused with a UserError. */
import { expect, test } from "bun:test";
import { basename } from "node:path";
import { UserError } from "../../src/base/errors.ts";
import { brownCorpus, brownDocuments, findBrownCorpus, packBrown, readUntagged, unpackBrown } from "../../src/data/brown.ts";

const docs = brownDocuments(findBrownCorpus()).slice(0, 3).map((path) => ({ name: basename(path), text: readUntagged(path) }));

test("a pack of documents reads back the same documents, in order", () => {
  const packed = packBrown(docs);
  expect(packed.length).toBeLessThan(docs.reduce((n, d) => n + d.text.length, 0) / 2);
  expect(unpackBrown(packed, "pack")).toEqual(docs);
  const odd = [{ name: "cr09", text: "émigré \u0000 \"quoted\"\n" }, { name: "ca01", text: "" }];
  expect(unpackBrown(packBrown(odd), "pack")).toEqual(odd);
});

test("the corpus the demo reads comes from the package when it is installed", async () => {
  const all = await brownCorpus();
  expect(all.length).toBe(500);
  expect(all.slice(0, 3)).toEqual(docs);
});

const damaged = (bytes: Uint8Array) => {
  try {
    unpackBrown(bytes, "the test pack");
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    expect((err as Error).message).toContain("the test pack is damaged (");
    expect((err as Error).message).toContain("make compile");
    return (err as Error).message;
  }
  throw new Error("a damaged pack was accepted");
};
const zstdJson = (value: unknown) => new Uint8Array(Bun.zstdCompressSync(JSON.stringify(value)));

test("packs that are not zstd, not JSON, of another format or version, or whose documents or checksum are wrong are refused", () => {
  damaged(new Uint8Array(0));
  expect(damaged(new TextEncoder().encode("plain text"))).toContain("does not decompress");
  expect(damaged(new Uint8Array(Bun.zstdCompressSync("{not json")))).toContain("not JSON");
  expect(damaged(zstdJson({ format: "something else", version: 1, documents: [] }))).toContain("not a train-vocab brown corpus file");
  const good = JSON.parse(new TextDecoder().decode(Bun.zstdDecompressSync(packBrown(docs))));
  expect(damaged(zstdJson({ ...good, version: 2 }))).toContain("version 2");
  expect(damaged(zstdJson({ ...good, documents: [] }))).toContain("no documents");
  expect(damaged(zstdJson({ ...good, documents: [{ name: "../etc", text: "x" }] }))).toContain("document 1 is not");
  expect(damaged(zstdJson({ ...good, documents: [...good.documents, 7] }))).toContain("document 4 is not");
  const edited = structuredClone(good);
  edited.documents[1].text = edited.documents[1].text.replace("the", "teh");
  expect(damaged(zstdJson(edited))).toContain("checksum does not match");
});

test("fuzz: a pack with bytes flipped, cut or inserted reads back unchanged or is refused with a UserError", () => {
  const packed = packBrown(docs);
  let seed = 99;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (let i = 0; i < 200; i++) {
    let bytes = packed.slice();
    const at = Math.floor(rand() * bytes.length);
    const kind = i % 3;
    if (kind === 0) bytes[at] = bytes[at]! ^ (1 + Math.floor(rand() * 255));
    else if (kind === 1) bytes = bytes.subarray(0, at);
    else bytes = new Uint8Array([...bytes.subarray(0, at), Math.floor(rand() * 256), ...bytes.subarray(at)]);
    let out;
    try {
      out = unpackBrown(bytes, "the test pack");
    } catch (err) {
      expect(err).toBeInstanceOf(UserError);
      continue;
    }
    expect(out).toEqual(docs);
  }
});
