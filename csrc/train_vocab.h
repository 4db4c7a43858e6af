/*
 * train_vocab.h — the whole C ABI of the train-vocab native library.
 *
 * Conventions:
 *   - every kernel returns an int status: TV_OK (0) or a negative TV_E_* code; it never aborts;
 *   - outputs first, then inputs, then sizes;
 *   - backward kernels ACCUMULATE (+=) into parameter gradients (dweight, dbias, dwte, dwpe, the
 *     norms') and into the residual stream's gradient (LayerNorm's and RMSNorm's dinp), and
 *     OVERWRITE the activation gradients they produce (matmul dinp, GELU, SwiGLU, attention), which
 *     are scratch and then need no clearing (RoPE's backward turns its gradient in place); a NULL
 *     gradient pointer skips it;
 *   - tensors are float32, row-major, contiguous; token ids are int32; outputs do not overlap
 *     inputs unless a kernel says they may;
 *   - no kernel allocates or does I/O (scratch such as packing buffers and partial sums is static),
 *     so calls must not overlap: one host thread at a time (kernels spread their own work over
 *     the library's threads); results are bit-identical for any thread count (work is cut into
 *     pieces whose arithmetic does not depend on which thread runs them, reductions in a fixed
 *     order), but may differ between ISA levels.
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
/* dinp[M,K] = dout[M,N] · weight[N,K] (OVERWRITTEN: dinp is a scratch activation gradient);
 * dweight[N,K] += dout[M,N]ᵀ · inp[M,K];  dbias[N] += Σ_m dout[m,:] (ACCUMULATED: parameter
 * gradients, which a tied weight collects from two places).
 * Any of dinp, dweight, dbias may be NULL (skipped). */
int tv_matmul_backward(float* dinp, float* dweight, float* dbias,
                       const float* dout, const float* inp, const float* weight,
                       int M, int K, int N);
/* Decoding's product on weights packed once into 16-wide panels (tv_pack_panels: panel j holds rows
 * 16j..16j+15 of weight[N,K] depth-major, out[(j·K + k)·16 + i], rows past N zero; out holds
 * ⌈N/16⌉·16·K floats). out[M,N] = inp[M,K] · weightᵀ + bias with one running sum per element over
 * k = 0..K−1, then the bias: the same operations for an element whatever M, so each row of out has
 * the bytes of a one-row call. */
int tv_pack_panels(float* out, const float* weight, int N, int K);
int tv_matmul_forward_panels(float* out, const float* inp, const float* panels, const float* bias,
                             int M, int K, int N);
/* The same two products with bf16 operands (fp32 inputs rounded to nearest even) and fp32
 * accumulation; bias, dbias and the parameter gradients' existing content stay fp32. Where BF16 dot products
 * are unavailable (tv_has_bf16() == 0: the CPU lacks them, or a lower ISA level is in use) these
 * are exactly tv_matmul_forward / tv_matmul_backward. */
int tv_matmul_forward_bf16(float* out, const float* inp, const float* weight, const float* bias,
                           int M, int K, int N);
int tv_matmul_backward_bf16(float* dinp, float* dweight, float* dbias,
                            const float* dout, const float* inp, const float* weight,
                            int M, int K, int N);

/* ---- layernorm (eps = 1e-5) ---------------------------------------------------------------- */

/* out[M,C] = (inp - mean)·rstd·weight + bias; saves mean[M], rstd[M] for backward. */
int tv_layernorm_forward(float* out, float* mean, float* rstd,
                         const float* inp, const float* weight, const float* bias, int M, int C);
/* dinp[M,C] +=, dweight[C] +=, dbias[C] += (dweight/dbias may be NULL; dinp overlaps no input).
 * dweight and dbias are summed per fixed chunk of rows (a function of M and C), chunks in order. */
int tv_layernorm_backward(float* dinp, float* dweight, float* dbias,
                          const float* dout, const float* inp, const float* weight,
                          const float* mean, const float* rstd, int M, int C);
/* resid[M,C] = a + b, then out[M,C] = layernorm(resid) as tv_layernorm_forward (same bytes as the
 * two calls in turn); resid may alias a or b. */
int tv_residual_layernorm_forward(float* resid, float* out, float* mean, float* rstd,
                                  const float* a, const float* b, const float* weight,
                                  const float* bias, int M, int C);

/* ---- GELU, tanh approximation -------------------------------------------------------------- */

/* out[N] = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) */
int tv_gelu_forward(float* out, const float* inp, int64_t N);
/* dinp[N] = gelu'(inp)·dout (overwritten; dinp may be dout itself) */
int tv_gelu_backward(float* dinp, const float* inp, const float* dout, int64_t N);

