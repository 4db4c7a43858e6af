/* api.c — the public entry points. Each checks its sizes and pointers (a bad call returns a status,
 * never crashes) and then runs the kernel of the ISA level in use. */
#include <math.h>
#include <stddef.h>

#include "kernels.h"
#include "train_vocab.h"

extern const tv_kernels* tv_active;

#define CHECK(cond, code) \
  do {                    \
    if (!(cond)) return code; \
  } while (0)
#define NEED(p) CHECK((p) != NULL, TV_E_NULL)
#define POS(n) CHECK((n) > 0, TV_E_SIZE)
/* Products of int sizes must stay addressable; 2^40 floats is far beyond any model here. */
#define FITS(prod) CHECK((prod) < ((int64_t)1 << 40), TV_E_SIZE)

/* The matmul pairs (fp32 and bf16) take the same arguments and check them the same way. */
static int matmul_forward_args(float* out, const float* inp, const float* weight, int M, int K, int N) {
  NEED(out); NEED(inp); NEED(weight);
  POS(M); POS(K); POS(N);
  FITS((int64_t)M * K); FITS((int64_t)M * N); FITS((int64_t)N * K);
  return TV_OK;
}

static int matmul_backward_args(float* dinp, float* dweight, const float* dout, const float* inp,
                                const float* weight, int M, int K, int N) {
  NEED(dout);
  POS(M); POS(K); POS(N);
  FITS((int64_t)M * K); FITS((int64_t)M * N); FITS((int64_t)N * K);
  if (dinp) NEED(weight);
  if (dweight) NEED(inp);
  return TV_OK;
}

int tv_matmul_forward(float* out, const float* inp, const float* weight, const float* bias, int M,
                      int K, int N) {
  int status = matmul_forward_args(out, inp, weight, M, K, N);
  if (status != TV_OK) return status;
  tv_active->matmul_forward(out, inp, weight, bias, M, K, N);
  return TV_OK;
}

int tv_pack_panels(float* out, const float* weight, int N, int K) {
  NEED(out); NEED(weight);
  POS(N); POS(K); FITS(((int64_t)N + 15) * K);
  tv_active->pack_panels(out, weight, N, K);
  return TV_OK;
}

int tv_matmul_forward_panels(float* out, const float* inp, const float* panels, const float* bias,
                             int M, int K, int N) {
  int status = matmul_forward_args(out, inp, panels, M, K, N);
  if (status != TV_OK) return status;
  FITS(((int64_t)N + 15) * K);
  tv_active->matmul_forward_panels(out, inp, panels, bias, M, K, N);
  return TV_OK;
}

int tv_matmul_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                       const float* inp, const float* weight, int M, int K, int N) {
  int status = matmul_backward_args(dinp, dweight, dout, inp, weight, M, K, N);
  if (status != TV_OK) return status;
  tv_active->matmul_backward(dinp, dweight, dbias, dout, inp, weight, M, K, N);
  return TV_OK;
}

int tv_matmul_forward_bf16(float* out, const float* inp, const float* weight, const float* bias,
                           int M, int K, int N) {
  int status = matmul_forward_args(out, inp, weight, M, K, N);
  if (status != TV_OK) return status;
  if (tv_has_bf16()) tv_active->matmul_forward_bf16(out, inp, weight, bias, M, K, N);
  else tv_active->matmul_forward(out, inp, weight, bias, M, K, N);
  return TV_OK;
}

int tv_matmul_backward_bf16(float* dinp, float* dweight, float* dbias, const float* dout,
                            const float* inp, const float* weight, int M, int K, int N) {
  int status = matmul_backward_args(dinp, dweight, dout, inp, weight, M, K, N);
  if (status != TV_OK) return status;
  if (tv_has_bf16()) tv_active->matmul_backward_bf16(dinp, dweight, dbias, dout, inp, weight, M, K, N);
  else tv_active->matmul_backward(dinp, dweight, dbias, dout, inp, weight, M, K, N);
  return TV_OK;
}

int tv_layernorm_forward(float* out, float* mean, float* rstd, const float* inp,
                         const float* weight, const float* bias, int M, int C) {
  NEED(out); NEED(mean); NEED(rstd); NEED(inp); NEED(weight); NEED(bias);
  POS(M); POS(C); FITS((int64_t)M * C);
  tv_active->layernorm_forward(out, mean, rstd, inp, weight, bias, M, C);
  return TV_OK;
}

int tv_residual_layernorm_forward(float* resid, float* out, float* mean, float* rstd,
                                  const float* a, const float* b, const float* weight,
                                  const float* bias, int M, int C) {
  NEED(resid); NEED(out); NEED(mean); NEED(rstd); NEED(a); NEED(b); NEED(weight); NEED(bias);
  POS(M); POS(C); FITS((int64_t)M * C);
  tv_active->residual_layernorm_forward(resid, out, mean, rstd, a, b, weight, bias, M, C);
  return TV_OK;
}

