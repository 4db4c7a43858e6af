import { afterAll, describe, expect, test } from "bun:test";
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseSafetensors } from "../checkpoint/helpers.ts";
import { exportHf, HF_FILES } from "../../src/hf/export.ts";
import { importHf } from "../../src/hf/import.ts";
import { readTokenizerFiles } from "../../src/hf/tokenizer_files.ts";
import { viewsOf } from "../../src/model/layout.ts";
import { archFor, randomParams, runCli, tempDir, tinyModelFiles, tinyTokenizer } from "../generate/fixtures.ts";

const { dir, cleanup } = tempDir("tv-hf-");
afterAll(cleanup);
const { tok } = tinyTokenizer(dir);

function tensorsOf(folder: string) {
  const { json, data } = parseSafetensors(new Uint8Array(readFileSync(join(folder, "model.safetensors"))));
  const get = (name: string) => {
    const e = json[name] as { shape: number[]; data_offsets: [number, number] };
    return { shape: e.shape, data: new Float32Array(data.slice(e.data_offsets[0], e.data_offsets[1]).buffer) };
  };
  return { json, get };
}

describe("HuggingFace export/import", () => {
  for (const [label, over] of [
    ["tied, attention biases", {}],
    ["untied, no attention biases (LoopOS-shaped)", { tied_embeddings: false, attention_bias: false }],
  ] as const) {
    test(`${label}: export then import gives identical architecture and tensors`, () => {
      const arch = archFor(tok.vocabSize, over);
      const params = randomParams(arch, 5);
      const folder = join(dir, label.replace(/\W+/g, "_"));
      exportHf(arch, params, tok, folder);
      const back = importHf(folder);
      expect(back.arch).toEqual(arch);
      expect(Buffer.from(back.params.buffer).equals(Buffer.from(params.buffer))).toBe(true);
      expect(back.tokenizer!.fingerprint).toBe(tok.fingerprint);
    });
  }

  test("GPT-2 names, Conv1D layouts, tied head omitted, format pt; config fields", () => {
    const arch = archFor(tok.vocabSize);
    const params = randomParams(arch, 6);
    const folder = join(dir, "layout");
    // HF_FILES is what the CLI checks before an export may replace one: exactly what is written.
    expect(exportHf(arch, params, tok, folder).files).toEqual([...HF_FILES]);
    const { json, get } = tensorsOf(folder);
    const C = arch.d_model;
    expect((json.__metadata__ as Record<string, string>).format).toBe("pt");
    expect(json["lm_head.weight"]).toBeUndefined();
    const ours = viewsOf(params, arch).get("h.1.attn.qkv.weight")!; // [3C, C]
    const hf = get("transformer.h.1.attn.c_attn.weight"); // [C, 3C]
    expect(hf.shape).toEqual([C, 3 * C]);
    for (const [i, j] of [[0, 0], [3, 70], [C - 1, 3 * C - 1], [17, 40]] as const) expect(hf.data[i * 3 * C + j]).toBe(ours[j * C + i]!);
    expect(get("transformer.h.0.mlp.c_fc.weight").shape).toEqual([C, arch.d_ff]);
    expect(get("transformer.h.0.mlp.c_proj.weight").shape).toEqual([arch.d_ff, C]);
    expect(get("transformer.wpe.weight").shape).toEqual([arch.max_seq_len, C]);
    const config = JSON.parse(readFileSync(join(folder, "config.json"), "utf8"));
    expect(config).toMatchObject({
      model_type: "gpt2", architectures: ["GPT2LMHeadModel"], n_embd: C, n_head: arch.num_heads, n_layer: arch.num_layers,
      n_inner: arch.d_ff, n_positions: arch.max_seq_len, vocab_size: arch.vocab_size, activation_function: "gelu_new",
      layer_norm_epsilon: 1e-5, tie_word_embeddings: true, eos_token_id: tok.endOfTextId,
    });
  });

  test("untied: lm_head.weight exported and tie_word_embeddings false; missing biases become zeros", () => {
    const arch = archFor(tok.vocabSize, { tied_embeddings: false, attention_bias: false });
    const folder = join(dir, "untied");
    const result = exportHf(arch, randomParams(arch, 2), tok, folder);
    const { get } = tensorsOf(folder);
    expect(get("lm_head.weight").shape).toEqual([arch.vocab_size, arch.d_model]);
    expect(get("transformer.h.0.attn.c_attn.bias").data.every((x) => x === 0)).toBe(true);
    expect(JSON.parse(readFileSync(join(folder, "config.json"), "utf8")).tie_word_embeddings).toBe(false);
    expect(result.notices.join()).toContain("zeros");
  });

  test("vocab.json + merges.txt describe the same tokenizer as tokenizer.json", () => {
    const folder = join(dir, "layout");
    const copy = join(dir, "two-file");
    mkdirSync(copy);
    for (const f of ["vocab.json", "merges.txt"]) writeFileSync(join(copy, f), readFileSync(join(folder, f)));
    expect(readTokenizerFiles(copy)!.fingerprint).toBe(tok.fingerprint);
    expect(readFileSync(join(folder, "merges.txt"), "utf8").startsWith("#version: 0.2\n")).toBe(true);
  });

  test("files saved by others: no transformer. prefix, mask buffers, half precision", () => {
    const arch = archFor(tok.vocabSize);
    const folder = join(dir, "foreign");
    exportHf(arch, randomParams(arch, 8), tok, folder);
    const { json, data } = parseSafetensors(new Uint8Array(readFileSync(join(folder, "model.safetensors"))));
    // Rewrite: strip "transformer.", store wte as F16 (values rounded), add a causal-mask buffer.
    const parts: Uint8Array[] = [];
    const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
    let offset = 0;
    const add = (name: string, dtype: string, shape: number[], bytes: Uint8Array) => {
      header[name] = { dtype, shape, data_offsets: [offset, offset + bytes.length] };
      offset += bytes.length;
      parts.push(bytes);
    };
    for (const [name, e] of Object.entries(json)) {
      if (name === "__metadata__") continue;
      const { shape, data_offsets: [b, end] } = e as { shape: number[]; data_offsets: [number, number] };
      const f32 = new Float32Array(data.slice(b, end).buffer);
      const key = name.replace(/^transformer\./, "");
      if (key === "wte.weight") {
        const half = new Uint16Array(f32.length).fill(0x3c00); // 1.0 in F16
        half[1] = 0xc000; // -2.0
        add(key, "F16", shape, new Uint8Array(half.buffer));
      } else add(key, "F32", shape, new Uint8Array(f32.buffer));
    }
    add("h.0.attn.bias", "F32", [1, 1, 2, 2], new Uint8Array(16));
    const text = new TextEncoder().encode(JSON.stringify(header));
    const out = new Uint8Array(8 + text.length + offset);
    new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
    out.set(text, 8);
    let o = 8 + text.length;
    for (const p of parts) {
      out.set(p, o);
      o += p.length;
    }
    writeFileSync(join(folder, "model.safetensors"), out);
    const back = importHf(folder);
    const wte = viewsOf(back.params, back.arch).get("wte")!;
    expect(wte[0]).toBe(1);
    expect(wte[1]).toBe(-2);
  });

  test("refusals name the problem: no folder, no config, another model type, other activation, missing or extra tensor, wrong shape", () => {
    const arch = archFor(tok.vocabSize);
    const base = join(dir, "refuse");
    exportHf(arch, randomParams(arch, 9), tok, base);
    const variant = (name: string, edit: (folder: string) => void) => {
      const folder = join(dir, name);
      cpSync(base, folder, { recursive: true });
      edit(folder);
      return folder;
    };
    const editConfig = (f: string, change: Record<string, unknown>) => {
      const c = JSON.parse(readFileSync(join(f, "config.json"), "utf8"));
      writeFileSync(join(f, "config.json"), JSON.stringify({ ...c, ...change }));
    };
    expect(() => importHf(join(dir, "nothing"))).toThrow(/Model folder not found/);
    expect(() => importHf(join(base, "config.json"))).toThrow(/config.json is a file, not a folder/);
    expect(() => importHf(variant("noconfig", (f) => rmSync(join(f, "config.json"))))).toThrow(/no config.json/);
    expect(() => importHf(variant("mistral", (f) => editConfig(f, { model_type: "mistral", architectures: ["MistralForCausalLM"] })))).toThrow(/not "gpt2" or "llama"/);
    expect(() => importHf(variant("relu", (f) => editConfig(f, { activation_function: "relu" })))).toThrow(/activation_function "relu"/);
    expect(() => importHf(variant("eps", (f) => editConfig(f, { layer_norm_epsilon: 1e-6 })))).toThrow("layer_norm_epsilon 1e-6 differs from the 1e-5 our kernels use");
    expect(() => importHf(variant("layers", (f) => editConfig(f, { n_layer: 3 })))).toThrow(/transformer.h.2.* is missing/);
    expect(() => importHf(variant("inner", (f) => editConfig(f, { n_inner: 128 })))).toThrow(/has shape .* but config.json implies/);
    expect(() => importHf(variant("fewer", (f) => editConfig(f, { n_layer: 1 })))).toThrow(/tensors GPT-2 does not have/);
    expect(() => importHf(variant("untied", (f) => editConfig(f, { tie_word_embeddings: false })))).toThrow(/no lm_head.weight/);
    expect(() => importHf(variant("nomodel", (f) => rmSync(join(f, "model.safetensors"))))).toThrow(/no model.safetensors/);
    const folderInstead = (f: string, name: string) => {
      rmSync(join(f, name));
      mkdirSync(join(f, name));
    };
    expect(() => importHf(variant("dirweights", (f) => folderInstead(f, "model.safetensors")))).toThrow(/model.safetensors: it is not a file/);
    expect(() => importHf(variant("dirtokenizer", (f) => folderInstead(f, "tokenizer.json")))).toThrow(/Cannot read the tokenizer .*tokenizer.json: the path is a folder/);
  });

  test("CLI: export → import writes a byte-identical checkpoint and vocab", () => {
    mkdirSync(join(dir, "cli"));
    const m = tinyModelFiles(join(dir, "cli"));
    const folder = join(dir, "cli", "hf");
    const e = runCli(["export", m.checkpoint, "--vocab", m.vocab, "--format", "hf", "--out", folder]);
    expect(e.code).toBe(0);
    const i = runCli(["import", folder, "--out", join(dir, "cli", "back", "model.bin"), "--vocab-out", join(dir, "cli", "back", "t.vocab")]);
    expect(i.code).toBe(0);
    expect(readFileSync(join(dir, "cli", "back", "model.bin")).equals(readFileSync(m.checkpoint))).toBe(true);
    expect(readFileSync(join(dir, "cli", "back", "t.vocab")).equals(readFileSync(m.vocab))).toBe(true);
    const missing = runCli(["export", m.checkpoint, "--vocab", m.vocab]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("--out is required");
  });
});
