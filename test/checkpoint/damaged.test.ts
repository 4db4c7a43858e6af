import { afterAll, beforeEach, describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readCheckpoint, readCheckpointHeader, writeCheckpoint } from "../../src/checkpoint/index.ts";
import { UserError } from "../../src/base/errors.ts";
import { parameterCount } from "../../src/model/layout.ts";
import { editHeader, editMetadata, filled, paramsFor, parseSafetensors, tempDir, tinyArch, tokenizer, trainingState, writeRaw } from "./helpers.ts";

const tmp = tempDir();
afterAll(tmp.cleanup);

const good = join(tmp.dir, "good.bin");
const n = parameterCount(tinyArch);
writeCheckpoint(good, { arch: tinyArch, tokenizer, training: trainingState(), params: paramsFor(tinyArch), adam: { m: filled(n, 2), v: filled(n, 3) } });
const goodBytes = new Uint8Array(readFileSync(good));
const headerEnd = 8 + parseSafetensors(goodBytes).headerLength;

const path = join(tmp.dir, "damaged.bin");
beforeEach(() => copyFileSync(good, path));

/** The read fails with a UserError that names the file and matches `pattern`. */
function expectUserError(fn: () => unknown, pattern: RegExp, file = path): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(UserError);
  const message = (caught as UserError).message;
  expect(message).toContain(file);
  expect(message).toMatch(pattern);
}

describe("missing or wrong kind of file", () => {
  test("a missing file has LoopOS's exact message", () => {
    const missing = join(tmp.dir, "nope", "model_checkpoint.bin");
    expect(() => readCheckpoint(missing)).toThrow(new UserError(`Checkpoint file not found: ${missing}`));
    expect(() => readCheckpointHeader(missing)).toThrow(`Checkpoint file not found: ${missing}`);
  });

  test("a folder is named as a folder", () => {
    const dir = join(tmp.dir, "a-folder");
    mkdirSync(dir, { recursive: true });
    expectUserError(() => readCheckpoint(dir), /is a folder/, dir);
  });

  test("an empty file", () => {
    writeFileSync(path, new Uint8Array(0));
    expectUserError(() => readCheckpoint(path), /only 0 bytes/);
  });

  test("a zip (PyTorch) file and a text file are recognised", () => {
    writeFileSync(path, "PK\x03\x04 some zip content here");
    expectUserError(() => readCheckpoint(path), /zip archive/);
    writeFileSync(path, '{"d_model": 8}\n');
    expectUserError(() => readCheckpoint(path), /text file/);
  });

  test("a plain safetensors file without our metadata", () => {
    writeRaw(path, JSON.stringify({ w: { dtype: "F32", shape: [2], data_offsets: [0, 8] } }), new Uint8Array(8));
    expectUserError(() => readCheckpoint(path), /not a train-vocab checkpoint/);
  });
});

describe("truncation", () => {
  test("cut at many points, every read fails with a clear message", () => {
    const cuts = new Set([1, 4, 7, 8, 9, headerEnd >> 1, headerEnd - 1, headerEnd, headerEnd + 1, headerEnd + 4]);
    for (let c = headerEnd + 5; c < goodBytes.length; c += Math.ceil((goodBytes.length - headerEnd) / 40)) cuts.add(c);
    cuts.add(goodBytes.length - 1);
    for (const cut of cuts) {
      writeFileSync(path, goodBytes.subarray(0, cut));
      expectUserError(() => readCheckpoint(path), /truncated|too short|only \d+ bytes/);
      expectUserError(() => readCheckpointHeader(path), /truncated|too short|only \d+ bytes/);
    }
  });

  test("the truncation message gives both sizes and a hint", () => {
    writeFileSync(path, goodBytes.subarray(0, goodBytes.length - 100));
    const dataLength = goodBytes.length - headerEnd;
    expectUserError(() => readCheckpoint(path), new RegExp(`header says ${dataLength} bytes of tensors, the file has ${dataLength - 100}.*interrupted`));
  });

  test("extra bytes after the last tensor", () => {
    writeFileSync(path, Buffer.concat([goodBytes, new Uint8Array(16)]));
    expectUserError(() => readCheckpoint(path), /16 unexpected bytes after the last tensor/);
  });
});

