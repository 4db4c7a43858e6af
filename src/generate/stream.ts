/**
 * Turning generated ids into text as they arrive. Byte-level BPE tokens are byte strings that may end
 * inside a UTF-8 character, so their bytes go through a streaming decoder that holds an incomplete
 * character back until the next token completes it. Other tokenizers (LoopOS's word vocabulary)
 * put separators between tokens, so the new text is what decoding the previous token plus this one
 * adds to decoding the previous token alone.
 */
import type { Tokenizer } from "../tokenizer/index.ts";

export class TextStream {
  private readonly utf8 = new TextDecoder("utf-8", { fatal: false });
  private anchor: number | null;

  /** `lastPromptId`: the token the first generated one follows (it decides the separator). */
  constructor(private readonly tok: Tokenizer, lastPromptId: number | null) {
    this.anchor = lastPromptId;
  }

  /** The text this token adds. */
  push(id: number): string {
    if (this.tok.type === "bpe") return this.utf8.decode(this.tok.decodeBytes([id]), { stream: true });
    const alone = this.tok.decode([id]);
    if (alone.length === 0) return ""; // a special the decoder skips: keep the separator rule's anchor
    let text = alone;
    if (this.anchor !== null) {
      const before = this.tok.decode([this.anchor]);
      const both = this.tok.decode([this.anchor, id]);
      text = both.startsWith(before) ? both.slice(before.length) : alone;
    }
    this.anchor = id;
    return text;
  }

  /** Whatever an unfinished UTF-8 character left behind (as U+FFFD). */
  end(): string {
    return this.tok.type === "bpe" ? this.utf8.decode() : "";
  }
}
