// The PyTorch peers' setup, shared by bench:train and bench:quality: Debian's python3-torch run at its
// best (docs/performance.md says why): the OpenMP OpenBLAS, OpenBLAS's AVX-512 kernels, and jemalloc
// with purging off.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

/** The Python that has Debian's torch. */
export const PY = "/usr/bin/python3";

export function openmpBlasDir(): string | null {
  const d = "/usr/lib/x86_64-linux-gnu/openblas-openmp";
  if (existsSync(join(d, "libopenblas.so.0"))) return d;
  const q = Bun.spawnSync(["dpkg", "-L", "libopenblas0-openmp"], { stderr: "ignore" });
  const line = q.exitCode === 0 ? q.stdout.toString().split("\n").find((l) => l.endsWith("openblas-openmp/libopenblas.so.0")) : undefined;
  return line ? line.slice(0, line.lastIndexOf("/")) : null;
}

// PyTorch frees and reallocates every activation each step; glibc returns large blocks to the
// kernel, so each step faults them in again. jemalloc with purging off keeps them.
export function jemallocPath(): string | null {
  for (const d of ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib"]) {
    if (existsSync(join(d, "libjemalloc.so.2"))) return join(d, "libjemalloc.so.2");
  }
  return null;
}

function torchReady(): boolean {
  return existsSync(PY) && Bun.spawnSync([PY, "-c", "import torch"], { stderr: "ignore" }).exitCode === 0 && openmpBlasDir() !== null;
}

/** Installs the peer where it can (as root); null when it is ready, else why it is skipped. */
export function preparePeer(): string | null {
  if (torchReady() && jemallocPath() !== null) return null;
  if (process.getuid?.() === 0) {
    console.log("installing the peer: apt-get install -y python3-torch libopenblas0-openmp libjemalloc2 ...");
    Bun.spawnSync(["apt-get", "update"], { stdout: "ignore", stderr: "ignore" });
    Bun.spawnSync(["apt-get", "install", "-y", "python3-torch", "libopenblas0-openmp", "libjemalloc2"], {
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" }, stdout: "ignore", stderr: "ignore",
    });
  }
  // Without jemalloc the peer still runs (slower; the benchmarks say so).
  if (torchReady()) return null;
  return "PyTorch peer skipped: needs /usr/bin/python3 with python3-torch and libopenblas0-openmp (apt-get install -y python3-torch libopenblas0-openmp libjemalloc2)";
}

/** The peer's environment: OpenMP OpenBLAS, its AVX-512 kernels where the CPU has them, jemalloc. */
export function peerEnv(threads: number, ompWait = "ACTIVE"): Record<string, string> {
  const env: Record<string, string> = { LD_LIBRARY_PATH: openmpBlasDir()!, OMP_NUM_THREADS: String(threads), OMP_WAIT_POLICY: ompWait };
  // OpenBLAS's AVX-512 kernels, whatever OPENBLAS_CORETYPE the machine sets (some set Haswell).
  if (/\bavx512f\b/.test(existsSync("/proc/cpuinfo") ? readFileSync("/proc/cpuinfo", "utf8") : "")) env.OPENBLAS_CORETYPE = "SkylakeX";
  const jemalloc = jemallocPath();
  if (jemalloc) Object.assign(env, { LD_PRELOAD: jemalloc, MALLOC_CONF: "dirty_decay_ms:-1,muzzy_decay_ms:-1" });
  return env;
}
