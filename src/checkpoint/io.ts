/** Small read helpers shared by the container readers: opening with user-facing errors, and reads
 * that never silently come back short. */
import { closeSync, existsSync, fstatSync, openSync, readSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../base/errors.ts";
import { describeFsError } from "../base/files.ts";

export interface OpenFile {
  fd: number;
  size: number;
}

/** Open a regular file for reading; `notFound` is the exact message for a missing file. */
export function openForRead(path: string, notFound: string): OpenFile {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === "ENOENT") throw new UserError(notFound);
    throw new UserError(`Could not open ${path}: ${describeFsError(err)}.`);
  }
  const stat = fstatSync(fd);
  if (!stat.isFile()) {
    closeSync(fd);
    if (stat.isDirectory()) throw folderGivenAsCheckpoint(path);
    throw new UserError(`${path} is not a regular file; expected a checkpoint file.`);
  }
  return { fd, size: stat.size };
}

/** A folder where a checkpoint was expected (a run's --output, most likely), with the checkpoint in
 * it when there is one. */
export function folderGivenAsCheckpoint(path: string): UserError {
  const inside = join(path, "model_checkpoint.bin");
  const hint = existsSync(inside)
    ? `Did you mean ${inside}?`
    : existsSync(join(path, "config.json"))
      ? `It looks like a HuggingFace folder: bring it in first with \`train_vocab import ${path} --out <file>\`.`
      : "Give the checkpoint file itself (training writes <output dir>/model_checkpoint.bin).";
  return new UserError(`${path} is a folder; expected a checkpoint file. ${hint}`);
}

/** Largest single read: read(2) on Linux moves at most ~2 GiB per call. */
const MAX_READ = 1 << 30;

/** Fill `dst` from `position`; returns how many bytes were read (less than asked only at end of file). */
export function readExactly(fd: number, dst: ArrayBufferView, position: number): number {
  const bytes = new Uint8Array(dst.buffer, dst.byteOffset, dst.byteLength);
  let done = 0;
  while (done < bytes.byteLength) {
    const n = readSync(fd, bytes, done, Math.min(MAX_READ, bytes.byteLength - done), position + done);
    if (n <= 0) break;
    done += n;
  }
  return done;
}
