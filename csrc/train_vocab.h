/*
 * train_vocab.h — the whole C ABI of the train-vocab native library.
 *
 * Conventions (see DESIGN.md):
 *   - every kernel returns an int status: TV_OK (0) or a negative TV_E_* code; it never aborts;
 *   - outputs first, then inputs, then sizes;
 *   - backward kernels ACCUMULATE (+=) into every gradient they write; a NULL gradient pointer skips it;
 *   - tensors are float32, row-major, contiguous; token ids are int32;
 *   - no kernel allocates or does I/O; results are bit-identical for any thread count (static
 *     partitioning, reductions in a fixed order), but may differ between ISA levels.
 *
 * Shapes use B (batch), T (time), C (channels = d_model), H (heads), V (vocab), M = B*T (rows).
 */
#ifndef TRAIN_VOCAB_H
#define TRAIN_VOCAB_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TV_OK 0
#define TV_E_SIZE (-1)   /* a size is zero, negative, or the sizes do not fit together */
#define TV_E_NULL (-2)   /* a required pointer is NULL */
#define TV_E_ISA (-3)    /* the requested ISA level is not supported by this CPU or build */
#define TV_E_RANGE (-4)  /* a token id or index is out of range */

/* ISA levels, best last. */
#define TV_ISA_PORTABLE 0
#define TV_ISA_AVX2 1
#define TV_ISA_AVX512 2

/* ---- runtime: CPU features, ISA dispatch, threads ---------------------------------------- */

/* Highest ISA level this CPU and this build support. */
int tv_isa_best(void);
/* ISA level in use. Chosen at load: the best, or lower if TRAIN_VOCAB_ISA=portable|avx2|avx512 says so. */
int tv_isa_current(void);
/* Switch the ISA level; TV_E_ISA if the CPU or build lacks it. */
int tv_isa_set(int level);
/* "portable", "avx2", "avx512" (NULL for an unknown level). */
const char* tv_isa_name(int level);
/* Space-separated list of the CPU features that matter here, e.g. "sse2 avx2 fma avx512f ...". */
const char* tv_cpu_features(void);
/* 1 when the avx512 level also has AVX512_BF16 dot products. */
int tv_has_bf16(void);

/* Threads used by every kernel (1..256). Default: the CPUs this process may run on,
 * or TRAIN_VOCAB_THREADS. */
int tv_threads_set(int n);
int tv_threads_get(void);

/* ---- matmul: y = x·Wᵀ + b (the nn.Linear layout) ------------------------------------------ */

/* out[M,N] = inp[M,K] · weight[N,K]ᵀ + bias[N]; bias may be NULL. */
int tv_matmul_forward(float* out, const float* inp, const float* weight, const float* bias,
                      int M, int K, int N);
/* dinp[M,K] += dout[M,N] · weight[N,K];  dweight[N,K] += dout[M,N]ᵀ · inp[M,K];
 * dbias[N] += Σ_m dout[m,:].  Any of dinp, dweight, dbias may be NULL (skipped). */
int tv_matmul_backward(float* dinp, float* dweight, float* dbias,
                       const float* dout, const float* inp, const float* weight,
                       int M, int K, int N);

/* ---- layernorm (eps = 1e-5) ---------------------------------------------------------------- */

/* out[M,C] = (inp - mean)·rstd·weight + bias; saves mean[M], rstd[M] for backward. */
int tv_layernorm_forward(float* out, float* mean, float* rstd,
                         const float* inp, const float* weight, const float* bias, int M, int C);
/* dinp[M,C] +=, dweight[C] +=, dbias[C] += (dweight/dbias may be NULL). */
int tv_layernorm_backward(float* dinp, float* dweight, float* dbias,
                          const float* dout, const float* inp, const float* weight,
                          const float* mean, const float* rstd, int M, int C);

/* ---- GELU, tanh approximation -------------------------------------------------------------- */