int tv_layernorm_backward(float* dinp, float* dweight, float* dbias, const float* dout,
                          const float* inp, const float* weight, const float* mean,
                          const float* rstd, int M, int C) {
  NEED(dinp); NEED(dout); NEED(inp); NEED(weight); NEED(mean); NEED(rstd);
  POS(M); POS(C); FITS((int64_t)M * C);
  tv_active->layernorm_backward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, M, C);
  return TV_OK;
}

int tv_gelu_forward(float* out, const float* inp, int64_t N) {
  NEED(out); NEED(inp); POS(N); FITS(N);
  tv_active->gelu_forward(out, inp, N);
  return TV_OK;
}

int tv_gelu_backward(float* dinp, const float* inp, const float* dout, int64_t N) {
  NEED(dinp); NEED(inp); NEED(dout); POS(N); FITS(N);
  tv_active->gelu_backward(dinp, inp, dout, N);
  return TV_OK;
}

int tv_rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int M, int C,
                       float eps) {
  NEED(out); NEED(rstd); NEED(inp); NEED(weight);
  POS(M); POS(C); FITS((int64_t)M * C);
  CHECK(eps >= 0.0f && eps < INFINITY, TV_E_RANGE);
  tv_active->rmsnorm_forward(out, rstd, inp, weight, M, C, eps);
  return TV_OK;
}

int tv_rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp,
                        const float* weight, const float* rstd, int M, int C) {
  NEED(dinp); NEED(dout); NEED(inp); NEED(weight); NEED(rstd);
  POS(M); POS(C); FITS((int64_t)M * C);
  tv_active->rmsnorm_backward(dinp, dweight, dout, inp, weight, rstd, M, C);
  return TV_OK;
}

static int rope_args(const float* qkv, int B, int T, int C, int NH, int pos0, float theta) {
  NEED(qkv);
  POS(B); POS(T); POS(C); POS(NH);
  CHECK(C % NH == 0 && (C / NH) % 2 == 0 && C / NH <= TV_ROPE_MAX_HEAD_DIM, TV_E_SIZE);
  FITS((int64_t)B * T * 3 * C);
  CHECK(pos0 >= 0 && theta > 0.0f && theta < INFINITY, TV_E_RANGE);
  return TV_OK;
}

int tv_rope_forward(float* qkv, int B, int T, int C, int NH, int pos0, float theta) {
  int e = rope_args(qkv, B, T, C, NH, pos0, theta);
  if (e == TV_OK) tv_active->rope(qkv, B, T, C, NH, pos0, theta, 0);
  return e;
}

int tv_rope_backward(float* dqkv, int B, int T, int C, int NH, int pos0, float theta) {
  int e = rope_args(dqkv, B, T, C, NH, pos0, theta);
  if (e == TV_OK) tv_active->rope(dqkv, B, T, C, NH, pos0, theta, 1);
  return e;
}

int tv_rope_table(float* cos_table, float* sin_table, int P, int hs, float theta) {
  NEED(cos_table); NEED(sin_table);
  POS(P); POS(hs);
  CHECK(hs % 2 == 0 && hs <= TV_ROPE_MAX_HEAD_DIM, TV_E_SIZE);
  FITS((int64_t)P * hs);
  CHECK(theta > 0.0f && theta < INFINITY, TV_E_RANGE);
  tv_active->rope_table(cos_table, sin_table, P, hs, theta);
  return TV_OK;
}

int tv_rope_forward_rows(float* qkv, const float* cos_table, const float* sin_table,
                         const int32_t* positions, int P, int B, int q_stride, int C, int NH) {
  NEED(qkv); NEED(cos_table); NEED(sin_table); NEED(positions);
  POS(P); POS(B); POS(C); POS(NH);
  CHECK(C % NH == 0 && (C / NH) % 2 == 0 && C / NH <= TV_ROPE_MAX_HEAD_DIM, TV_E_SIZE);
  CHECK(q_stride >= 2 * C, TV_E_SIZE);
  FITS((int64_t)B * q_stride); FITS((int64_t)P * (C / NH));
  for (int b = 0; b < B; b++) CHECK(positions[b] >= 0 && positions[b] < P, TV_E_RANGE);
  tv_active->rope_rows(qkv, cos_table, sin_table, positions, B, q_stride, C, NH);
  return TV_OK;
}

int tv_swiglu_forward(float* out, const float* inp, int N, int H) {
  NEED(out); NEED(inp);
  POS(N); POS(H); FITS((int64_t)N * 2 * H);
  tv_active->swiglu_forward(out, inp, N, H);
  return TV_OK;
}

