/** A server on 127.0.0.1 (any free port) over a tiny random model, in this process. */
import { InferenceEngine } from "../../src/generate/engine.ts";
import { generate } from "../../src/generate/generate.ts";
import { loadModel } from "../../src/generate/load.ts";
import { DEFAULT_LIMITS, type ServeLimits, startServer } from "../../src/serve/server.ts";
import { tempDir, tinyModelFiles } from "../generate/fixtures.ts";

export async function tinyServer(limits: Partial<ServeLimits> = {}) {
  const { dir, cleanup } = tempDir("tv-serve-");
  const files = tinyModelFiles(dir);
  const { checkpoint, tokenizer } = loadModel(files.checkpoint, files.vocab);
  const server = startServer(new InferenceEngine(checkpoint.arch, checkpoint.params), tokenizer, {
    host: "127.0.0.1", port: 0, modelId: "tiny", ...DEFAULT_LIMITS, ...limits,
  });
  /** What `train_vocab generate` writes (without the echoed prompt) for these settings. */
  const reference = (prompt: string, o: { maxTokens: number; temperature: number; topK: number; topP: number; seed: number; ignoreEnd?: boolean }) => {
    let text = "";
    const r = generate(new InferenceEngine(checkpoint.arch, checkpoint.params), tokenizer, prompt, { ...o, onText: (t) => void (text += t) });
    return { text, tokens: r.generated.length, stop: r.stop };
  };
  return {
    ...server, files, tokenizer, arch: checkpoint.arch, reference,
    close: async () => {
      await server.stop();
      cleanup();
    },
  };
}

export type TinyServer = Awaited<ReturnType<typeof tinyServer>>;

export function post(url: string, body: unknown, init: RequestInit = {}): Promise<Response> {
  return fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: typeof body === "string" ? body : JSON.stringify(body), ...init });
}

/** The data lines of a server-sent event stream, in order. */
export async function events(res: Response): Promise<string[]> {
  const text = await res.text();
  expectFraming(text);
  return text.split("\n\n").filter((e) => e !== "").map((e) => e.slice("data: ".length));
}

function expectFraming(text: string): void {
  for (const e of text.split("\n\n").filter((x) => x !== "")) {
    if (!e.startsWith("data: ")) throw new Error(`event not framed as "data: …": ${JSON.stringify(e.slice(0, 80))}`);
  }
  if (!text.endsWith("\n\n")) throw new Error("stream does not end with a blank line");
}

/** Poll `f` until it is true or `ms` pass. */
export async function until(f: () => Promise<boolean>, ms = 3000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await f()) return true;
    await Bun.sleep(20);
  }
  return f();
}