describe("corrupt bytes", () => {
  test("a flipped byte in the tensor data fails the checksum", () => {
    for (const at of [headerEnd, headerEnd + 1000, goodBytes.length - 1]) {
      const bytes = goodBytes.slice();
      bytes[at]! ^= 0x10;
      writeFileSync(path, bytes);
      expectUserError(() => readCheckpoint(path), /checksum mismatch \(stored [0-9a-f]{16}, computed [0-9a-f]{16}\).*restore it/);
    }
  });

  test("a changed training-state digit fails the checksum (the metadata is covered too)", () => {
    const text = new TextDecoder().decode(goodBytes.subarray(0, headerEnd));
    const at = text.indexOf('\\"global_step\\":120') + '\\"global_step\\":'.length;
    expect(at).toBeGreaterThan(20);
    const bytes = goodBytes.slice();
    bytes[at] = "7".charCodeAt(0);
    writeFileSync(path, bytes);
    expect(readCheckpointHeader(path).training?.global_step).toBe(720);
    expectUserError(() => readCheckpoint(path), /checksum mismatch/);
  });

  test("header length field past the end of the file", () => {
    const bytes = goodBytes.slice();
    new DataView(bytes.buffer).setBigUint64(0, BigInt(goodBytes.length), true);
    writeFileSync(path, bytes);
    expectUserError(() => readCheckpoint(path), /header length field says \d+ bytes but only \d+ bytes follow/);
    new DataView(bytes.buffer).setBigUint64(0, 0xffff_ffff_ffff_ffffn, true);
    writeFileSync(path, bytes);
    expectUserError(() => readCheckpoint(path), /header length field says 18446744073709551615 bytes/);
  });

  test("bad JSON and bad UTF-8 in the header", () => {
    const bytes = goodBytes.slice();
    bytes[8] = "[".charCodeAt(0);
    writeFileSync(path, bytes);
    expectUserError(() => readCheckpoint(path), /not valid JSON/);
    bytes[8] = 0xff;
    writeFileSync(path, bytes);
    expectUserError(() => readCheckpoint(path), /not valid UTF-8/);
  });

  test("random single-byte damage anywhere is always a UserError, never a crash or a silent load", () => {
    let s = 12345;
    for (let i = 0; i < 300; i++) {
      s = (s * 1103515245 + 12345) % 2 ** 31;
      const at = s % goodBytes.length;
      const bytes = goodBytes.slice();
      bytes[at]! ^= 1 + (s % 255);
      writeFileSync(path, bytes);
      expectUserError(() => readCheckpoint(path), /./);
    }
  });
});

