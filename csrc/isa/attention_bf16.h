/* attention_bf16.h — attention's tile products with bf16 operands and fp32 accumulation, for
 * attention.c at the avx512 level built with AVX512_BF16 (--precision bf16).
 *
 * vdpbf16ps adds, per fp32 lane, two products of bf16 pairs: acc[j] += a[2q]·b[2q][j] +
 * a[2q+1]·b[2q+1][j]. So each product's reduction is walked in pairs, and its operands are first
 * rounded to bf16 (nearest even) into 32-bit words holding two neighbours along the reduction:
 *   pairs along a row    (rows_to_pairs):    w[r][q]  = (x[r][2q], x[r][2q+1]),
 *   pairs of two rows    (rows_interleave):  w[m][c]  = (x[2m][c], x[2m+1][c]),
 * and a word matrix can be transposed (words_transpose). Everything else (scores, the softmax,
 * P and dS, the accumulators) stays fp32, as in the matmul engine's bf16 mode: only the operands
 * of the products are rounded. Padding rows and columns are zeros, so a pair that straddles the
 * end of a block adds exact zeros. */
#ifndef TV_ATTENTION_BF16_H
#define TV_ATTENTION_BF16_H
#include <stdint.h>
#if defined(__AVX512BF16__)
#include <immintrin.h>

/* dst[r][q] = (src[r][2q], src[r][2q+1]) for q < ncols/2 (ncols even, a multiple of 16); rows apart by
 * ldd words and lds floats. */
static void rows_to_pairs(uint32_t* dst, int ldd, const float* src, int lds, int nrows, int ncols) {
  const int nq = ncols / 2;
  for (int r = 0; r < nrows; r++) {
    const float* s = src + (int64_t)r * lds;
    uint32_t* d = dst + (int64_t)r * ldd;
    for (int q0 = 0; q0 < nq; q0 += 16)
      _mm512_mask_storeu_epi32(d + q0, tv_lanes(nq - q0), tv_bf16_pairs(s + 2 * q0, 2 * (nq - q0)));
  }
}

/* dst[m][c] = (src[2m][c], src[2m+1][c]) for m < nrows/2 (nrows even), c < ncols (a multiple of 16). */
static void rows_interleave(uint32_t* dst, int ldd, const float* src, int lds, int nrows, int ncols) {
  for (int m = 0; m < nrows / 2; m++) {
    const float* e = src + (int64_t)(2 * m) * lds;
    const float* o = e + lds;
    uint32_t* d = dst + (int64_t)m * ldd;
    for (int c = 0; c < ncols; c += 16)
      _mm512_storeu_si512(d + c, tv_bf16_interleave(_mm512_loadu_ps(e + c), _mm512_loadu_ps(o + c)));
  }
}

/* The forward's probabilities P[r][j] = st[j][r] (keys × queries, bt queries to a row) as pairs
 * of key rows, dst[m][r] = (P[r][2m], P[r][2m+1]) for m < ⌈nk/2⌉, with every entry the softmax
 * did not produce read as 0: keys past nk (those rows hold scores of padding or stale data) and
 * keys after the query (key jj hidden from query r when jj > r + off, where off = i0 − j0
 * is how far the query block starts after the key block; such entries hold −inf). */
static void probs_to_pairs(uint32_t* dst, const float* st, int bt, int nk, int off) {
  for (int m = 0; m < (nk + 1) / 2; m++) {
    const int je = 2 * m, jo = 2 * m + 1;
    for (int c = 0; c < bt; c += 16) {
      /* lanes r = c + l with jj <= r + off, i.e. l >= jj − off − c */
      const int se = je - off - c, so = jo - off - c;
      const __mmask16 ke = se <= 0 ? (__mmask16)0xFFFF : (__mmask16)~tv_lanes(se);
      const __mmask16 ko = jo >= nk ? 0 : so <= 0 ? (__mmask16)0xFFFF : (__mmask16)~tv_lanes(so);
      const __m512 e = _mm512_maskz_loadu_ps(ke, st + (int64_t)je * bt + c);
      const __m512 o = _mm512_maskz_loadu_ps(ko, st + (int64_t)jo * bt + c);
      _mm512_storeu_si512(dst + (int64_t)m * bt + c, tv_bf16_interleave(e, o));
    }
  }
}