/* ---- Llama-style block: RMSNorm, rotary position embedding, SwiGLU --------------------------- */
/* Element-wise or row-wise and cheap next to the matmuls: fp32 only, no bf16 variants (under
 * --precision bf16 they run as they are). */

/* out[M,C] = inp·rstd·weight, rstd = 1/√(mean(inp²) + eps) per row (HF's rms_norm_eps, e.g. 1e-5;
 * eps >= 0, else TV_E_RANGE); saves rstd[M] for backward. */
int tv_rmsnorm_forward(float* out, float* rstd, const float* inp, const float* weight, int M, int C,
                       float eps);
/* dinp[M,C] +=, dweight[C] += (dweight may be NULL; dinp overlaps no input), as
 * tv_layernorm_backward: dweight summed per fixed chunk of rows (a function of M and C), in order. */
int tv_rmsnorm_backward(float* dinp, float* dweight, const float* dout, const float* inp,
                        const float* weight, const float* rstd, int M, int C);

/* In place on the Q and K blocks of qkv[B,T,3C] (laid out as for attention; V untouched): row
 * (b,t) is at position pos0 + t, and in each head of size hs = C/NH the channel pairs (i, i + hs/2)
 * turn by pos·theta^(−2i/hs) (HuggingFace's rotate-half):
 *   x[i] ← x[i]·cos − x[i+hs/2]·sin,  x[i+hs/2] ← x[i+hs/2]·cos + x[i]·sin.
 * cos and sin are computed per call in double and rounded to float once (the same floats on every
 * ISA level). hs even and at most 1024, else TV_E_SIZE; pos0 >= 0 and theta > 0, else TV_E_RANGE.
 * For a KV-cache step: B = T = 1 and pos0 = the new token's position. */
int tv_rope_forward(float* qkv, int B, int T, int C, int NH, int pos0, float theta);
/* The gradient through tv_rope_forward: dqkv[B,T,3C]'s Q and K blocks turned back (the inverse
 * rotation, in place; the V block untouched). Same arguments as the forward. */
int tv_rope_backward(float* dqkv, int B, int T, int C, int NH, int pos0, float theta);
/* cos_table[P, hs/2] and sin_table[P, hs/2]: the cos and sin tv_rope_forward turns position p < P
 * by (the same floats), for tv_rope_forward_rows. hs even and at most 1024, P >= 1, theta > 0. */
int tv_rope_table(float* cos_table, float* sin_table, int P, int hs, float theta);
/* Batched decode: row b of qkv (q_stride floats apart, its Q and K blocks) turned in place to
 * position positions[b] (0 <= positions[b] < P) by a tv_rope_table of P positions made with the
 * same hs = C/NH and theta; each row gets the bytes tv_rope_forward(row, 1, 1, C, NH,
 * positions[b], theta) gives it. */
int tv_rope_forward_rows(float* qkv, const float* cos_table, const float* sin_table,
                         const int32_t* positions, int P, int B, int q_stride, int C, int NH);

/* inp[N,2H] holds gate | up per row; out[N,H] = silu(gate)·up, silu(x) = x·σ(x). */
int tv_swiglu_forward(float* out, const float* inp, int N, int H);
/* dinp[N,2H] = [dgate | dup] from dout[N,H] (overwritten; dinp may be inp itself). */
int tv_swiglu_backward(float* dinp, const float* inp, const float* dout, int N, int H);

/* ---- residual add -------------------------------------------------------------------------- */

/* out[N] = a[N] + b[N] (out may alias a or b) */
int tv_residual_forward(float* out, const float* a, const float* b, int64_t N);

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
/* dqkv[B,T,3C] = gradient (overwritten), from dout[B,T,C] and the forward's qkv, out and lse. */
int tv_attention_backward(float* dqkv, const float* dout, const float* qkv, const float* out,
                          const float* lse, int B, int T, int C, int H);
/* The same with the products (Q·Kᵀ, P·V and the backward's five) on bf16 operands rounded to
 * nearest even, fp32 accumulation, fp32 softmax; exactly the fp32 kernels where the CPU (or the
 * selected ISA level) has no AVX512_BF16, and for head sizes above 256 (the untiled path). */
int tv_attention_forward_bf16(float* out, float* lse, const float* qkv, int B, int T, int C, int H);
int tv_attention_backward_bf16(float* dqkv, const float* dout, const float* qkv, const float* out,
                               const float* lse, int B, int T, int C, int H);

