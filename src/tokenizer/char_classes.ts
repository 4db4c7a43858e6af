/**
 * The class of every Unicode code point, as the GPT-2 pre-tokenizer sees it: letter (\p{L}),
 * number (\p{N}), whitespace (White_Space) or other. Built once from the JavaScript engine's own
 * Unicode tables, so the C pre-tokenizer and the TypeScript one agree on every character.
 */
export const CLASS_OTHER = 0;
export const CLASS_LETTER = 1;
export const CLASS_NUMBER = 2;
export const CLASS_SPACE = 3;
export const CODEPOINTS = 0x110000;

let table: Uint8Array | null = null;

/** One byte per code point (1.1 MB), computed on first use in a few milliseconds. */
export function charClasses(): Uint8Array {
  if (table) return table;
  const t = new Uint8Array(CODEPOINTS);
  // The code space as UTF-16 text, one 64K plane at a time (surrogates stand in as U+0000); one
  // regex pass per plane finds every run of letters, numbers and whitespace.
  const re = /(\p{L}+)|(\p{N}+)|(\p{White_Space}+)/gu;
  const utf16 = new TextDecoder("utf-16le");
  for (let plane = 0; plane < 17; plane++) {
    const base = plane << 16;
    const units = plane === 0 ? new Uint16Array(0x10000) : new Uint16Array(0x20000);
    for (let i = 0; i < 0x10000; i++) {
      const cp = base + i;
      if (plane === 0) units[i] = cp >= 0xd800 && cp <= 0xdfff ? 0 : cp;
      else {
        const v = cp - 0x10000;
        units[2 * i] = 0xd800 + (v >> 10);
        units[2 * i + 1] = 0xdc00 + (v & 0x3ff);
      }
    }
    const text = utf16.decode(units);
    const width = plane === 0 ? 1 : 2; // UTF-16 units per code point in this plane
    for (const m of text.matchAll(re)) {
      const cls = m[1] ? CLASS_LETTER : m[2] ? CLASS_NUMBER : CLASS_SPACE;
      const from = base + m.index! / width;
      t.fill(cls, from, from + m[0].length / width);
    }
  }
  table = t;
  return t;
}

/** Class of a code point; -1 (an invalid byte) is OTHER. */
export function classOf(cp: number): number {
  return cp < 0 ? CLASS_OTHER : charClasses()[cp]!;
}
