/**
 * Seeded mutations of file bytes: generic (bit flips, byte sets, truncation, extension, splices,
 * non-UTF-8), textual (numbers and strings replaced by hostile values, lines deleted, doubled or
 * swapped, deep nesting) and structural (a JSON value anywhere in the tree replaced, a safetensors
 * header rewritten with a consistent or an impossible length, LOPOS header fields and matrix sizes).
 */
import { Xoshiro128 } from "../src/base/rng.ts";
import { ChainedChecksum } from "../src/checkpoint/checksum.ts";

export interface Rng {
  next(): number;
  int(lo: number, hi: number): number;
  pick<T>(xs: readonly T[]): T;
}

/** The mutations' dice, drawn from the repository's one generator. */
export function rng(seed: number): Rng {
  const x = Xoshiro128.fromSeed(seed);
  return { next: () => x.nextFloat32(), int: (lo, hi) => lo + x.below(hi - lo + 1), pick: (xs) => xs[x.below(xs.length)]! };
}

/** A per-case seed from the run's seed, the format and the case number. */
export function caseSeed(seed: number, format: string, index: number): number {
  return Xoshiro128.derive(seed, index, ...Array.from(format, (ch) => ch.charCodeAt(0))).nextU32();
}

export type Mutation = (r: Rng, b: Uint8Array) => Uint8Array;

const enc = new TextEncoder();
const latin1 = (b: Uint8Array) => {
  let s = "";
  for (let i = 0; i < b.length; i += 8192) s += String.fromCharCode(...b.subarray(i, i + 8192));
  return s;
};
const fromLatin1 = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff);

/** Numbers that break readers: signs, NaN-likes, boundaries of int32/uint32/2^53, fractions. */
export const HOSTILE_NUMBERS = [
  "-1", "0", "-0", "1", "NaN", "Infinity", "-Infinity", "1e309", "-1e309", "1e300", "1.5", "0.1", "2147483647", "2147483648",
  "-2147483649", "4294967295", "4294967296", "9007199254740991", "9007199254740993", "18446744073709551616", "1e-320", "3",
  // Large but inside the architecture limits: only the file sizes can show these are lies.
  "1024", "4096", "65536", "262144", "1048576", "16777216",
];
/** Values of the wrong type or shape for any JSON field. */
export const HOSTILE_JSON: unknown[] = [
  null, true, false, "", "1", "NaN", "F16", "\u0000", "x".repeat(70_000), [], [1, 2], [-1], {}, { a: 1 }, -1, 0, 1.5, 1e300,
  -1e300, 2 ** 31, 2 ** 32, 2 ** 53 + 2, Number.MAX_VALUE, [[[[[]]]]],
];

export const bitFlips: Mutation = (r, b) => {
  if (b.length === 0) return b;
  const out = b.slice();
  for (let k = r.int(1, 8); k > 0; k--) {
    const i = r.int(0, out.length - 1);
    out[i]! ^= 1 << r.int(0, 7);
  }
  return out;
};

export const byteSets: Mutation = (r, b) => {
  if (b.length === 0) return b;
  const out = b.slice();
  for (let k = r.int(1, 4); k > 0; k--) out[r.int(0, out.length - 1)] = r.pick([0x00, 0xff, 0x7f, 0x80, 0x0a, 0x22, 0x5c, 0x09, 0x7b, r.int(0, 255)]);
  return out;
};

export const truncate: Mutation = (r, b) => b.slice(0, r.next() < 0.3 ? r.int(0, Math.min(64, b.length)) : r.int(0, b.length));

export const extend: Mutation = (r, b) => {
  const extra = new Uint8Array(r.pick([1, 3, 8, 100, 4096]));
  if (r.next() < 0.5) for (let i = 0; i < extra.length; i++) extra[i] = r.int(0, 255);
  const out = new Uint8Array(b.length + extra.length);
  out.set(b);
  out.set(extra, b.length);
  return out;
};

export const splice: Mutation = (r, b) => {
  if (b.length < 2) return b;
  const i = r.int(0, b.length - 1);
  const n = r.int(1, Math.min(64, b.length - i));
  if (r.next() < 0.5) return concat(b.subarray(0, i), b.subarray(i + n)); // delete
  return concat(b.subarray(0, i + n), b.subarray(i, i + n), b.subarray(i + n)); // duplicate
};

export const nonUtf8: Mutation = (r, b) => {
  const bad = r.pick([[0xff], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xc0, 0xaf], [0xe2, 0x82], [0x80]]);
  const i = r.int(0, b.length);
  return concat(b.subarray(0, i), Uint8Array.from(bad), b.subarray(i));
};

