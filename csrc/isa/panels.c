/* panels.c — decoding's matrix product, out[M,N] = inp[M,K] · Wᵀ + bias, on weights repacked once
 * into 16-wide panels: panel j holds W rows 16j..16j+15 depth-major, P[(j·K + k)·16 + i] = W[16j+i][k]
 * (rows past N are zeros). A panel row is one vector, so each output keeps one running sum over k
 * (acc = w·x + acc, k = 0, 1, …, then + bias) with no fold at the end, and every element gets that
 * same sequence of operations whatever M, the tile and the thread: a row of a batched step has the
 * bytes of a one-row step.
 *
 * Tiles: one input row against 8 panels (8 independent sums: one row is bound by reading W), or up
 * to 8 rows against 3 panels (24 sums; each W vector feeds 8 FMAs, each broadcast 3). Threads take
 * groups of panels, so W is read once per step. */
#include <stdint.h>

#include "../kernels.h"
#include "../threads.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#define PANEL 16
/* Multi-row tiles fetch each panel this many depths (64 B each) ahead; a one-row tile streams eight
 * panels at memory speed, which the hardware prefetcher follows better alone. */
#define PANEL_AHEAD 48

/* Panels [j0, j1): the output is written in order, the 16 rows read side by side. */
typedef struct {
  float* out;
  const float* weight;
  int N, K;
} pack_args;

static void pack_range(void* arg, int64_t j0, int64_t j1) {
  const pack_args* a = (const pack_args*)arg;
  const int K = a->K;
  for (int64_t j = j0; j < j1; j++) {
    const int live = a->N - (int)j * PANEL < PANEL ? a->N - (int)j * PANEL : PANEL;
    const float* rows[PANEL];
    for (int i = 0; i < PANEL; i++) rows[i] = a->weight + (j * PANEL + (i < live ? i : 0)) * (int64_t)K;
    float* dst = a->out + j * K * PANEL;
    for (int k = 0; k < K; k++, dst += PANEL)
      for (int i = 0; i < PANEL; i++) dst[i] = i < live ? rows[i][k] : 0.0f;
  }
}

void TV_FN(pack_panels)(float* out, const float* weight, int N, int K) {
  pack_args a = {out, weight, N, K};
  const int64_t panels = (N + PANEL - 1) / PANEL;
  if ((int64_t)N * K < 65536) pack_range(&a, 0, panels);
  else tv_parallel_for(panels, pack_range, &a);
}

typedef struct {
  float* out;
  const float* inp;
  const float* panels;
  const float* bias;
  int M, K, N, group; /* panels per task */
} panel_args;

#if defined(__AVX512F__)
/* Rows m..m+MR against panels j..j+NP. A prefetch past a panel's end lands in the next panel, which
 * is the one read next (and never faults past the buffer's end). */
static inline __attribute__((always_inline)) void panel_tile(const panel_args* a, int m, int j, const int MR,
                                                             const int NP) {
  const int K = a->K;
  const float* p = a->panels + (int64_t)j * K * PANEL;
  const float* x = a->inp + (int64_t)m * K;
  __m512 acc[8][8];
#pragma GCC unroll 8
  for (int r = 0; r < MR; r++)
#pragma GCC unroll 8
    for (int q = 0; q < NP; q++) acc[r][q] = _mm512_setzero_ps();
  for (int k = 0; k < K; k++) {
    __m512 w[8];
#pragma GCC unroll 8
    for (int q = 0; q < NP; q++) w[q] = _mm512_loadu_ps(p + ((int64_t)q * K + k) * PANEL);
    if (MR > 1) {
#pragma GCC unroll 8
      for (int q = 0; q < NP; q++) _mm_prefetch((const char*)(p + ((int64_t)q * K + k + PANEL_AHEAD) * PANEL), _MM_HINT_T0);
    }
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
      const __m512 xb = _mm512_set1_ps(x[(int64_t)r * K + k]);
#pragma GCC unroll 8
      for (int q = 0; q < NP; q++) acc[r][q] = _mm512_fmadd_ps(w[q], xb, acc[r][q]);
    }
  }
