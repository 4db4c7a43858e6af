/**
 * The token store under seeded mutations of its index (generic, textual and JSON-structural, some
 * with the index's checksum made right again so the deeper checks are reached) and of its parts
 * (bit flips, truncation, extension): every load must give exactly the encoder's ids, with at most a
 * note, and never throw. STORE_FUZZ_CASES overrides the number of cases.
 */
import { afterAll, expect, setDefaultTimeout, test } from "bun:test";
import { cpSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { scanData } from "../../src/data/fingerprint.ts";
import { indexChecksum, storedTokens } from "../../src/data/store.ts";
import { encodeFile, trainTokenizer } from "../../src/tokenizer/index.ts";
import { caseSeed, GENERIC, jsonStructure, rng, TEXTUAL } from "../../fuzz/mutate.ts";
import { learnableText, tempFolder } from "../cli/helpers.ts";

setDefaultTimeout(120_000);

const CASES = Number(process.env.STORE_FUZZ_CASES ?? 120);
const tmp = tempFolder("tv-store-fuzz-");
afterAll(() => tmp.cleanup());

test(`${CASES} mutated stores: each load gives the encoder's ids or rebuilds them, never a wrong id, never a crash`, () => {
  writeFileSync(join(tmp.dir, "v.txt"), learnableText(300, 5));
  const tok = trainTokenizer({ data: join(tmp.dir, "v.txt"), vocabSize: 290, minFrequency: 2 });
  const data = join(tmp.dir, "data");
  mkdirSync(data);
  const files = [0, 1, 2].map((i) => {
    const p = join(data, `d${i}.txt`);
    writeFileSync(p, learnableText(40 + 30 * i, 70 + i));
    return p;
  });
  const scanned = scanData(files).files;
  const want = files.map((f) => Array.from(encodeFile(tok, f)));
  const pristine = join(tmp.dir, "pristine");
  storedTokens(scanned, tok, pristine, () => {});
  const indexName = readdirSync(pristine).find((n) => n.endsWith(".json"))!;
  const partName = readdirSync(pristine).find((n) => n.endsWith(".ids"))!;

  const structural = jsonStructure();
  /** A JSON mutation whose result carries a right checksum again, so the entries themselves are checked. */
  const resealed = (r: ReturnType<typeof rng>, b: Uint8Array): Uint8Array => {
    const mutated = structural(r, b);
    try {
      const index = JSON.parse(new TextDecoder().decode(mutated)) as { entries?: unknown; parts?: unknown };
      return new TextEncoder().encode(JSON.stringify({ ...index, checksum: indexChecksum(index.entries, index.parts) }));
    } catch {
      return mutated;
    }
  };
  const indexMutations: [string, (r: ReturnType<typeof rng>, b: Uint8Array) => Uint8Array][] = [...GENERIC, ...TEXTUAL, ["json", structural], ["json-resealed", resealed], ["json-resealed", resealed]];
  const partMutations = GENERIC.filter(([name]) => ["bitflip", "byteset", "truncate", "extend", "splice"].includes(name));

  const kinds = new Map<string, number>();
  let rebuilt = 0;
  for (let c = 0; c < CASES; c++) {
    const r = rng(caseSeed(20261205, "token-store", c));
    const dir = join(tmp.dir, `case-${c}`);
    cpSync(pristine, dir, { recursive: true });
    const onIndex = r.next() < 0.6;
    const [name, mutate] = onIndex ? r.pick(indexMutations) : r.pick(partMutations);
    const target = join(dir, onIndex ? indexName : partName);
    writeFileSync(target, mutate(r, new Uint8Array(readFileSync(target))));
    kinds.set(`${onIndex ? "index" : "part"}:${name}`, (kinds.get(`${onIndex ? "index" : "part"}:${name}`) ?? 0) + 1);
    const notes: string[] = [];
    let got: number[][];
    try {
      got = storedTokens(scanned, tok, dir, (m) => notes.push(m)).documents.map((d) => d.flatMap((p) => Array.from(p)));
    } catch (err) {
      throw new Error(`case ${c} (${onIndex ? "index" : "part"} ${name}): ${(err as Error).stack}`);
    }
    expect({ c, got }).toEqual({ c, got: want });
    if (notes.length > 0) rebuilt++;
  }
  console.log(`token store fuzz: ${CASES} cases, ${rebuilt} said and rebuilt; ${[...kinds].map(([k, n]) => `${k} ${n}`).join(", ")}`);
  expect(rebuilt).toBeGreaterThan(CASES / 4);
});
