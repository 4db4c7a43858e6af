/**
 * The checkpoint checksum: XXH64 (the standard xxHash 64-bit, so any xxhash library can verify it),
 * chained so it can be computed over pieces that are never concatenated in memory:
 *
 *   h = 0;  for each piece p in order:  h = XXH64(p, seed = h)
 *
 * The pieces are the `train_vocab` metadata string (UTF-8) and then each tensor's bytes in file
 * order, so both the training state and every weight are covered. In Python:
 *   h = xxhash.xxh64(meta.encode(), seed=0).intdigest()
 *   for t in tensors_in_offset_order: h = xxhash.xxh64(t_bytes, seed=h).intdigest()
 * XXH64 runs at memory speed here (~19 GB/s), so verifying on every load costs little.
 */
export const CHECKSUM_ALGORITHM = "xxh64-chain";

export class ChainedChecksum {
  private h = 0n;

  update(piece: string | ArrayBufferView): this {
    const bytes =
      typeof piece === "string"
        ? new TextEncoder().encode(piece)
        : new Uint8Array(piece.buffer, piece.byteOffset, piece.byteLength);
    this.h = BigInt.asUintN(64, BigInt(Bun.hash.xxHash64(bytes, this.h)));
    return this;
  }

  /** 16 lowercase hex digits. */
  hex(): string {
    return this.h.toString(16).padStart(16, "0");
  }
}