/** Replace one number in the text by a hostile one (or by a string / null: a wrong type). */
export const replaceNumber: Mutation = (r, b) => {
  const s = latin1(b);
  const spots = [...s.matchAll(/-?\d+(\.\d+)?([eE][-+]?\d+)?/g)];
  if (spots.length === 0) return b;
  const m = r.pick(spots);
  const by = r.next() < 0.8 ? r.pick(HOSTILE_NUMBERS) : r.pick(['"7"', "null", "[]", "true", "{}"]);
  return fromLatin1(s.slice(0, m.index) + by + s.slice(m.index! + m[0].length));
};

/** Replace one quoted string by a hostile value. */
export const replaceString: Mutation = (r, b) => {
  const s = latin1(b);
  const spots = [...s.matchAll(/"(?:[^"\\\n]|\\.){0,80}"/g)];
  if (spots.length === 0) return b;
  const m = r.pick(spots);
  const by = r.pick(['""', '"F16"', '"I64"', '"BF16"', "12", "-1", "null", '"\\u0000"', '"\\ud800"', '"' + "a".repeat(5000) + '"', '"<|endoftext|>"', '"\\xff"']);
  return fromLatin1(s.slice(0, m.index) + by + s.slice(m.index! + m[0].length));
};

export const lines: Mutation = (r, b) => {
  const ls = latin1(b).split("\n");
  if (ls.length < 2) return b;
  const i = r.int(0, ls.length - 1);
  const j = r.int(0, ls.length - 1);
  switch (r.int(0, 3)) {
    case 0:
      ls.splice(i, 1);
      break;
    case 1:
      ls.splice(i, 0, ls[j]!);
      break;
    case 2:
      [ls[i], ls[j]] = [ls[j]!, ls[i]!];
      break;
    default:
      ls[i] = ls[i]!.replace(/\t/, r.pick(["", "\t\t", " ", "\t-1\t"]));
  }
  return fromLatin1(ls.join("\n"));
};

/** A deeply nested JSON value in place of a number or at the start (stack depth in parsers). */
export const deepNesting: Mutation = (r, b) => {
  const depth = r.pick([1000, 100_000]);
  const open = r.next() < 0.5 ? "[" : '{"a":';
  const close = open === "[" ? "]" : "}";
  const nest = open.repeat(depth) + "1" + close.repeat(r.next() < 0.8 ? depth : 0);
  const s = latin1(b);
  const m = /\d+/.exec(s);
  if (!m || r.next() < 0.3) return fromLatin1(nest);
  return fromLatin1(s.slice(0, m.index) + nest + s.slice(m.index + m[0].length));
};

export const GENERIC: [string, Mutation][] = [
  ["bitflip", bitFlips], ["byteset", byteSets], ["truncate", truncate], ["extend", extend], ["splice", splice], ["non-utf8", nonUtf8],
];
export const TEXTUAL: [string, Mutation][] = [
  ["number", replaceNumber], ["string", replaceString], ["lines", lines], ["nesting", deepNesting],
];

// ------------------------------------------------------------------------------------------ JSON tree

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Every path to a value in a JSON tree (at most `limit`, at most 64 deep). */
function paths(root: Json, limit = 5000): (string | number)[][] {
  const out: (string | number)[][] = [];
  const walk = (v: Json, p: (string | number)[]) => {
    if (out.length >= limit || p.length > 64) return;
    out.push(p);
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...p, i]));
    else if (v && typeof v === "object") for (const [k, x] of Object.entries(v)) walk(x, [...p, k]);
  };
  walk(root, []);
  return out;
}

/** Replace, delete or add one value anywhere in a JSON document; `nested` keys hold JSON strings to descend into. */
export function mutateJsonTree(r: Rng, root: Json, nested: string[] = []): Json {
  const all = paths(root).filter((p) => p.length > 0);
  if (all.length === 0) return r.pick(HOSTILE_JSON) as Json;
  const p = r.pick(all);
  let parent = root as Record<string | number, Json>;
  for (const k of p.slice(0, -1)) parent = parent[k] as Record<string | number, Json>;
  const key = p[p.length - 1]!;
  const value = parent[key];
  if (typeof value === "string" && nested.includes(String(key)) && r.next() < 0.7) {
    try {
      parent[key] = JSON.stringify(mutateJsonTree(r, JSON.parse(value) as Json));
      return root;
    } catch {
      // not JSON after all: fall through
    }
  }
  const roll = r.next();
  if (roll < 0.15 && !Array.isArray(parent)) delete parent[key];
  else if (roll < 0.25 && !Array.isArray(parent)) (parent as Record<string, Json>)[`unknown_${r.int(0, 9)}`] = r.pick(HOSTILE_JSON) as Json;
  else if (roll < 0.45 && typeof value === "number") parent[key] = r.pick([-value, value * 1e6, value * 1024, value + 1, value - 1, Math.floor(value / 2), NaN, -1, 0, 65536, 1024]) as Json;
  else parent[key] = structuredClone(r.pick(HOSTILE_JSON)) as Json;
  return root;
}

