/* peak.c — the machine's FP32 FMA peak, measured: every thread runs independent chains of 512-bit
 * (or, without AVX-512, 256-bit) fused multiply-adds, enough of them to cover the FMA latency on
 * every pipe, and nothing else. Built with AVX512_BF16 (-mavx512bf16), it measures the BF16
 * dot-product peak the same way (vdpbf16ps: 16 lanes × 2 products × 2 flops per instruction).
 * Prints one JSON object: GFLOP/s on 1 thread and on all threads (and bf16_gflops_1/_all).
 * Built by bench/kernels.ts: cc -O2 -mavx512f -mfma [-mavx512bf16] bench/peak.c -o build/peak -lpthread */
#define _GNU_SOURCE
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#if defined(__AVX512F__)
typedef __m512 vec;
#define LANES 16
#define FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define SET1(x) _mm512_set1_ps(x)
#define SUM(v) _mm512_reduce_add_ps(v)
#else
typedef __m256 vec;
#define LANES 8
#define FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define SET1(x) _mm256_set1_ps(x)
static float SUM(vec v) {
  float t[8];
  _mm256_storeu_ps(t, v);
  return t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
}
#endif

#define CHAINS 16 /* 2 pipes × latency 4 needs 8; 16 leaves margin for any core */

static long iterations;
static volatile float sink;

static void* run(void* arg) {
  (void)arg;
  /* Named accumulators, not an array: an array that the asm barrier below names would live in
   * memory, and the loop would measure store forwarding instead of FMAs. */
  vec c0 = SET1(0.00f), c1 = SET1(0.01f), c2 = SET1(0.02f), c3 = SET1(0.03f);
  vec c4 = SET1(0.04f), c5 = SET1(0.05f), c6 = SET1(0.06f), c7 = SET1(0.07f);
  vec c8 = SET1(0.08f), c9 = SET1(0.09f), c10 = SET1(0.10f), c11 = SET1(0.11f);
  vec c12 = SET1(0.12f), c13 = SET1(0.13f), c14 = SET1(0.14f), c15 = SET1(0.15f);
  /* x·a + b with a just below 1: values stay finite and never denormal, whatever the count. */
  const vec a = SET1(0.999999f), b = SET1(1e-7f);
  for (long it = 0; it < iterations; it++) {
    c0 = FMA(c0, a, b); c1 = FMA(c1, a, b); c2 = FMA(c2, a, b); c3 = FMA(c3, a, b);
    c4 = FMA(c4, a, b); c5 = FMA(c5, a, b); c6 = FMA(c6, a, b); c7 = FMA(c7, a, b);
    c8 = FMA(c8, a, b); c9 = FMA(c9, a, b); c10 = FMA(c10, a, b); c11 = FMA(c11, a, b);
    c12 = FMA(c12, a, b); c13 = FMA(c13, a, b); c14 = FMA(c14, a, b); c15 = FMA(c15, a, b);
    /* Keep the compiler from folding iterations together. */
    __asm__ volatile("" : "+v"(c0), "+v"(c1), "+v"(c2), "+v"(c3), "+v"(c4), "+v"(c5), "+v"(c6),
                     "+v"(c7));
    __asm__ volatile("" : "+v"(c8), "+v"(c9), "+v"(c10), "+v"(c11), "+v"(c12), "+v"(c13),
                     "+v"(c14), "+v"(c15));
  }
  sink = SUM(c0) + SUM(c1) + SUM(c2) + SUM(c3) + SUM(c4) + SUM(c5) + SUM(c6) + SUM(c7) + SUM(c8) +
         SUM(c9) + SUM(c10) + SUM(c11) + SUM(c12) + SUM(c13) + SUM(c14) + SUM(c15);
  return NULL;
}

#if defined(__AVX512BF16__)
/* The same chains of vdpbf16ps: c += a[2l]·b[2l] + a[2l+1]·b[2l+1] per lane, with products small
 * enough that 5 million steps stay far from overflow. */