/* out[N] = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) */
int tv_gelu_forward(float* out, const float* inp, int64_t N);
/* dinp[N] += gelu'(inp)·dout */
int tv_gelu_backward(float* dinp, const float* inp, const float* dout, int64_t N);

/* ---- residual add -------------------------------------------------------------------------- */

/* out[N] = a[N] + b[N] (out may alias a or b) */
int tv_residual_forward(float* out, const float* a, const float* b, int64_t N);
/* da[N] += dout; db[N] += dout (either may be NULL) */
int tv_residual_backward(float* da, float* db, const float* dout, int64_t N);

/* ---- token + position embedding ------------------------------------------------------------ */

/* out[B,T,C] = wte[tokens[b,t],:] + wpe[t,:];  wte[V,C], wpe[maxT,C], T <= maxT.
 * TV_E_RANGE if a token is outside [0,V). */
int tv_encoder_forward(float* out, const int32_t* tokens, const float* wte, const float* wpe,
                       int B, int T, int C, int V, int maxT);
/* dwte[V,C] += scatter of dout by token; dwpe[maxT,C] += Σ_b dout[b,t,:] (either may be NULL). */
int tv_encoder_backward(float* dwte, float* dwpe, const float* dout, const int32_t* tokens,
                        int B, int T, int C, int V, int maxT);

/* ---- causal multi-head self-attention (fused) ---------------------------------------------- */

/* qkv[B,T,3C] holds Q|K|V blocks per row; head h uses channels h·C/H … (h+1)·C/H−1 of each block.
 * out[B,T,C] = softmax(Q·Kᵀ/√(C/H) + causal mask)·V per head; lse[B,H,T] saves each row's
 * log-sum-exp of the scaled scores for backward. Memory O(T) per row: nothing B·H·T·T is stored. */
int tv_attention_forward(float* out, float* lse, const float* qkv, int B, int T, int C, int H);
/* dqkv[B,T,3C] += gradient, from dout[B,T,C] and the forward's qkv, out and lse. */
int tv_attention_backward(float* dqkv, const float* dout, const float* qkv, const float* out,
                          const float* lse, int B, int T, int C, int H);

/* One new token's attention against a KV cache (generation, batch 1): q[C] is the new query,
 * k_cache[T,C] and v_cache[T,C] hold the keys and values of positions 0..T−1 (the new one last);
 * out[C] = softmax(q·Kᵀ/√(C/H))·V per head. Head dimension C/H at most 1024. */
int tv_attention_decode(float* out, const float* q, const float* k_cache, const float* v_cache,
                        int T, int C, int H);

/* ---- softmax + cross-entropy, fused with the logits gradient ------------------------------- */

/* For each row m of logits[M,V]: losses[m] = logsumexp(logits[m]) − logits[m, targets[m]].
 * If dlogits is not NULL it is OVERWRITTEN (not accumulated; it may alias logits) with
 * (softmax(logits[m]) − onehot(targets[m]))·dloss, the gradient of dloss·Σ losses.
 * A target < 0 means "ignore this row": loss 0 and a zero gradient row. TV_E_RANGE if a target >= V. */
int tv_crossentropy_forward_backward(float* losses, float* dlogits, const float* logits,
                                     const int32_t* targets, int M, int V, float dloss);

/* ---- optimizer ------------------------------------------------------------------------------ */

/* AdamW with decoupled weight decay, bias correction by step t (t >= 1), on N parameters:
 *   m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;
 *   p −= lr·( (m/(1−β1ᵗ)) / (√(v/(1−β2ᵗ)) + eps) + weight_decay·p ) */
int tv_adamw_step(float* params, float* m, float* v, const float* grads, int64_t N,
                  float lr, float beta1, float beta2, float eps, float weight_decay, int t);

/* *out = Σ x[i]² in double, summed in fixed-size chunks in a fixed order (thread-count independent). */
int tv_sum_squares(double* out, const float* x, int64_t N);
/* x[N] *= s */
int tv_scale(float* x, int64_t N, float s);

#ifdef __cplusplus
}
#endif
#endif
