/** "Did you mean": the closest known name by edit distance, if it is close enough to be a typo. */
export function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

export function suggestOption(given: string, known: string[]): string | null {
  return closest(given.startsWith("-") ? given : `--${given}`, known);
}

export function suggestCommand(given: string, known: string[]): string | null {
  // "train" or "tok": the start of a longer name is what the user meant.
  return closest(given, known) ?? (given.length >= 3 ? known.find((name) => name.startsWith(given)) ?? null : null);
}

function closest(given: string, known: string[]): string | null {
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const name of known) {
    const d = editDistance(given, name);
    if (d < bestDistance) {
      bestDistance = d;
      best = name;
    }
  }
  return best !== null && bestDistance <= Math.max(2, Math.floor(given.length / 3)) ? best : null;
}
