/** What every tokenizer (our byte-level BPE, LoopOS's word-level vocabulary) offers the
 * rest of the program. The model only sees ids in [0, vocabSize). */
export type TokenizerType = "bpe" | "loopos-word";

export interface Tokenizer {
  readonly type: TokenizerType;
  /** Number of ids, specials included. */
  readonly vocabSize: number;
  /** Stable hash of everything that decides encode(): checked on resume against the checkpoint. */
  readonly fingerprint: string;
  /** Id that separates documents, or null when the format has none (LoopOS's word vocab). */
  readonly endOfTextId: number | null;
  /** Text (or raw bytes) to ids. */
  encode(text: string | Uint8Array): Uint32Array;
  /** Ids back to text (bytes that are not valid UTF-8 decode with U+FFFD). */
  decode(ids: ArrayLike<number>): string;
  /** Ids back to the exact bytes (byte-level BPE round-trips any input exactly). */
  decodeBytes(ids: ArrayLike<number>): Uint8Array;
}