describe("a well-formed container with the wrong contents", () => {
  test("a tensor shape that does not match the architecture", () => {
    editHeader(path, (json) => {
      const e = json["h.0.mlp.fc.weight"] as { shape: number[] };
      e.shape = [8, 16];
    });
    expectUserError(() => readCheckpoint(path), /tensor "h\.0\.mlp\.fc\.weight" has shape \[8, 16\] but the architecture \(d_model 8.*\) needs \[16, 8\]/);
  });

  test("metadata architecture that disagrees with the tensors", () => {
    editMetadata(path, (meta) => {
      (meta.arch as { d_ff: number }).d_ff = 32;
    });
    expectUserError(() => readCheckpointHeader(path), /needs \[32, 8\]/);
  });

  test("a shape that does not match its byte range", () => {
    editHeader(path, (json) => {
      (json.wte as { shape: number[] }).shape = [11, 9];
    });
    expectUserError(() => readCheckpoint(path), /tensor "wte" has shape \[11, 9\] \(396 bytes of F32\) but data_offsets span 352 bytes/);
  });

  test("huge declared sizes are rejected before anything is allocated", () => {
    editHeader(path, (json) => {
      (json.wte as { shape: number[]; data_offsets: number[] }).shape = [2 ** 40, 2 ** 20];
    });
    expectUserError(() => readCheckpoint(path), /impossible size/);
    copyFileSync(good, path);
    editHeader(path, (json) => {
      const e = json["adam.v.ln_f.bias"] as { shape: number[]; data_offsets: number[] };
      e.shape = [2 ** 35];
      e.data_offsets = [e.data_offsets[0]!, e.data_offsets[0]! + 2 ** 37];
    });
    expectUserError(() => readCheckpoint(path), /truncated: the header says \d+ bytes of tensors/);
    copyFileSync(good, path);
    editMetadata(path, (meta) => {
      (meta.arch as { num_layers: number }).num_layers = 2 ** 30;
    });
    expectUserError(() => readCheckpoint(path), /arch\.num_layers/);
  });

  test("overlapping and gapped offsets", () => {
    editHeader(path, (json) => {
      const e = json.wpe as { data_offsets: number[] };
      e.data_offsets = [e.data_offsets[0]! - 4, e.data_offsets[1]! - 4];
    });
    expectUserError(() => readCheckpoint(path), /overlaps/);
    copyFileSync(good, path);
    editHeader(path, (json) => {
      const e = json["adam.v.ln_f.bias"] as { data_offsets: number[] };
      e.data_offsets = [e.data_offsets[0]! + 4, e.data_offsets[1]! + 4];
    });
    expectUserError(() => readCheckpoint(path), /gap of 4 bytes before tensor "adam\.v\.ln_f\.bias"/);
  });

  test("negative, NaN-like and wrong-typed metadata values", () => {
    const cases: [(m: Record<string, unknown>) => void, RegExp][] = [
      [(m) => ((m.training as { global_step: number }).global_step = -1), /training\.global_step/],
      [(m) => (((m.training as { plan: Record<string, unknown> }).plan.peak_lr = null)), /training\.plan\.peak_lr/],
      [(m) => (((m.training as { plan: Record<string, unknown> }).plan.eps = "NaN")), /training\.plan\.eps/],
      [(m) => (((m.training as { plan: Record<string, unknown> }).plan.beta2 = 1)), /training\.plan\.beta2/],
      [(m) => ((m.arch as Record<string, unknown>).d_model = 7), /d_model must be a multiple of num_heads/],
      [(m) => ((m.arch as Record<string, unknown>).vocab_size = 0), /arch\.vocab_size/],
      [(m) => ((m.tokenizer as Record<string, unknown>).vocab_size = 99), /tokenizer has more ids/],
      [(m) => ((m.training as Record<string, unknown>).step_in_epoch = 51), /step_in_epoch is past the end/],
      [(m) => (m.format = "something-else"), /format/],
    ];
    for (const [edit, pattern] of cases) {
      copyFileSync(good, path);
      editMetadata(path, edit);
      expectUserError(() => readCheckpoint(path), pattern);
      expectUserError(() => readCheckpoint(path), /metadata is invalid/);
    }
  });

  test("a newer format version asks for an upgrade", () => {
    editMetadata(path, (meta) => (meta.version = 2));
    expectUserError(() => readCheckpointHeader(path), /format version 2; this train-vocab reads version 1 \(upgrade/);
  });

  test("train_vocab metadata that is not JSON, metadata values that are not strings", () => {
    editHeader(path, (json) => ((json.__metadata__ as Record<string, string>).train_vocab = "{oops"));
    expectUserError(() => readCheckpoint(path), /train_vocab metadata is not valid JSON/);
    copyFileSync(good, path);
    editHeader(path, (json) => ((json.__metadata__ as Record<string, unknown>).extra = 5));
    expectUserError(() => readCheckpoint(path), /__metadata__\.extra is not a string/);
  });

  test("wrong and unknown dtypes", () => {
    editHeader(path, (json) => ((json.wte as { dtype: string }).dtype = "I32"));
    expectUserError(() => readCheckpoint(path), /tensor "wte" is I32; checkpoints store F32/);
    copyFileSync(good, path);
    editHeader(path, (json) => ((json.wte as { dtype: string }).dtype = "F33"));
    expectUserError(() => readCheckpoint(path), /unknown dtype "F33"/);
  });

  test("missing, unexpected and partial optimizer tensors", () => {
    editHeader(path, (json) => {
      json.bogus = json.wte;
      delete json.wte;
    });
    expectUserError(() => readCheckpoint(path), /tensor "bogus" that the architecture .* does not have/);
    copyFileSync(good, path);
    editHeader(path, (json) => {
      json["adam.m.wte"] = json["adam.v.wte"];
      delete json["adam.v.wte"];
      // keep the tiling by making adam.m.wte cover the old range; the original adam.m.wte is dropped
    });
    expectUserError(() => readCheckpoint(path), /gap|only some tensors/);
  });

  test("bad entries: shape and offsets of the wrong form", () => {
    editHeader(path, (json) => ((json.wte as { shape: unknown }).shape = [11, -8]));
    expectUserError(() => readCheckpoint(path), /bad shape/);
    copyFileSync(good, path);
    editHeader(path, (json) => ((json.wte as { data_offsets: unknown }).data_offsets = [0]));
    expectUserError(() => readCheckpoint(path), /bad data_offsets/);
    copyFileSync(good, path);
    editHeader(path, (json) => (json.wte = 3));
    expectUserError(() => readCheckpoint(path), /no \{dtype, shape, data_offsets\} entry/);
  });
});