/* One new token's attention against a KV cache (generation, batch 1): q[C] is the new query,
 * k_cache[T,C] and v_cache[T,C] hold the keys and values of positions 0..T−1 (the new one last);
 * out[C] = softmax(q·Kᵀ/√(C/H))·V per head. Head dimension C/H at most 1024. */
int tv_attention_decode(float* out, const float* q, const float* k_cache, const float* v_cache,
                        int T, int C, int H);
/* The same for B sequences at once (batched decode): sequence b's query is q + b·q_stride (C floats),
 * its caches k_caches[b], v_caches[b] hold lengths[b] positions, its result is out[b·C .. b·C+C).
 * Each row has the bytes tv_attention_decode gives that sequence alone; one thread hand-off for the
 * whole batch (whole sequences per task when there are enough, else every (sequence, head) pair). */
int tv_attention_decode_rows(float* out, const float* q, const float* const* k_caches,
                             const float* const* v_caches, const int32_t* lengths, int B, int C,
                             int H, int q_stride);

/* ---- softmax + cross-entropy, fused with the logits gradient ------------------------------- */

/* For each row m of logits[M,V]: losses[m] = logsumexp(logits[m]) − logits[m, targets[m]].
 * If dlogits is not NULL it is OVERWRITTEN (not accumulated; it may alias logits) with
 * (softmax(logits[m]) − onehot(targets[m]))·dloss, the gradient of dloss·Σ losses.
 * A target < 0 means "ignore this row": loss 0 and a zero gradient row. TV_E_RANGE if a target >= V. */
int tv_crossentropy_forward_backward(float* losses, float* dlogits, const float* logits,
                                     const int32_t* targets, int M, int V, float dloss);

/* ---- optimizer ------------------------------------------------------------------------------ */

/* AdamW with decoupled weight decay, bias correction by step t (t >= 1), on N parameters, with
 * g = grad_scale·grads (gradient clipping folded in: 1 when not clipping):
 *   m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;
 *   p −= lr·( (m/(1−β1ᵗ)) / (√(v/(1−β2ᵗ)) + eps) + weight_decay·p )
 * With clear_grads = 1, grads is set to 0 as it is read (the next backward then accumulates from
 * zero, with no pass of its own to clear it); with 0 it is not written. */
int tv_adamw_step(float* params, float* m, float* v, float* grads, int64_t N,
                  float lr, float beta1, float beta2, float eps, float weight_decay, float grad_scale,
                  int t, int clear_grads);

/* *out = Σ x[i]² in double, summed in fixed-size chunks in a fixed order (thread-count independent). */
int tv_sum_squares(double* out, const float* x, int64_t N);

/* out[i] = a·x[i] + b·y[i] for i < N (Muon's scaled sums); out may alias x or y. */
int tv_axpby(float* out, const float* x, const float* y, int64_t N, float a, float b);

/* Muon's Newton–Schulz iteration on count matrices, in place: xs[i] is rows[i]×cols[i], divided by
 * its Frobenius norm, then `steps` times A = X·Xᵀ (Xᵀ·X when rows > cols), B = c1·A + c2·A²,
 * X = c0·X + B·X (X·B), with coefficients = {c0, c1, c2}. Each matrix runs whole on one thread;
 * the result is the bytes of the same iteration made of tv_matmul_forward/backward (their bf16
 * pair with bf16 != 0) and tv_axpby calls, for any thread count. scratch: at least
 * min(threads, 16) × (2·⌈s²⌉₁₆ + ⌈e⌉₁₆) floats, s the largest min(rows, cols), e the largest
 * rows·cols, ⌈·⌉₁₆ rounding up to a multiple of 16; else TV_E_SIZE. */
int tv_newton_schulz(float* const* xs, const int32_t* rows, const int32_t* cols, int count,
                     int steps, const float* coefficients, float* scratch, int64_t scratch_len,
                     int bf16);

/* ---- picking a token (the sampler's passes over the logits) --------------------------------- */

/* *out = the first index of the largest of x[0..n): a plain scan that keeps the first strict
 * maximum; a NaN is never greater (a NaN at 0 gives 0). */
int tv_argmax(int32_t* out, const float* x, int n);
/* *kth = the k-th largest of x[0..n) (1 <= k <= n; heap: k floats of scratch), then
 * ids[0..*count) = every index i, ascending, with x[i] >= *kth − margin (compared in double;
 * ids holds n). The same answers as the plain loops, NaNs included. margin: 0 .. 1e30, else
 * TV_E_SIZE. */
int tv_top_k_candidates(int32_t* ids, int32_t* count, float* kth, float* heap, const float* x, int n,
                        int k, double margin);

