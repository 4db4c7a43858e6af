/**
 * `make compile`'s corpus for the standalone executable: the Brown corpus from the installed npm
 * package, untagged and packed into one zstd-compressed file (src/data/brown.ts), which the
 * executable embeds so that its `demo` runs from any folder.
 *
 *   bun run scripts/pack_brown.ts build/brown_corpus.zst
 */
import { basename } from "node:path";
import { atomicWrite } from "../src/base/files.ts";
import { brownDocuments, findBrownCorpus, packBrown, readUntagged, unpackBrown } from "../src/data/brown.ts";

const out = process.argv[2];
if (!out) {
  console.error("usage: bun run scripts/pack_brown.ts <output file>");
  process.exit(2);
}
const docs = brownDocuments(findBrownCorpus()).map((path) => ({ name: basename(path), text: readUntagged(path) }));
const packed = packBrown(docs);
// Read back before it is written, so a pack that would not load is never embedded.
if (unpackBrown(packed, out).length !== docs.length) throw new Error("the pack does not read back");
atomicWrite(out, packed);
const chars = docs.reduce((n, d) => n + d.text.length, 0);
console.log(`${out}: ${docs.length} documents, ${(chars / 1e6).toFixed(1)} M characters in ${(packed.length / 1e6).toFixed(2)} MB`);
