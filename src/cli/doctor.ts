/** `train_vocab doctor` and `--version`: what this machine offers and what the library chose. */
import type { CAC } from "cac";
import pkg from "../../package.json" with { type: "json" };

export async function versionLine(): Promise<string> {
  const native = await import("../native.ts");
  return `train_vocab ${pkg.version} (isa ${native.isaCurrent()}, ${native.getThreads()} threads; CPU features: ${native.cpuFeatures()})`;
}

export function registerDoctor(cli: CAC): void {
  cli
    .command("doctor", "Show CPU features, the ISA level in use and the thread count")
    .option("--json", "Print one JSON object")
    .action(async (options: { json?: boolean }) => {
      const native = await import("../native.ts");
      const info = {
        version: pkg.version,
        platform: `${process.platform}-${process.arch}`,
        bun: Bun.version,
        cpu_features: native.cpuFeatures(),
        isa_best: native.isaBest(),
        isa_in_use: native.isaCurrent(),
        isa_override: process.env.TRAIN_VOCAB_ISA ?? null,
        bf16: native.hasBf16(),
        threads: native.getThreads(),
        threads_override: process.env.TRAIN_VOCAB_THREADS ?? null,
      };
      if (options.json) {
        console.log(JSON.stringify(info));
        return;
      }
      console.log(`train_vocab ${info.version} on ${info.platform}, Bun ${info.bun}`);
      console.log(`  CPU features: ${info.cpu_features}`);
      console.log(`  ISA level:    ${info.isa_in_use} (best available: ${info.isa_best}${info.isa_override ? `; TRAIN_VOCAB_ISA=${info.isa_override}` : ""})`);
      console.log(`  BF16 matmul:  ${info.bf16 ? "available" : "not available"}`);
      console.log(`  Threads:      ${info.threads}${info.threads_override ? ` (TRAIN_VOCAB_THREADS=${info.threads_override})` : ""}`);
    });
}