#define DP(c) c = _mm512_dpbf16_ps(c, x, y)
static void* run_bf16(void* arg) {
  (void)arg;
  __m512 c0 = SET1(0.00f), c1 = SET1(0.01f), c2 = SET1(0.02f), c3 = SET1(0.03f);
  __m512 c4 = SET1(0.04f), c5 = SET1(0.05f), c6 = SET1(0.06f), c7 = SET1(0.07f);
  __m512 c8 = SET1(0.08f), c9 = SET1(0.09f), c10 = SET1(0.10f), c11 = SET1(0.11f);
  __m512 c12 = SET1(0.12f), c13 = SET1(0.13f), c14 = SET1(0.14f), c15 = SET1(0.15f);
  const __m512bh x = _mm512_cvtne2ps_pbh(SET1(1e-4f), SET1(1e-4f)), y = _mm512_cvtne2ps_pbh(SET1(1e-4f), SET1(1e-4f));
  for (long it = 0; it < iterations; it++) {
    DP(c0); DP(c1); DP(c2); DP(c3); DP(c4); DP(c5); DP(c6); DP(c7);
    DP(c8); DP(c9); DP(c10); DP(c11); DP(c12); DP(c13); DP(c14); DP(c15);
    __asm__ volatile("" : "+v"(c0), "+v"(c1), "+v"(c2), "+v"(c3), "+v"(c4), "+v"(c5), "+v"(c6),
                     "+v"(c7));
    __asm__ volatile("" : "+v"(c8), "+v"(c9), "+v"(c10), "+v"(c11), "+v"(c12), "+v"(c13),
                     "+v"(c14), "+v"(c15));
  }
  sink = SUM(c0) + SUM(c1) + SUM(c2) + SUM(c3) + SUM(c4) + SUM(c5) + SUM(c6) + SUM(c7) + SUM(c8) +
         SUM(c9) + SUM(c10) + SUM(c11) + SUM(c12) + SUM(c13) + SUM(c14) + SUM(c15);
  return NULL;
}
#endif

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Best of many short runs: the peak is what the cores can do, so noise (another process on a shared
 * machine) only ever lowers a run, and short runs give more chances of a quiet moment. */
static double measure_fn(int threads, void* (*fn)(void*), double flops_per_op) {
  double best = 0;
  for (int rep = 0; rep < 25; rep++) {
    pthread_t tid[256];
    double t0 = now();
    for (int i = 1; i < threads; i++) pthread_create(&tid[i], NULL, fn, NULL);
    fn(NULL);
    for (int i = 1; i < threads; i++) pthread_join(tid[i], NULL);
    double dt = now() - t0;
    double gflops = (double)threads * iterations * CHAINS * flops_per_op / dt * 1e-9;
    if (gflops > best) best = gflops;
  }
  return best;
}

static double measure(int threads) { return measure_fn(threads, run, LANES * 2); }

int main(int argc, char** argv) {
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) cpus = CPU_COUNT(&set);
  int threads = argc > 1 ? atoi(argv[1]) : (int)cpus;
  if (threads < 1 || threads > 256) threads = 1;
  iterations = 5 * 1000 * 1000; /* ≈ 20 ms per run at 4 GHz */
  measure(1); /* warm up: clocks ramp, pages fault in */
  double one = measure(1), all = threads > 1 ? measure(threads) : one;
  printf("{\"lanes\": %d, \"threads\": %d, \"gflops_1\": %.1f, \"gflops_all\": %.1f", LANES, threads,
         one, all);
#if defined(__AVX512BF16__)
  double bf_one = measure_fn(1, run_bf16, 16 * 4), bf_all = threads > 1 ? measure_fn(threads, run_bf16, 16 * 4) : bf_one;
  printf(", \"bf16_gflops_1\": %.1f, \"bf16_gflops_all\": %.1f", bf_one, bf_all);
#endif
  printf("}\n");
  return 0;
}