#pragma GCC unroll 8
  for (int q = 0; q < NP; q++) {
    const int n = (j + q) * PANEL;
    const __mmask16 live = a->N - n >= PANEL ? 0xFFFF : (__mmask16)((1u << (a->N - n)) - 1);
    const __m512 b = a->bias ? _mm512_maskz_loadu_ps(live, a->bias + n) : _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
      const __m512 v = a->bias ? _mm512_add_ps(acc[r][q], b) : acc[r][q];
      _mm512_mask_storeu_ps(a->out + (int64_t)(m + r) * a->N + n, live, v);
    }
  }
}

#define ROWS_CASES(NP)                                                          \
  switch (rows) {                                                              \
    case 8: panel_tile(a, m, j, 8, NP); break;                                 \
    case 7: panel_tile(a, m, j, 7, NP); break;                                 \
    case 6: panel_tile(a, m, j, 6, NP); break;                                 \
    case 5: panel_tile(a, m, j, 5, NP); break;                                 \
    case 4: panel_tile(a, m, j, 4, NP); break;                                 \
    case 3: panel_tile(a, m, j, 3, NP); break;                                 \
    case 2: panel_tile(a, m, j, 2, NP); break;                                 \
    default: panel_tile(a, m, j, 1, NP); break;                                \
  }

/* Groups g0..g1 of `group` panels each. */
static void panel_groups(void* arg, int64_t g0, int64_t g1) {
  const panel_args* a = (const panel_args*)arg;
  const int panels = (a->N + PANEL - 1) / PANEL;
  for (int64_t g = g0; g < g1; g++) {
    const int j0 = (int)g * a->group, j1 = j0 + a->group < panels ? j0 + a->group : panels;
    if (a->M == 1) {
      int j = j0;
      for (; j + 8 <= j1; j += 8) panel_tile(a, 0, j, 1, 8);
      for (; j < j1; j++) panel_tile(a, 0, j, 1, 1);
      continue;
    }
    for (int j = j0; j < j1; j += 3) {
      const int np = j1 - j < 3 ? j1 - j : 3;
      /* Row tiles as even as they go (17 rows: 6, 6, 5, not 8, 8, 1): a tile of one or two rows
       * has too few independent sums to keep the FMA units busy. */
      const int tiles = (a->M + 7) / 8, base = a->M / tiles, extra = a->M % tiles;
      for (int t = 0, m = 0; t < tiles; t++) {
        const int rows = base + (t < extra);
        if (np == 3) { ROWS_CASES(3) }
        else if (np == 2) { ROWS_CASES(2) }
        else { ROWS_CASES(1) }
        m += rows;
      }
    }
  }
}
#else
/* One running sum per output over k, sixteen outputs (a panel row) at a time: the same loop for every
 * M, so the compiler emits the same operations for every element. */
static void panel_groups(void* arg, int64_t g0, int64_t g1) {
  const panel_args* a = (const panel_args*)arg;
  const int panels = (a->N + PANEL - 1) / PANEL, K = a->K;
  for (int64_t g = g0; g < g1; g++) {
    const int j0 = (int)g * a->group, j1 = j0 + a->group < panels ? j0 + a->group : panels;
    for (int j = j0; j < j1; j++) {
      const float* p = a->panels + (int64_t)j * K * PANEL;
      const int n = j * PANEL, live = a->N - n < PANEL ? a->N - n : PANEL;
      for (int m = 0; m < a->M; m++) {
        const float* x = a->inp + (int64_t)m * K;
        float acc[PANEL];
        for (int i = 0; i < PANEL; i++) acc[i] = 0.0f;
        for (int k = 0; k < K; k++)
          for (int i = 0; i < PANEL; i++) acc[i] += p[(int64_t)k * PANEL + i] * x[k];
        float* o = a->out + (int64_t)m * a->N + n;
        for (int i = 0; i < live; i++) o[i] = a->bias ? acc[i] + a->bias[n + i] : acc[i];
      }
    }
  }
}
#endif

void TV_FN(matmul_forward_panels)(float* out, const float* inp, const float* panels, const float* bias,
                                  int M, int K, int N) {
  panel_args a = {out, inp, panels, bias, M, K, N, M == 1 ? 8 : 3};
  const int64_t groups = ((N + PANEL - 1) / PANEL + a.group - 1) / a.group;
  if ((int64_t)M * N * K < 65536) panel_groups(&a, 0, groups);
  else tv_parallel_for(groups, panel_groups, &a);
}
