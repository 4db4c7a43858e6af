/**
 * Slow, obvious reference implementations the C code is checked against: the GPT-2 split as a
 * JavaScript regex, a naive BPE trainer (recount every pair after every merge) and a naive encoder
 * (merge every occurrence of the lowest-ranked pair, repeat).
 */
import { Xoshiro128 } from "../../src/base/rng.ts";
import { KIND_MERGE, type BpeVocab } from "../../src/tokenizer/bpe.ts";
import { utf8SeqLength } from "../../src/tokenizer/escape.ts";

const GPT2 = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\p{White_Space}\p{L}\p{N}]+|\p{White_Space}+(?!\P{White_Space})|\p{White_Space}+/gu;
const PLACEHOLDER = "\uE000"; // private use: neither letter, number nor space, like an invalid byte

/** End offsets (in bytes) of the pre-tokens of any byte string, by the regex. */
export function referencePretokenize(bytes: Uint8Array): number[] {
  // one UTF-16 string with a known byte offset for each code unit
  let text = "";
  const byteAt: number[] = [];
  const dec = new TextDecoder();
  for (let i = 0; i < bytes.length; ) {
    const n = utf8SeqLength(bytes, i);
    const s = n === 0 ? PLACEHOLDER : dec.decode(bytes.subarray(i, i + n));
    for (let k = 0; k < s.length; k++) byteAt.push(i);
    text += s;
    i += n === 0 ? 1 : n;
  }
  byteAt.push(bytes.length);
  const ends: number[] = [];
  for (const m of text.matchAll(GPT2)) ends.push(byteAt[m.index! + m[0].length]!);
  return ends;
}

function key(b: number[]): string {
  return b.join(",");
}

/** Naive trainer with the same stated rules as csrc/bpe.c; returns [left, right] per merge. */
export function referenceTrain(texts: Uint8Array[], vocabSize: number, minFrequency: number, nSpecials = 1): number[] {
  const counts = new Map<string, { syms: number[]; count: number }>();
  for (const t of texts) {
    let start = 0;
    for (const end of referencePretokenize(t)) {
      const w = Array.from(t.subarray(start, end));
      start = end;
      const k = key(w);
      const e = counts.get(k);
      if (e) e.count++;
      else counts.set(k, { syms: w, count: 1 });
    }
  }
  const words = [...counts.values()];
  const tokenBytes: number[][] = [];
  for (let b = 0; b < 256; b++) tokenBytes[b] = [b];
  const known = new Set(tokenBytes.map(key));
  const banned = new Set<string>();
  const merges: number[] = [];
  let next = 256 + nSpecials;
  while (next < vocabSize) {
    const pairs = new Map<string, number>();
    for (const w of words) for (let i = 0; i + 1 < w.syms.length; i++) {
      const k = `${w.syms[i]},${w.syms[i + 1]}`;
      pairs.set(k, (pairs.get(k) ?? 0) + w.count);
    }
    let best: [number, number, number] | null = null;
    for (const [k, c] of pairs) {
      if (banned.has(k)) continue;
      const [a, b] = k.split(",").map(Number) as [number, number];
      if (!best || c > best[2] || (c === best[2] && (a < best[0] || (a === best[0] && b < best[1])))) best = [a, b, c];
    }
    if (!best || best[2] < minFrequency) break;
    const [a, b] = best;
    const bytes = [...tokenBytes[a]!, ...tokenBytes[b]!];
    if (known.has(key(bytes))) {
      banned.add(`${a},${b}`);
      continue;
    }
    known.add(key(bytes));
    tokenBytes[next] = bytes;
    merges.push(a, b);
    for (const w of words) w.syms = mergeAll(w.syms, a, b, next);
    next++;
  }
  return merges;
}

function mergeAll(s: number[], a: number, b: number, z: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < s.length; ) {
    if (i + 1 < s.length && s[i] === a && s[i + 1] === b) {
      out.push(z);
      i += 2;
    } else out.push(s[i++]!);
  }
  return out;
}

/** Naive encoder: per pre-token, merge all occurrences of the lowest-ranked (= lowest id) pair. */
export function referenceEncode(v: BpeVocab, bytes: Uint8Array): number[] {
  const byteId = new Map<number, number>();
  const child = new Map<string, number>();
  for (let i = 0; i < v.kinds.length; i++) {
    if (v.kinds[i] === KIND_MERGE) child.set(`${v.left[i]},${v.right[i]}`, i);
    else if (v.tokens[i]!.length === 1 && v.kinds[i] === 0) byteId.set(v.tokens[i]![0]!, i);
  }
  const out: number[] = [];
  let start = 0;
  for (const end of referencePretokenize(bytes)) {
    let s = Array.from(bytes.subarray(start, end), (b) => byteId.get(b)!);
    start = end;
    for (;;) {
      let best = Infinity;
      for (let i = 0; i + 1 < s.length; i++) {
        const c = child.get(`${s[i]},${s[i + 1]}`);
        if (c !== undefined && c < best) best = c;
      }
      if (best === Infinity) break;
      s = mergeAll(s, v.left[best]!, v.right[best]!, best);
    }
    out.push(...s);
  }
  return out;
}

/** Reproducible random tests: uniform in [0, 1) from a seed. */
export function rng(seed: number): () => number {
  const x = Xoshiro128.fromSeed(seed);
  return () => x.nextFloat32();
}

export const MULTILINGUAL = [
  "The quick brown fox jumps over the lazy dog. It's 2024, and we'll see what they've done!",
  "Le cœur a ses raisons que la raison ne connaît point. L'été dernier, j'ai vu 3 châteaux.",
  "Über den Wolken muss die Freiheit wohl grenzenlos sein. Straße, Größe, Fußgänger.",
  "Съешь же ещё этих мягких французских булок, да выпей чаю. В 1961 году Гагарин полетел.",
  "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία. Η Ελλάδα έχει 11 εκατομμύρια κατοίκους.",
  "我能吞下玻璃而不伤身体。今天是2024年，天气很好。机器学习和自然语言处理。",
  "いろはにほへと ちりぬるを。私はガラスを食べられます。それは私を傷つけません。",
  "أنا قادر على أكل الزجاج و هذا لا يؤلمني. العربية لغة جميلة ١٢٣٤.",
  "मैं काँच खा सकता हूँ और मुझे उससे कोई चोट नहीं पहुंचती. २०२४",
  "나는 유리를 먹을 수 있어요. 그래도 아프지 않아요. 한국어 텍스트.",
  "Emoji 🎉🚀 mixed with text 👍🏽 and symbols ∑∫√ — “quotes” ‘single’ … ©®™",
  "code: for (let i = 0; i < n; i++) { sum += a[i] * b[i]; }  // tabs\tand\tspaces   \n\n",
  "Numbers 3.14159 2,718 1e-9 0x1F ½ ¾ Ⅻ ²³ and     many   spaces\r\nwindows line\r\n",
];

/** A few hundred KB of multilingual text, different words in different orders. */
export function makeCorpus(seed: number, paragraphs: number): string {
  const r = rng(seed);
  const words = MULTILINGUAL.join(" ").split(/(?<= )/);
  const out: string[] = [];
  for (let p = 0; p < paragraphs; p++) {
    const n = 20 + Math.floor(r() * 60);
    let s = "";
    for (let k = 0; k < n; k++) s += words[Math.floor(r() * words.length)];
    out.push(s);
    out.push(r() < 0.3 ? "\n\n" : "\n");
  }
  return out.join("");
}
