/**
 * What identifies training data: a hash of the files' bytes in listing order (their names and
 * places do not matter, so a moved or renamed copy is the same data). Stored in the training plan:
 * resume continues an interrupted stage only on the same data.
 */
import { closeSync, openSync, readSync } from "node:fs";
import { UserError } from "../base/errors.ts";

const CHUNK = 8 << 20;

export function dataFingerprint(files: string[]): string {
  const h = new Bun.CryptoHasher("sha256");
  const buf = new Uint8Array(CHUNK);
  const sizeBytes = new DataView(new ArrayBuffer(8));
  for (const file of files) {
    let fd: number;
    try {
      fd = openSync(file, "r");
    } catch (err) {
      throw new UserError(`--data ${file}: cannot read it (${(err as Error).message}).`);
    }
    let total = 0;
    try {
      for (;;) {
        const n = readSync(fd, buf, 0, buf.length, null);
        if (n === 0) break;
        h.update(buf.subarray(0, n));
        total += n;
      }
    } finally {
      closeSync(fd);
    }
    // Each file's length closes it, so where one file ends and the next begins is part of the hash.
    sizeBytes.setFloat64(0, total, true);
    h.update(new Uint8Array(sizeBytes.buffer));
  }
  return h.digest("hex").slice(0, 32);
}