/* dst[c][r] = src[r][c] for r < nrows, c < ncols (both multiples of 8; 16×16 blocks in registers
 * where both are multiples of 16). */
static void words_transpose(uint32_t* dst, int ldd, const uint32_t* src, int lds, int nrows, int ncols) {
  if (nrows % 16 == 0 && ncols % 16 == 0) {
    for (int r0 = 0; r0 < nrows; r0 += 16)
      for (int c0 = 0; c0 < ncols; c0 += 16) {
        __m512 t[16];
        for (int i = 0; i < 16; i++) t[i] = _mm512_castsi512_ps(_mm512_loadu_si512(src + (int64_t)(r0 + i) * lds + c0));
        tv_transpose16(t);
        for (int i = 0; i < 16; i++) _mm512_storeu_si512(dst + (int64_t)(c0 + i) * ldd + r0, _mm512_castps_si512(t[i]));
      }
    return;
  }
  for (int r = 0; r < nrows; r++)
    for (int c = 0; c < ncols; c++) dst[(int64_t)c * ldd + r] = src[(int64_t)r * lds + c];
}

/* s[4][NV·16] = a[4][pairs] · bt[pairs][NV·16]: a rows lda words apart, bt rows ldb words apart. */
static inline __attribute__((always_inline)) void mk_abt_bf16(float* s, int lds, const uint32_t* a, int lda,
                                                              const uint32_t* bt, int ldb, int nq, const int NV) {
  __m512 c[4][4];
  for (int i = 0; i < 4; i++)
    for (int v = 0; v < NV; v++) c[i][v] = _mm512_setzero_ps();
  for (int q = 0; q < nq; q++) {
    __m512bh b[4];
    for (int v = 0; v < NV; v++) b[v] = (__m512bh)_mm512_loadu_si512(bt + (int64_t)q * ldb + 16 * v);
    for (int i = 0; i < 4; i++) {
      const __m512bh x = (__m512bh)_mm512_set1_epi32((int)a[i * lda + q]);
      for (int v = 0; v < NV; v++) c[i][v] = _mm512_dpbf16_ps(c[i][v], x, b[v]);
    }
  }
  for (int i = 0; i < 4; i++)
    for (int v = 0; v < NV; v++) _mm512_storeu_ps(s + i * lds + 16 * v, c[i][v]);
}

/* tile_abt with pair operands: s[nr][bt] = a[nr][nq pairs] · kt[nq pairs][bt]. */
static void tile_abt_bf16(float* s, const uint32_t* a, int lda, const uint32_t* kt, int nq, int nr, int bt, int causal) {
  for (int r = 0; r < nr; r += 4) {
    int c_begin = 0, c_end = bt;
    if (causal == CAUSAL_LE) c_end = (r + 4 + 15) / 16 * 16 < bt ? (r + 4 + 15) / 16 * 16 : bt;
    if (causal == CAUSAL_GE) c_begin = r / 16 * 16;
    for (int c = c_begin; c < c_end; c += 64) {
      const int nv = (c_end - c) / 16 < 4 ? (c_end - c) / 16 : 4;
      float* so = s + r * bt + c;
      const uint32_t* ar = a + (int64_t)r * lda;
      switch (nv) {
        case 1: mk_abt_bf16(so, bt, ar, lda, kt + c, bt, nq, 1); break;
        case 2: mk_abt_bf16(so, bt, ar, lda, kt + c, bt, nq, 2); break;
        case 3: mk_abt_bf16(so, bt, ar, lda, kt + c, bt, nq, 3); break;
        default: mk_abt_bf16(so, bt, ar, lda, kt + c, bt, nq, 4); break;
      }
    }
  }
}

