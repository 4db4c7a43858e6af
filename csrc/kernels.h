/* kernels.h — the per-ISA kernel table. Every file in csrc/isa/ is compiled once per ISA level
 * (portable, avx2, avx512) with that level's compiler flags; TV_FN(name) gives each copy its own
 * symbol (tv_k_<name>_<isa>). The public entry points in api.c validate sizes and pointers and then
 * call through the table of the level in use, so kernels themselves assume valid arguments. */
#ifndef TV_KERNELS_H
#define TV_KERNELS_H
#include <stdint.h>

#define TV_CAT2(a, b) a##b
#define TV_CAT(a, b) TV_CAT2(a, b)
#ifdef TV_ISA_SUFFIX
#define TV_FN(name) TV_CAT(tv_k_##name, TV_ISA_SUFFIX)
#endif

/* Largest head dimension (C/H) the decode kernel keeps on its stack. */
#define TV_DECODE_MAX_HEAD_DIM 1024
/* Threads that take matrices in tv_newton_schulz (the matmul engines' packing slots). */
#define TV_NS_MAX_THREADS 16
/* Largest head dimension RoPE takes: its per-block cos/sin table sits on the stack. */
#define TV_ROPE_MAX_HEAD_DIM 1024

/* One X-macro list of every kernel: name, parameter list. */
#define TV_KERNEL_LIST(X)                                                                          \
  X(matmul_forward, (float* out, const float* inp, const float* weight, const float* bias, int M,  \
                     int K, int N))                                                                \
  X(matmul_backward, (float* dinp, float* dweight, float* dbias, const float* dout,                \
                      const float* inp, const float* weight, int M, int K, int N))                 \
  X(matmul_forward_bf16, (float* out, const float* inp, const float* weight, const float* bias,   \
                          int M, int K, int N))                                                    \
  X(matmul_backward_bf16, (float* dinp, float* dweight, float* dbias, const float* dout,           \
                           const float* inp, const float* weight, int M, int K, int N))            \
  X(newton_schulz, (float* const* xs, const int32_t* rows, const int32_t* cols, int count,         \
                    int steps, const float* coefficients, float* scratch, int64_t side2,           \
                    int64_t per_thread))                                                           \
  X(newton_schulz_bf16, (float* const* xs, const int32_t* rows, const int32_t* cols, int count,    \
                         int steps, const float* coefficients, float* scratch, int64_t side2,      \
                         int64_t per_thread))                                                      \
  X(layernorm_forward, (float* out, float* mean, float* rstd, const float* inp,                    \
                        const float* weight, const float* bias, int M, int C))                     \
  X(layernorm_backward, (float* dinp, float* dweight, float* dbias, const float* dout,             \
                         const float* inp, const float* weight, const float* mean,                 \
                         const float* rstd, int M, int C))                                         \
  X(residual_layernorm_forward, (float* resid, float* out, float* mean, float* rstd, const float* a,\
                                 const float* b, const float* weight, const float* bias, int M,   \
                                 int C))                                                           \
  X(gelu_forward, (float* out, const float* inp, int64_t N))                                       \
  X(gelu_backward, (float* dinp, const float* inp, const float* dout, int64_t N))                  \
  X(rmsnorm_forward, (float* out, float* rstd, const float* inp, const float* weight, int M, int C,\
                      float eps))                                                                  \
  X(rmsnorm_backward, (float* dinp, float* dweight, const float* dout, const float* inp,           \
                       const float* weight, const float* rstd, int M, int C))                      \
  X(rope, (float* qkv, int B, int T, int C, int NH, int pos0, float theta, int backward))          \
  X(rope_table, (float* cos_table, float* sin_table, int P, int hs, float theta))                  \
  X(rope_rows, (float* qkv, const float* cos_table, const float* sin_table,                        \
                const int32_t* positions, int B, int q_stride, int C, int NH))                     \
  X(swiglu_forward, (float* out, const float* inp, int N, int H))                                  \
  X(swiglu_backward, (float* dinp, const float* inp, const float* dout, int N, int H))            \
  X(residual_forward, (float* out, const float* a, const float* b, int64_t N))                     \
  X(encoder_forward, (float* out, const int32_t* tokens, const float* wte, const float* wpe,       \
                      int B, int T, int C))                                                        \
  X(encoder_backward, (float* dwte, float* dwpe, const float* dout, const int32_t* tokens, int B,  \
                       int T, int C, int V))                                                       \
  X(attention_forward, (float* out, float* lse, const float* qkv, int B, int T, int C, int H))     \
  X(attention_backward, (float* dqkv, const float* dout, const float* qkv, const float* out,       \
                         const float* lse, int B, int T, int C, int H))                            \
  X(attention_forward_bf16, (float* out, float* lse, const float* qkv, int B, int T, int C,       \
                             int H))                                                               \
  X(attention_backward_bf16, (float* dqkv, const float* dout, const float* qkv, const float* out,  \
                              const float* lse, int B, int T, int C, int H))                       \
  X(crossentropy_forward_backward, (float* losses, float* dlogits, const float* logits,            \
                                    const int32_t* targets, int M, int V, float dloss))            \
  X(adamw_step, (float* params, float* m, float* v, float* grads, int64_t N, float lr,             \
                 float beta1, float beta2, float eps, float weight_decay, float grad_scale, int t,  \
                 int clear_grads))                                                                 \
  X(sum_squares, (double* out, const float* x, int64_t N))                                         \
  X(attention_decode, (float* out, const float* q, const float* k_cache, const float* v_cache,     \
                       int T, int C, int H))                                                       \
  X(attention_decode_rows, (float* out, const float* q, const float* const* k_caches,                \
                            const float* const* v_caches, const int32_t* lengths, int B, int C,      \
                            int H, int q_stride))                                                    \
  X(axpby, (float* out, const float* x, const float* y, int64_t N, float a, float b))             \
  X(pack_panels, (float* out, const float* weight, int N, int K))                                  \
  X(matmul_forward_panels, (float* out, const float* inp, const float* panels, const float* bias,   \
                            int M, int K, int N))                                                  \
  X(argmax, (int32_t* out, const float* x, int n))                                                 \
  X(top_k_candidates, (int32_t* ids, int32_t* count, float* kth, float* heap, const float* x,      \
                       int n, int k, double margin))

typedef struct tv_kernels {
#define TV_FIELD(name, params) void(*name) params;
  TV_KERNEL_LIST(TV_FIELD)
#undef TV_FIELD
} tv_kernels;

/* Declarations of every ISA's copies (weak: a level whose copy is missing has a NULL entry). */
#define TV_DECLARE_ISA(suffix)                                                                     \
  TV_KERNEL_LIST(TV_DECL_ONE_##suffix)
#define TV_DECL_ONE_portable(name, params) void tv_k_##name##_portable params __attribute__((weak));
#define TV_DECL_ONE_avx2(name, params) void tv_k_##name##_avx2 params __attribute__((weak));
#define TV_DECL_ONE_avx512(name, params) void tv_k_##name##_avx512 params __attribute__((weak));

#ifdef TV_ISA_SUFFIX
/* Inside an ISA file: declare this level's copies with their real (strong) definitions to come. */
#define TV_DECL_THIS(name, params) void TV_FN(name) params;
TV_KERNEL_LIST(TV_DECL_THIS)
#undef TV_DECL_THIS
#endif

#endif
