/**
 * Token bytes ⇄ the quoted, readable form used in .vocab files: valid UTF-8 shows as itself, except
 * controls, format characters and whitespace other than the plain space; those, and every byte that
 * is not part of valid UTF-8, become \xHH. Also \\, \" \n \t \r.
 */
const HEX = "0123456789abcdef";
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{White_Space}]/u;

/** Length of the valid UTF-8 sequence at b[i], or 0 if b[i] does not start one. */
export function utf8SeqLength(b: Uint8Array, i: number): number {
  const c = b[i]!;
  if (c < 0x80) return 1;
  const cont = (k: number) => i + k < b.length && (b[i + k]! & 0xc0) === 0x80;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    if (!cont(1) || !cont(2)) return 0;
    const v = ((c & 0x0f) << 12) | ((b[i + 1]! & 0x3f) << 6) | (b[i + 2]! & 0x3f);
    return v >= 0x800 && (v < 0xd800 || v > 0xdfff) ? 3 : 0;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    const v = ((c & 0x07) << 18) | ((b[i + 1]! & 0x3f) << 12) | ((b[i + 2]! & 0x3f) << 6) | (b[i + 3]! & 0x3f);
    return v >= 0x10000 && v <= 0x10ffff ? 4 : 0;
  }
  return 0;
}

const utf8 = new TextDecoder();

export function escapeToken(bytes: Uint8Array): string {
  let out = '"';
  for (let i = 0; i < bytes.length; ) {
    const c = bytes[i]!;
    const n = utf8SeqLength(bytes, i);
    if (n === 0) {
      out += `\\x${HEX[c >> 4]}${HEX[c & 15]}`;
      i++;
      continue;
    }
    if (n === 1) {
      if (c === 0x5c) out += "\\\\";
      else if (c === 0x22) out += '\\"';
      else if (c === 0x0a) out += "\\n";
      else if (c === 0x09) out += "\\t";
      else if (c === 0x0d) out += "\\r";
      else if (c < 0x20 || c === 0x7f) out += `\\x${HEX[c >> 4]}${HEX[c & 15]}`;
      else out += String.fromCharCode(c);
      i++;
      continue;
    }
    const ch = utf8.decode(bytes.subarray(i, i + n));
    if (INVISIBLE.test(ch)) for (let k = 0; k < n; k++) out += `\\x${HEX[bytes[i + k]! >> 4]}${HEX[bytes[i + k]! & 15]}`;
    else out += ch;
    i += n;
  }
  return out + '"';
}

const encoder = new TextEncoder();

/**
 * Parse a quoted token starting at text[start] (which must be '"'). Returns the bytes and the index
 * just past the closing quote, or an error message.
 */
export function unescapeToken(text: string, start: number): { bytes: Uint8Array; end: number } | { error: string } {
  if (text[start] !== '"') return { error: "a token must start with a double quote" };
  // At most 3 UTF-8 bytes per UTF-16 unit (a surrogate pair: 4 bytes for 2 units), 1 per escape char.
  const buf = new Uint8Array(3 * (text.length - start));
  let n = 0;
  const out = { push: (b: number) => void (buf[n++] = b) };
  let i = start + 1;
  while (i < text.length) {
    const ch = text[i]!;
    if (ch === '"') return { bytes: buf.slice(0, n), end: i + 1 };
    if (ch === "\\") {
      const e = text[i + 1];
      if (e === "\\") out.push(0x5c);
      else if (e === '"') out.push(0x22);
      else if (e === "n") out.push(0x0a);
      else if (e === "t") out.push(0x09);
      else if (e === "r") out.push(0x0d);
      else if (e === "x") {
        const hex = text.slice(i + 2, i + 4);
        if (!/^[0-9a-fA-F]{2}$/.test(hex)) return { error: `bad escape "\\x${hex}" (\\x needs two hex digits)` };
        out.push(parseInt(hex, 16));
        i += 4;
        continue;
      } else return { error: `bad escape "\\${e ?? ""}" (use \\\\, \\", \\n, \\t, \\r or \\xHH)` };
      i += 2;
      continue;
    }
    const cp = text.codePointAt(i)!;
    const w = cp > 0xffff ? 2 : 1;
    if (cp < 0x20 || cp === 0x7f) return { error: "a control character inside a token must be escaped" };
    if (cp < 0x80) out.push(cp);
    else n += encoder.encodeInto(text.slice(i, i + w), buf.subarray(n)).written;
    i += w;
  }
  return { error: "the token's closing double quote is missing" };
}