/** Deepest bracket nesting in a JSON text (strings not parsed: an estimate that errs high). */
function nestingDepth(b: Uint8Array): number {
  let depth = 0;
  let max = 0;
  for (const c of b) {
    if (c === 0x5b || c === 0x7b) max = Math.max(max, ++depth);
    else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

export function jsonStructure(nested: string[] = []): Mutation {
  return (r, b) => {
    // Earlier mutations may have nested the document past what a recursive walk can take: then
    // this mutation does nothing (the readers still get the deep document as it is).
    if (nestingDepth(b) > 200) return b; // walking and printing such a tree is slow in any JSON library
    try {
      const root = JSON.parse(new TextDecoder().decode(b)) as Json;
      return enc.encode(JSON.stringify(mutateJsonTree(r, root, nested), null, r.next() < 0.5 ? 2 : undefined));
    } catch {
      return b;
    }
  };
}

// --------------------------------------------------------------------------------------- safetensors

export function splitSafetensors(b: Uint8Array): { header: string; data: Uint8Array } | null {
  if (b.length < 8) return null;
  const n = Number(new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true));
  if (8 + n > b.length) return null;
  return { header: new TextDecoder().decode(b.subarray(8, 8 + n)), data: b.subarray(8 + n) };
}

export function joinSafetensors(header: Uint8Array, data: Uint8Array, declared: bigint = BigInt(header.length)): Uint8Array {
  const out = new Uint8Array(8 + header.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt.asUintN(64, declared), true);
  out.set(header, 8);
  out.set(data, 8 + header.length);
  return out;
}

/** The header length field set to sizes past the end, huge, or just short. */
export const headerLength: Mutation = (r, b) => {
  const s = splitSafetensors(b);
  if (!s) return b;
  const h = enc.encode(s.header);
  const declared = r.pick([
    BigInt(b.length), BigInt(b.length - 7), BigInt(h.length + 1), BigInt(h.length - 1), 0n, 1n, 2n ** 63n, 2n ** 64n - 1n,
    2n ** 53n + 1n, 100_000_001n, BigInt(r.int(0, b.length)),
  ]);
  return joinSafetensors(h, s.data, declared);
};

/** Keep the container consistent (a fresh length) but change the header's JSON: deeper readers get the case. */
export function safetensorsHeaderMutation(nested: string[]): Mutation {
  const structural = jsonStructure(nested);
  return (r, b) => {
    const s = splitSafetensors(b);
    if (!s) return b;
    let h: Uint8Array = enc.encode(s.header);
    if (r.next() < 0.6) h = structural(r, h);
    else {
      const [, m] = r.pick(TEXTUAL.filter(([n]) => n !== "lines"));
      h = m(r, h);
    }
    return joinSafetensors(h, s.data);
  };
}

/** Recompute a train-vocab checkpoint's checksum so changed data or metadata is judged by later checks. */
export function fixChecksum(b: Uint8Array): Uint8Array {
  const s = splitSafetensors(b);
  if (!s) return b;
  let json: Record<string, { data_offsets?: [number, number] } & Record<string, unknown>>;
  try {
    json = JSON.parse(s.header);
  } catch {
    return b;
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) return b;
  const meta = json.__metadata__ as unknown as Record<string, string> | undefined;
  if (!meta || typeof meta.train_vocab !== "string") return b;
  const entries = Object.entries(json)
    .filter(([k, v]) => k !== "__metadata__" && v && Array.isArray(v.data_offsets))
    .map(([, v]) => v.data_offsets as [number, number])
    .sort((x, y) => x[0] - y[0]);
  const sum = new ChainedChecksum().update(meta.train_vocab);
  for (const [begin, end] of entries) {
    if (!(end >= begin && end <= s.data.length)) return b;
    sum.update(s.data.subarray(begin, end));
  }
  meta.checksum = sum.hex();
  return joinSafetensors(enc.encode(JSON.stringify(json)), s.data);
}

// --------------------------------------------------------------------------------------------- LOPOS

/** A header field (version, d_model…max_seq_len) or a matrix's rows/cols set to a hostile value. */
export const loposFields: Mutation = (r, b) => {
  if (b.length < 33) return b;
  const out = b.slice();
  const dv = new DataView(out.buffer);
  const value = r.pick([0, -1, 1, 2, 3, 7, 0x7fffffff, -0x80000000, 65536, 1 << 20, r.int(-5, 100)]);
  if (r.next() < 0.7) {
    dv.setInt32(r.pick([5, 9, 13, 17, 21, 25, 29]), value, true);
  } else if (out.length >= 41) {
    dv.setUint32(33 + 4 * r.int(0, 1), value >>> 0, true); // first matrix's rows or cols
  }
  return out;
};

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
