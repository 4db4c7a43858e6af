/**
 * The playground at /: one self-contained page (no files, no requests but the API's own) with the
 * prompt, the sampling controls and the completion streamed as it is written. It reads the same
 * server-sent events any client gets. `data-state` on <body> (idle, streaming, done, stopped, error)
 * lets a browser test wait for the end.
 */

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function playgroundPage(modelId: string, maxTokensLimit: number): string {
  const model = escapeHtml(modelId);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${model} · train-vocab playground</title>
<style>
  :root { --fg: #1d2330; --muted: #6b7280; --line: #d9dde5; --accent: #2f6fde; --bg: #f6f7f9; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
  header { padding: 14px 24px; border-bottom: 1px solid var(--line); background: #fff; display: flex; gap: 12px; align-items: baseline; }
  header h1 { font-size: 17px; margin: 0; }
  header .model { color: var(--muted); font-family: ui-monospace, monospace; font-size: 13px; }
  main { display: grid; grid-template-columns: minmax(0, 1fr) 250px; gap: 20px; padding: 20px 24px; max-width: 1100px; }
  textarea { width: 100%; min-height: 110px; padding: 10px; font: 14px/1.45 ui-monospace, monospace; border: 1px solid var(--line); border-radius: 6px; resize: vertical; }
  .controls { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 12px 14px; }
  .controls label { display: flex; justify-content: space-between; align-items: center; gap: 8px; margin: 6px 0; font-size: 13px; }
  .controls input { width: 100px; padding: 4px 6px; border: 1px solid var(--line); border-radius: 4px; font: 13px ui-monospace, monospace; }
  .buttons { display: flex; gap: 8px; margin: 10px 0; }
  button { padding: 7px 16px; border-radius: 6px; border: 1px solid var(--accent); background: var(--accent); color: #fff; font-weight: 600; cursor: pointer; }
  button.secondary { background: #fff; color: var(--accent); }
  button:disabled { opacity: .45; cursor: default; }
  #output { white-space: pre-wrap; word-break: break-word; min-height: 160px; padding: 12px; background: #fff; border: 1px solid var(--line); border-radius: 6px; font: 14px/1.5 ui-monospace, monospace; }
  #output .prompt { color: var(--muted); }
  #status { color: var(--muted); font-size: 13px; min-height: 1.4em; }
  #status.error { color: #b42318; }
  .hint { color: var(--muted); font-size: 12px; margin-top: 8px; }
</style>
</head>
<body data-state="idle">
<header><h1>train-vocab playground</h1><span class="model" id="model">${model}</span></header>
<main>
  <section>
    <textarea id="prompt" placeholder="Text for the model to continue" autofocus>The jury said that</textarea>
    <div class="buttons">
      <button id="generate">Generate</button>
      <button id="stop-button" class="secondary" disabled>Stop</button>
    </div>
    <div id="status"></div>
    <div id="output"><span class="prompt" id="prompt-echo"></span><span id="completion"></span></div>
  </section>
  <aside class="controls">
    <label>max_tokens <input id="max_tokens" type="number" min="0" max="${maxTokensLimit}" value="${Math.min(100, maxTokensLimit)}"></label>
    <label>temperature <input id="temperature" type="number" min="0" max="2" step="0.05" value="0.8"></label>
    <label>top_p <input id="top_p" type="number" min="0.01" max="1" step="0.01" value="0.95"></label>
    <label>top_k <input id="top_k" type="number" min="0" step="1" value="40"></label>
    <label>seed <input id="seed" type="number" min="0" step="1" placeholder="random"></label>
    <label>stop <input id="stop" type="text" placeholder="none"></label>
    <div class="hint">temperature 0 is greedy; top_k 0 and top_p 1 are off. In stop, \\n is a new line. Ctrl+Enter generates.</div>
  </aside>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let controller = null;

function setState(state, text, isError) {
  document.body.dataset.state = state;
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
  $("generate").disabled = state === "streaming";
  $("stop-button").disabled = state !== "streaming";
}

function request() {
  const body = {
    prompt: $("prompt").value,
    max_tokens: Number($("max_tokens").value),
    temperature: Number($("temperature").value),
    top_p: Number($("top_p").value),
    top_k: Number($("top_k").value),
    stream: true,
    stream_options: { include_usage: true },
  };
  const seed = $("seed").value.trim();
  if (seed !== "") body.seed = Number(seed);
  const stop = $("stop").value;
  if (stop !== "") body.stop = stop.replace(/\\\\n/g, "\\n");
  return body;
}

async function generate() {
  if (controller) return;
  const body = request();
  $("prompt-echo").textContent = body.prompt;
  $("completion").textContent = "";
  controller = new AbortController();
  setState("streaming", "waiting for the first token…");
  const t0 = performance.now();
  let first = null, finish = null, usage = null;
  try {
    const res = await fetch("/v1/completions", {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body), signal: controller.signal,
    });
    if (!res.ok) {
      const e = await res.json().catch(() => null);
      throw new Error(e && e.error ? e.error.message : res.status + " " + res.statusText);
    }
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf("\\n\\n")) >= 0) {
        const event = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        for (const line of event.split("\\n")) {
          if (!line.startsWith("data: ")) continue;
          const data = line.slice(6);
          if (data === "[DONE]") continue;
          const message = JSON.parse(data);
          if (message.error) throw new Error(message.error.message);
          if (message.usage) usage = message.usage;
          for (const c of message.choices || []) {
            if (c.text) {
              if (first === null) first = performance.now();
              $("completion").textContent += c.text;
            }
            if (c.finish_reason) finish = c.finish_reason;
          }
        }
      }
      if (first !== null) setState("streaming", "streaming…");
    }
    const seconds = (performance.now() - t0) / 1000;
    const n = usage ? usage.completion_tokens : 0;
    const firstMs = first === null ? "" : " · first token " + Math.round(first - t0) + " ms";
    setState("done", n + " tokens in " + seconds.toFixed(2) + " s (" + (n / seconds).toFixed(0) + " tokens/s)" + firstMs + " · finish: " + finish);
  } catch (e) {
    if (e.name === "AbortError") setState("stopped", "stopped");
    else setState("error", "error: " + e.message, true);
  } finally {
    controller = null;
  }
}

$("generate").addEventListener("click", generate);
$("stop-button").addEventListener("click", () => controller && controller.abort());
$("prompt").addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); generate(); } });
</script>
</body>
</html>
`;
}
