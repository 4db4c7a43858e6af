/* matmul_bf16.c — the linear layer's three products with bf16 operands and fp32 accumulation:
 *   forward  out[M,N]      = bf16(inp)[M,K] · bf16(weight)[N,K]ᵀ (+ bias)
 *   dinp     dinp[M,K]    += bf16(dout)[M,N] · bf16(weight)[N,K]
 *   dweight  dweight[N,K] += bf16(dout)[M,N]ᵀ · bf16(inp)[M,K]
 * Operands are rounded to bfloat16 (round to nearest even) as they are read; every product of two
 * bf16 values is exact in fp32, and sums, bias, and the gradients' existing content stay fp32.
 *
 * Only the avx512 level built with AVX512_BF16 has a real copy; at every other level (and when the
 * CPU lacks BF16, which api.c checks) these entry points are the fp32 kernels. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../kernels.h"
#include "../threads.h"

#if defined(__AVX512BF16__)

/* fp32 → bf16 → fp32, round to nearest even; NaN stays NaN (quiet). */
static inline float bf16_round(float x) {
  uint32_t u;
  memcpy(&u, &x, sizeof(u));
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) u |= 0x00400000u;
  else u += 0x7FFFu + ((u >> 16) & 1u);
  u &= 0xFFFF0000u;
  memcpy(&x, &u, sizeof(x));
  return x;
}

typedef struct {
  float* out;
  float* dinp;
  float* dweight;
  const float* inp;
  const float* weight;
  const float* bias;
  const float* dout;
  int M, K, N;
} bf16_args;

static void forward_rows(void* arg, int64_t m0, int64_t m1) {
  const bf16_args* g = (const bf16_args*)arg;
  const int K = g->K, N = g->N;
  for (int64_t m = m0; m < m1; m++)
    for (int n = 0; n < N; n++) {
      float s = 0.0f;
      for (int k = 0; k < K; k++) s += bf16_round(g->inp[m * K + k]) * bf16_round(g->weight[(int64_t)n * K + k]);
      g->out[m * N + n] = g->bias ? s + g->bias[n] : s;
    }
}

static void dinp_rows(void* arg, int64_t m0, int64_t m1) {
  const bf16_args* g = (const bf16_args*)arg;
  const int K = g->K, N = g->N;
  for (int64_t m = m0; m < m1; m++)
    for (int k = 0; k < K; k++) {
      float s = 0.0f;
      for (int n = 0; n < N; n++) s += bf16_round(g->dout[m * N + n]) * bf16_round(g->weight[(int64_t)n * K + k]);
      g->dinp[m * K + k] += s;
    }
}

static void dweight_rows(void* arg, int64_t n0, int64_t n1) {
  const bf16_args* g = (const bf16_args*)arg;
  const int K = g->K, N = g->N, M = g->M;
  for (int64_t n = n0; n < n1; n++)
    for (int k = 0; k < K; k++) {
      float s = 0.0f;
      for (int m = 0; m < M; m++) s += bf16_round(g->dout[(int64_t)m * N + n]) * bf16_round(g->inp[(int64_t)m * K + k]);
      g->dweight[n * K + k] += s;
    }
}

void TV_FN(matmul_forward_bf16)(float* out, const float* inp, const float* weight, const float* bias,
                                int M, int K, int N) {
  bf16_args g = {.out = out, .inp = inp, .weight = weight, .bias = bias, .M = M, .K = K, .N = N};
  tv_parallel_for(M, forward_rows, &g);
}

void TV_FN(matmul_backward_bf16)(float* dinp, float* dweight, float* dbias, const float* dout,
                                 const float* inp, const float* weight, int M, int K, int N) {
  bf16_args g = {.dinp = dinp, .dweight = dweight, .inp = inp, .weight = weight, .dout = dout,
                 .M = M, .K = K, .N = N};
  if (dinp) tv_parallel_for(M, dinp_rows, &g);
  if (dweight) tv_parallel_for(N, dweight_rows, &g);
  /* The bias gradient has no products: the fp32 column sums. */
  if (dbias) TV_FN(matmul_backward)(NULL, NULL, dbias, dout, inp, weight, M, K, N);
}

#else

void TV_FN(matmul_forward_bf16)(float* out, const float* inp, const float* weight, const float* bias,
                                int M, int K, int N) {
  TV_FN(matmul_forward)(out, inp, weight, bias, M, K, N);
}

void TV_FN(matmul_backward_bf16)(float* dinp, float* dweight, float* dbias, const float* dout,
                                 const float* inp, const float* weight, int M, int K, int N) {
  TV_FN(matmul_backward)(dinp, dweight, dbias, dout, inp, weight, M, K, N);
}

#endif
