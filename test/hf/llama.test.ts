/**
 * A Llama model as a HuggingFace LlamaForCausalLM folder and back: separate q/k/v and gate/up
 * projections cut from our fused matrices, HF names, the config transformers reads, a byte-identical
 * round trip (tied and untied, the rotary base and RMSNorm epsilon kept), and clear refusals of what
 * our Llama block cannot compute (grouped-query attention, biases, rope scaling, another activation).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseSafetensors } from "../checkpoint/helpers.ts";
import { exportHf, HF_FILES } from "../../src/hf/export.ts";
import { importHf } from "../../src/hf/import.ts";
import { type Architecture, viewsOf } from "../../src/model/layout.ts";
import { archFor, randomParams, runCli, tempDir, tinyModelFiles, tinyTokenizer } from "../generate/fixtures.ts";

const { dir, cleanup } = tempDir("tv-hf-llama-");
afterAll(cleanup);
const { tok } = tinyTokenizer(dir);

const LLAMA: Partial<Architecture> = { attention_bias: false, block: "llama", rope_theta: 10000, norm_eps: 1e-5 };
const llamaArch = (over: Partial<Architecture> = {}) => archFor(tok.vocabSize, { ...LLAMA, ...over });

function tensorsOf(folder: string) {
  const { json, data } = parseSafetensors(new Uint8Array(readFileSync(join(folder, "model.safetensors"))));
  const get = (name: string) => {
    const e = json[name] as { shape: number[]; data_offsets: [number, number] };
    return { shape: e.shape, data: new Float32Array(data.slice(e.data_offsets[0], e.data_offsets[1]).buffer) };
  };
  return { json, data, get };
}

const readConfig = (folder: string) => JSON.parse(readFileSync(join(folder, "config.json"), "utf8")) as Record<string, unknown>;

/** Appends an F32 tensor to the folder's model.safetensors. */
function addTensor(folder: string, name: string, shape: number[]): void {
  const { json, data } = tensorsOf(folder);
  const extra = new Uint8Array(4 * shape.reduce((a, b) => a * b, 1));
  json[name] = { dtype: "F32", shape, data_offsets: [data.length, data.length + extra.length] };
  const text = new TextEncoder().encode(JSON.stringify(json));
  const out = new Uint8Array(8 + text.length + data.length + extra.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
  out.set(text, 8);
  out.set(data, 8 + text.length);
  out.set(extra, 8 + text.length + data.length);
  writeFileSync(join(folder, "model.safetensors"), out);
}

describe("HuggingFace Llama export/import", () => {
  for (const [label, over] of [
    ["tied", {}],
    ["untied, rope_theta 500000, norm_eps 1e-6", { tied_embeddings: false, rope_theta: 500000, norm_eps: 1e-6 }],
  ] as const) {
    test(`${label}: export then import gives identical architecture and tensors`, () => {
      const arch = llamaArch(over);
      const params = randomParams(arch, 11);
      const folder = join(dir, label.replace(/\W+/g, "_"));
      exportHf(arch, params, tok, folder);
      const back = importHf(folder);
      expect(back.arch).toEqual(arch);
      expect(Object.keys(back.arch)).toEqual(Object.keys(arch)); // the key order a trained checkpoint has
      expect(Buffer.from(back.params.buffer).equals(Buffer.from(params.buffer))).toBe(true);
      expect(back.tokenizer!.fingerprint).toBe(tok.fingerprint);
      expect(back.notices).toEqual([]);
    });
  }

  test("files, HF names, fused matrices split q|k|v and gate|up, config fields", () => {
    const arch = llamaArch({ tied_embeddings: false, rope_theta: 500000 });
    const params = randomParams(arch, 12);
    const folder = join(dir, "layout");
    const result = exportHf(arch, params, tok, folder);
    expect(result.files).toEqual([...HF_FILES]);
    expect(result.notices).toEqual([]);
    const { json, get } = tensorsOf(folder);
    const { d_model: C, d_ff: F, vocab_size: V } = arch;
    expect((json.__metadata__ as Record<string, string>).format).toBe("pt");
    const layer = (l: number) =>
      [
        "input_layernorm", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
        "post_attention_layernorm", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj",
      ].map((n) => `model.layers.${l}.${n}.weight`);
    const names = ["model.embed_tokens.weight", ...layer(0), ...layer(1), "model.norm.weight", "lm_head.weight"];
    expect(Object.keys(json).filter((k) => k !== "__metadata__").sort()).toEqual([...names].sort());
    const ours = viewsOf(params, arch);
    const qkv = ours.get("h.1.attn.qkv.weight")!;
    const fc = ours.get("h.1.mlp.fc.weight")!;
    const rows = (m: Float32Array, start: number, count: number) => Array.from(m.subarray(start * C, (start + count) * C));
    for (const [name, start] of [["q_proj", 0], ["k_proj", C], ["v_proj", 2 * C]] as const) {
      const t = get(`model.layers.1.self_attn.${name}.weight`);
      expect(t.shape).toEqual([C, C]);
      expect(Array.from(t.data)).toEqual(rows(qkv, start, C));
    }
    for (const [name, start] of [["gate_proj", 0], ["up_proj", F]] as const) {
      const t = get(`model.layers.1.mlp.${name}.weight`);
      expect(t.shape).toEqual([F, C]);
      expect(Array.from(t.data)).toEqual(rows(fc, start, F));
    }
    expect(get("model.layers.0.mlp.down_proj.weight").shape).toEqual([C, F]);
    expect(Array.from(get("model.layers.0.self_attn.o_proj.weight").data)).toEqual(Array.from(ours.get("h.0.attn.proj.weight")!));
    expect(get("lm_head.weight").shape).toEqual([V, C]);
    expect(Array.from(get("model.norm.weight").data)).toEqual(Array.from(ours.get("ln_f.weight")!));
    expect(readConfig(folder)).toMatchObject({
      model_type: "llama", architectures: ["LlamaForCausalLM"], hidden_size: C, intermediate_size: F, num_hidden_layers: 2,
      num_attention_heads: 4, num_key_value_heads: 4, max_position_embeddings: arch.max_seq_len, rms_norm_eps: 1e-5,
      rope_theta: 500000, rope_scaling: null, vocab_size: V, tie_word_embeddings: false, hidden_act: "silu", attention_bias: false,
      mlp_bias: false, bos_token_id: tok.endOfTextId, eos_token_id: tok.endOfTextId,
    });
  });

  test("tied: no lm_head.weight (transformers ties it) and tie_word_embeddings true", () => {
    const folder = join(dir, "tied");
    exportHf(llamaArch(), randomParams(llamaArch(), 13), tok, folder);
    expect(tensorsOf(folder).json["lm_head.weight"]).toBeUndefined();
    expect(readConfig(folder).tie_word_embeddings).toBe(true);
  });

  test("files saved by transformers: defaults, rope_parameters, rotary buffers, a tied lm_head.weight", () => {
    const arch = llamaArch();
    const base = join(dir, "foreign");
    exportHf(arch, randomParams(arch, 14), tok, base);
    const c = readConfig(base);
    // Older versions saved inv_freq; newer ones keep rope_theta in rope_parameters; tied files may still hold the head.
    const { rope_theta: _t, num_key_value_heads: _k, head_dim: _h, rope_scaling: _s, ...rest } = c;
    writeFileSync(join(base, "config.json"), JSON.stringify({ ...rest, rope_parameters: { rope_type: "default", rope_theta: 20000 } }));
    addTensor(base, "model.layers.0.self_attn.rotary_emb.inv_freq", [4]);
    addTensor(base, "lm_head.weight", [arch.vocab_size, arch.d_model]);
    const back = importHf(base);
    expect(back.arch).toEqual({ ...arch, rope_theta: 20000 });
    expect(back.notices.join()).toContain("lm_head.weight differs from embed_tokens but the config ties them");
    // LlamaConfig's own default epsilon is 1e-6: a config without one means that.
    const { rms_norm_eps: _e, ...noEps } = readConfig(base);
    writeFileSync(join(base, "config.json"), JSON.stringify(noEps));
    expect(importHf(base).arch.norm_eps).toBe(1e-6);
  });

  test("refusals name what cannot be held: GQA, biases, rope scaling, another activation, head_dim, missing or extra tensors", () => {
    const arch = llamaArch();
    const base = join(dir, "refuse");
    exportHf(arch, randomParams(arch, 15), tok, base);
    let n = 0;
    const variant = (edit: (folder: string) => void) => {
      const folder = join(dir, `refuse-${n++}`);
      cpSync(base, folder, { recursive: true });
      edit(folder);
      return folder;
    };
    const config = (change: Record<string, unknown>) => variant((f) => writeFileSync(join(f, "config.json"), JSON.stringify({ ...readConfig(f), ...change })));
    const refuse = (folder: string, message: RegExp) => expect(() => importHf(folder)).toThrow(message);
    refuse(config({ num_key_value_heads: 2 }), /num_key_value_heads 2 differs from num_attention_heads 4 \(grouped-query attention\)\. Only models with as many key\/value heads/);
    refuse(config({ attention_bias: true }), /attention_bias is true\. A Llama block here has no biases/);
    refuse(config({ mlp_bias: true }), /mlp_bias is true\. A Llama block here has no biases/);
    refuse(config({ rope_scaling: { rope_type: "linear", factor: 2 } }), /rope_scaling is set\. Only plain rotary positions/);
    refuse(config({ rope_parameters: { rope_type: "yarn", factor: 4 } }), /rope_parameters\.rope_type is "yarn"/);
    refuse(config({ hidden_act: "gelu" }), /hidden_act "gelu" is not the SiLU this model's SwiGLU computes/);
    refuse(config({ head_dim: 16 }), /head_dim 16 × 4 heads is not hidden_size 32/);
    refuse(config({ hidden_size: 36, head_dim: null }), /rotary positions need an even head size/);
    refuse(config({ hidden_size: undefined }), /not a Llama config \(hidden_size: Required/);
    refuse(config({ num_hidden_layers: 3 }), /model\.layers\.2\.input_layernorm\.weight is missing\. The folder is not a complete LlamaForCausalLM/);
    refuse(config({ num_hidden_layers: 1 }), /tensors Llama does not have \(model\.layers\.1\./);
    refuse(config({ tie_word_embeddings: false }), /no lm_head\.weight/);
    refuse(config({ intermediate_size: 32 }), /gate_proj\.weight has shape \[64,32\] but config\.json implies \[32,32\]/);
    refuse(variant((f) => addTensor(f, "model.layers.0.self_attn.q_proj.bias", [32])), /tensors Llama does not have \(model\.layers\.0\.self_attn\.q_proj\.bias\)\. A Llama block here has no biases/);
  });

  test("CLI: export writes a LlamaForCausalLM folder, import gives back the checkpoint's bytes; lopos still refuses", () => {
    const cli = join(dir, "cli");
    mkdirSync(cli);
    const m = tinyModelFiles(cli, { ...LLAMA, tied_embeddings: false });
    const folder = join(cli, "hf");
    const e = runCli(["export", m.checkpoint, "--vocab", m.vocab, "--format", "hf", "--out", folder]);
    expect(e.stderr).toContain("load it with: LlamaForCausalLM.from_pretrained(");
    expect(e.code).toBe(0);
    const back = join(cli, "back");
    const i = runCli(["import", folder, "--out", join(back, "model.bin"), "--vocab-out", join(back, "t.vocab")]);
    expect(i.code).toBe(0);
    expect(i.stderr).toContain("(llama, d_model 32");
    expect(readFileSync(join(back, "model.bin")).equals(readFileSync(m.checkpoint))).toBe(true);
    expect(readFileSync(join(back, "t.vocab")).equals(readFileSync(m.vocab))).toBe(true);
    const lopos = runCli(["export", m.checkpoint, "--format", "lopos", "--out", join(cli, "m.lopos")]);
    expect(lopos.code).toBe(2);
    expect(lopos.stderr).toContain("LOPOS v1 holds only GPT-style models");
    expect(existsSync(join(cli, "m.lopos"))).toBe(false);
  });
});