/* ---- byte-level BPE (tokenizer hot loops) ---- */
/* Not numeric kernels: these allocate (and report failure) and keep state behind opaque handles.
 * Pre-tokenization is the GPT-2 pattern over UTF-8; a byte that is not valid UTF-8 is a character
 * of class OTHER. Results never depend on the thread count. */

#define TV_E_BPE_NOMEM (-16)   /* an allocation failed */
#define TV_E_BPE_CLASSES (-17) /* tv_bpe_set_classes was not called */
#define TV_E_BPE_STATE (-18)   /* call out of order (count after prepare, merge before prepare) */

#define TV_BPE_CODEPOINTS 0x110000
#define TV_BPE_OTHER 0
#define TV_BPE_LETTER 1 /* \p{L} */
#define TV_BPE_NUMBER 2 /* \p{N} */
#define TV_BPE_SPACE 3  /* White_Space */
#define TV_BPE_KIND_BYTE 0
#define TV_BPE_KIND_MERGE 1
#define TV_BPE_KIND_SPECIAL 2
#define TV_BPE_MAX_VOCAB (1 << 24)
#define TV_BPE_MAX_TOKEN_BYTES (1 << 20)
#define TV_BPE_STAT_WORDS_TOTAL 0
#define TV_BPE_STAT_WORDS_DISTINCT 1
#define TV_BPE_STAT_PAIRS 2
#define TV_BPE_STAT_MERGES 3

/* classes[TV_BPE_CODEPOINTS]: the class of every code point (copied; call once before the rest). */
int tv_bpe_set_classes(const uint8_t* classes, int64_t n);
/* ends[cap] = end offset of each pre-token of text[len]; returns the number of pieces (may exceed cap). */
int64_t tv_bpe_pretokenize(int64_t* ends, int64_t cap, const uint8_t* text, int64_t len);
/* Largest p < len where the pre-tokenizer always cuts, whatever follows (0 if none): feed text in
 * pieces ending there and the words are the same as for the whole text. */
int64_t tv_bpe_safe_cut(const uint8_t* text, int64_t len);

typedef struct tv_bpe_trainer tv_bpe_trainer;
tv_bpe_trainer* tv_bpe_trainer_new(void);
/* Pre-tokenize text[len] (cut where tv_bpe_safe_cut says, or a whole document) and count its words. */
int tv_bpe_trainer_count(tv_bpe_trainer* t, const uint8_t* text, int64_t len);
/* TV_BPE_STAT_*: words counted, distinct words, pairs, merges done. */
int64_t tv_bpe_trainer_stat(const tv_bpe_trainer* t, int what);
/* End counting; bytes are ids 0..255, merges get ids first_merge_id, first_merge_id+1, … */
int tv_bpe_trainer_prepare(tv_bpe_trainer* t, int32_t first_merge_id);
/* Up to max_merges more merges; merges[2·k], merges[2·k+1] = left and right id of merge k. Best pair =
 * highest count, ties to the smaller left id then smaller right id; a pair whose bytes already form a
 * token is skipped; stops when the best count < min_frequency. Returns merges done (0 = finished). */
int32_t tv_bpe_trainer_merge(tv_bpe_trainer* t, int32_t* merges, int32_t max_merges, int64_t min_frequency);
void tv_bpe_trainer_free(tv_bpe_trainer* t);

typedef struct tv_bpe_encoder tv_bpe_encoder;
/* A vocabulary of n_vocab tokens: kinds[n] (TV_BPE_KIND_*), left[n]/right[n] (merge parents, earlier
 * ids; −1 otherwise), bytes of token i = bytes[offsets[i] … offsets[i+1]). Every byte value must be a
 * token. A merge's rank is its id. NULL on error with *status set. */
tv_bpe_encoder* tv_bpe_encoder_new(const uint8_t* kinds, const int32_t* left, const int32_t* right,
                                   const uint8_t* bytes, const int64_t* offsets, int32_t n_vocab,
                                   int32_t* status);
/* out[cap] = ids of text[len] (cap >= len); returns the number of ids. Specials are never produced. */
int64_t tv_bpe_encode(tv_bpe_encoder* e, uint32_t* out, int64_t cap, const uint8_t* text, int64_t len);
/* out[cap] = bytes of ids[n]; returns the byte count. With out == NULL, only measures. */
int64_t tv_bpe_decode(const tv_bpe_encoder* e, uint8_t* out, int64_t cap, const uint32_t* ids, int64_t n);
void tv_bpe_encoder_free(tv_bpe_encoder* e);

#ifdef __cplusplus
}
#endif
#endif