int tv_swiglu_backward(float* dinp, const float* inp, const float* dout, int N, int H) {
  NEED(dinp); NEED(inp); NEED(dout);
  POS(N); POS(H); FITS((int64_t)N * 2 * H);
  tv_active->swiglu_backward(dinp, inp, dout, N, H);
  return TV_OK;
}

int tv_residual_forward(float* out, const float* a, const float* b, int64_t N) {
  NEED(out); NEED(a); NEED(b); POS(N); FITS(N);
  tv_active->residual_forward(out, a, b, N);
  return TV_OK;
}

static int tokens_in_range(const int32_t* tokens, int64_t n, int V) {
  for (int64_t i = 0; i < n; i++)
    if (tokens[i] < 0 || tokens[i] >= V) return 0;
  return 1;
}

int tv_encoder_forward(float* out, const int32_t* tokens, const float* wte, const float* wpe,
                       int B, int T, int C, int V, int maxT) {
  NEED(out); NEED(tokens); NEED(wte); NEED(wpe);
  POS(B); POS(T); POS(C); POS(V); POS(maxT);
  CHECK(T <= maxT, TV_E_SIZE);
  FITS((int64_t)B * T * C); FITS((int64_t)V * C);
  CHECK(tokens_in_range(tokens, (int64_t)B * T, V), TV_E_RANGE);
  tv_active->encoder_forward(out, tokens, wte, wpe, B, T, C);
  return TV_OK;
}

int tv_encoder_backward(float* dwte, float* dwpe, const float* dout, const int32_t* tokens, int B,
                        int T, int C, int V, int maxT) {
  NEED(dout); NEED(tokens);
  POS(B); POS(T); POS(C); POS(V); POS(maxT);
  CHECK(T <= maxT, TV_E_SIZE);
  FITS((int64_t)B * T * C); FITS((int64_t)V * C);
  CHECK(tokens_in_range(tokens, (int64_t)B * T, V), TV_E_RANGE);
  tv_active->encoder_backward(dwte, dwpe, dout, tokens, B, T, C, V);
  return TV_OK;
}

/* The attention kernels (fp32 and bf16) take the same arguments and check them the same way. */
static int attention_args(const void* out, const void* lse, const void* qkv, const void* dout,
                          const void* fout, int B, int T, int C, int H) {
  NEED(out); NEED(lse); NEED(qkv); NEED(dout); NEED(fout);
  POS(B); POS(T); POS(C); POS(H);
  CHECK(C % H == 0, TV_E_SIZE);
  FITS((int64_t)B * T * 3 * C);
  return TV_OK;
}

int tv_attention_forward(float* out, float* lse, const float* qkv, int B, int T, int C, int H) {
  int e = attention_args(out, lse, qkv, qkv, qkv, B, T, C, H);
  if (e == TV_OK) tv_active->attention_forward(out, lse, qkv, B, T, C, H);
  return e;
}

int tv_attention_forward_bf16(float* out, float* lse, const float* qkv, int B, int T, int C, int H) {
  int e = attention_args(out, lse, qkv, qkv, qkv, B, T, C, H);
  if (e != TV_OK) return e;
  if (tv_has_bf16()) tv_active->attention_forward_bf16(out, lse, qkv, B, T, C, H);
  else tv_active->attention_forward(out, lse, qkv, B, T, C, H);
  return TV_OK;
}

int tv_attention_backward(float* dqkv, const float* dout, const float* qkv, const float* out,
                          const float* lse, int B, int T, int C, int H) {
  int e = attention_args(dqkv, lse, qkv, dout, out, B, T, C, H);
  if (e == TV_OK) tv_active->attention_backward(dqkv, dout, qkv, out, lse, B, T, C, H);
  return e;
}

int tv_attention_backward_bf16(float* dqkv, const float* dout, const float* qkv, const float* out,
                               const float* lse, int B, int T, int C, int H) {
  int e = attention_args(dqkv, lse, qkv, dout, out, B, T, C, H);
  if (e != TV_OK) return e;
  if (tv_has_bf16()) tv_active->attention_backward_bf16(dqkv, dout, qkv, out, lse, B, T, C, H);
  else tv_active->attention_backward(dqkv, dout, qkv, out, lse, B, T, C, H);
  return TV_OK;
}

int tv_attention_decode(float* out, const float* q, const float* k_cache, const float* v_cache,
                        int T, int C, int H) {
  NEED(out); NEED(q); NEED(k_cache); NEED(v_cache);
  POS(T); POS(C); POS(H);
  CHECK(C % H == 0 && C / H <= TV_DECODE_MAX_HEAD_DIM, TV_E_SIZE);
  FITS((int64_t)T * C);
  tv_active->attention_decode(out, q, k_cache, v_cache, T, C, H);
  return TV_OK;
}

