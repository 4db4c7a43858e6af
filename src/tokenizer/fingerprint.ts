/** A stable hash of everything that decides encode(): written in vocab files, checked on resume. */
export function fingerprintOf(parts: (string | Uint8Array | ArrayBufferView)[]): string {
  const h = new Bun.CryptoHasher("sha256");
  for (const p of parts) {
    if (typeof p === "string") h.update(p);
    else h.update(new Uint8Array(p.buffer, p.byteOffset, p.byteLength));
  }
  return h.digest("hex").slice(0, 32);
}