/* y[MR][NV·16] += Σ_q w(r, q)·x[q][NV·16] over pairs q < nq, w(r, q) = w[r·wr + q·wm] (words). */
static inline __attribute__((always_inline)) void mk_wx_bf16(float* y, int ldy, const uint32_t* w, int wr, int wm,
                                                             const uint32_t* x, int ldx, int nq, const int MR, const int NV) {
  __m512 acc[8][4];
  for (int i = 0; i < MR; i++)
    for (int v = 0; v < NV; v++) acc[i][v] = _mm512_loadu_ps(y + i * ldy + 16 * v);
  for (int q = 0; q < nq; q++) {
    __m512bh xv[4];
    for (int v = 0; v < NV; v++) xv[v] = (__m512bh)_mm512_loadu_si512(x + (int64_t)q * ldx + 16 * v);
    const uint32_t* wp = w + (int64_t)q * wm;
    for (int i = 0; i < MR; i++) {
      const __m512bh wi = (__m512bh)_mm512_set1_epi32((int)wp[(int64_t)i * wr]);
      for (int v = 0; v < NV; v++) acc[i][v] = _mm512_dpbf16_ps(acc[i][v], wi, xv[v]);
    }
  }
  for (int i = 0; i < MR; i++)
    for (int v = 0; v < NV; v++) _mm512_storeu_ps(y + i * ldy + 16 * v, acc[i][v]);
}

/* tile_wx with pair operands: y[ny][hsp] += W·X where W(r, q) = w[r·wr + q·wm] holds the pair of
 * terms (2q, 2q+1) and X = x[q][hsp] the matching pair of rows; nm terms (rounded up to a pair).
 * The causal modes bound the terms as tile_wx does; their bounds are even (row groups of 4 or 8). */
static void tile_wx_bf16(float* y, int ny, int hsp, const uint32_t* w, int wr, int wm, const uint32_t* x, int nm, int causal) {
  const int mr = hsp <= 32 ? 8 : 4;
  for (int r = 0; r < ny; r += mr) {
    int m_begin, m_end;
    causal_terms(r, mr, nm, causal, &m_begin, &m_end);
    const int q_begin = m_begin / 2, q_end = (m_end + 1) / 2;
    if (q_end <= q_begin) continue;
    for (int c = 0; c < hsp; c += 64) {
      const int nv = (hsp - c) / 16 < 4 ? (hsp - c) / 16 : 4;
      float* yo = y + r * hsp + c;
      const uint32_t* wo = w + (int64_t)r * wr + (int64_t)q_begin * wm;
      const uint32_t* xo = x + (int64_t)q_begin * hsp + c;
      const int n = q_end - q_begin;
      if (mr == 8) {
        if (nv == 1) mk_wx_bf16(yo, hsp, wo, wr, wm, xo, hsp, n, 8, 1);
        else mk_wx_bf16(yo, hsp, wo, wr, wm, xo, hsp, n, 8, 2);
        continue;
      }
      switch (nv) {
        case 1: mk_wx_bf16(yo, hsp, wo, wr, wm, xo, hsp, n, 4, 1); break;
        case 2: mk_wx_bf16(yo, hsp, wo, wr, wm, xo, hsp, n, 4, 2); break;
        case 3: mk_wx_bf16(yo, hsp, wo, wr, wm, xo, hsp, n, 4, 3); break;
        default: mk_wx_bf16(yo, hsp, wo, wr, wm, xo, hsp, n, 4, 4); break;
      }
    }
  }
}

#else
/* Levels without AVX512_BF16 never take the bf16 branches (attention.c's HAVE_BF16_TILES is 0, so
 * the compiler drops them); these keep the shared code free of #if blocks. */
static inline void rows_to_pairs(uint32_t* d, int ldd, const float* s, int lds, int nr, int nc) { __builtin_unreachable(); }
static inline void rows_interleave(uint32_t* d, int ldd, const float* s, int lds, int nr, int nc) { __builtin_unreachable(); }
static inline void probs_to_pairs(uint32_t* d, const float* st, int bt, int nk, int off) { __builtin_unreachable(); }
static inline void words_transpose(uint32_t* d, int ldd, const uint32_t* s, int lds, int nr, int nc) { __builtin_unreachable(); }
static inline void tile_abt_bf16(float* s, const uint32_t* a, int lda, const uint32_t* kt, int nq, int nr, int bt,
                                 int causal) { __builtin_unreachable(); }
static inline void tile_wx_bf16(float* y, int ny, int hsp, const uint32_t* w, int wr, int wm, const uint32_t* x,
                                int nm, int causal) { __builtin_unreachable(); }
#endif
#endif