int tv_attention_decode_rows(float* out, const float* q, const float* const* k_caches,
                             const float* const* v_caches, const int32_t* lengths, int B, int C,
                             int H, int q_stride) {
  NEED(out); NEED(q); NEED(k_caches); NEED(v_caches); NEED(lengths);
  POS(B); POS(C); POS(H);
  CHECK(C % H == 0 && C / H <= TV_DECODE_MAX_HEAD_DIM, TV_E_SIZE);
  CHECK(q_stride >= C, TV_E_SIZE);
  FITS((int64_t)B * C); FITS((int64_t)B * q_stride);
  for (int b = 0; b < B; b++) {
    NEED(k_caches[b]); NEED(v_caches[b]);
    POS(lengths[b]); FITS((int64_t)lengths[b] * C);
  }
  tv_active->attention_decode_rows(out, q, k_caches, v_caches, lengths, B, C, H, q_stride);
  return TV_OK;
}

int tv_crossentropy_forward_backward(float* losses, float* dlogits, const float* logits,
                                     const int32_t* targets, int M, int V, float dloss) {
  NEED(losses); NEED(logits); NEED(targets);
  POS(M); POS(V); FITS((int64_t)M * V);
  for (int m = 0; m < M; m++) CHECK(targets[m] < V, TV_E_RANGE);
  tv_active->crossentropy_forward_backward(losses, dlogits, logits, targets, M, V, dloss);
  return TV_OK;
}

int tv_newton_schulz(float* const* xs, const int32_t* rows, const int32_t* cols, int count,
                     int steps, const float* coefficients, float* scratch, int64_t scratch_len,
                     int bf16) {
  NEED(xs); NEED(rows); NEED(cols); NEED(coefficients); NEED(scratch);
  POS(count); CHECK(steps >= 0, TV_E_SIZE);
  int64_t side2 = 1, elements = 1;
  for (int i = 0; i < count; i++) {
    NEED(xs[i]);
    POS(rows[i]); POS(cols[i]);
    FITS((int64_t)rows[i] * cols[i]);
    const int64_t s = rows[i] < cols[i] ? rows[i] : cols[i];
    if (s * s > side2) side2 = s * s;
    if ((int64_t)rows[i] * cols[i] > elements) elements = (int64_t)rows[i] * cols[i];
  }
  /* Each thread's a, a² (side²) and product (elements), 16 floats apart so no two share a line. */
  side2 = (side2 + 15) / 16 * 16;
  const int64_t per_thread = 2 * side2 + (elements + 15) / 16 * 16;
  int threads = tv_threads_get();
  if (threads > TV_NS_MAX_THREADS) threads = TV_NS_MAX_THREADS;
  CHECK(scratch_len >= threads * per_thread, TV_E_SIZE);
  if (bf16 && tv_has_bf16())
    tv_active->newton_schulz_bf16(xs, rows, cols, count, steps, coefficients, scratch, side2, per_thread);
  else tv_active->newton_schulz(xs, rows, cols, count, steps, coefficients, scratch, side2, per_thread);
  return TV_OK;
}

int tv_adamw_step(float* params, float* m, float* v, float* grads, int64_t N, float lr,
                  float beta1, float beta2, float eps, float weight_decay, float grad_scale, int t,
                  int clear_grads) {
  NEED(params); NEED(m); NEED(v); NEED(grads);
  POS(N); FITS(N);
  CHECK(t >= 1, TV_E_SIZE);
  tv_active->adamw_step(params, m, v, grads, N, lr, beta1, beta2, eps, weight_decay, grad_scale, t,
                        clear_grads != 0);
  return TV_OK;
}

int tv_sum_squares(double* out, const float* x, int64_t N) {
  NEED(out); NEED(x); POS(N); FITS(N);
  tv_active->sum_squares(out, x, N);
  return TV_OK;
}

int tv_axpby(float* out, const float* x, const float* y, int64_t N, float a, float b) {
  NEED(out); NEED(x); NEED(y); POS(N); FITS(N);
  tv_active->axpby(out, x, y, N, a, b);
  return TV_OK;
}

int tv_argmax(int32_t* out, const float* x, int n) {
  NEED(out); NEED(x); POS(n);
  tv_active->argmax(out, x, n);
  return TV_OK;
}

int tv_top_k_candidates(int32_t* ids, int32_t* count, float* kth, float* heap, const float* x, int n,
                        int k, double margin) {
  NEED(ids); NEED(count); NEED(kth); NEED(heap); NEED(x);
  POS(n); POS(k); CHECK(k <= n, TV_E_SIZE);
  CHECK(margin >= 0 && margin <= 1e30, TV_E_SIZE);
  tv_active->top_k_candidates(ids, count, kth, heap, x, n, k, margin);
  return TV_OK;
}
