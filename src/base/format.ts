/**
 * Numbers and counts the way a person writes them, for every line the tool prints: counts with
 * thousands separators and the right plural, rates without float noise (3e-4 · 0.1 is "0.00003",
 * not "0.000030000000000000004").
 */

/** A whole count with thousands separators: 49179 → "49,179". */
export function int(n: number): string {
  return Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : String(n);
}

/**
 * A count and its noun, singular for exactly 1: count(1, "step") → "1 step", count(2000, "step") →
 * "2,000 steps". `plural` is for nouns that do not just take an "s" (count(2, "child", "children")).
 */
export function count(n: number, word: string, plural = `${word}s`): string {
  return `${int(n)} ${n === 1 ? word : plural}`;
}

/** The noun alone, for "epoch 1/3"-style lines where the number is printed elsewhere. */
export function noun(n: number, word: string, plural = `${word}s`): string {
  return n === 1 ? word : plural;
}

/**
 * A real number to `digits` significant digits (default 4), trailing zeros dropped: 0.0003 →
 * "0.0003", 1.0000000000000002e-6 → "1e-6", 2.5e-5 → "2.5e-5", 0.95 → "0.95", 1234.5678 → "1235".
 * Magnitudes below 1e-4 use the short exponent form, which is how learning rates are written.
 */
export function num(x: number, digits = 4): string {
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return "0";
  const rounded = Number(x.toPrecision(digits));
  const abs = Math.abs(rounded);
  if (abs < 1e-4 || abs >= 1e15) return rounded.toExponential().replace("e+", "e");
  return String(rounded);
}
