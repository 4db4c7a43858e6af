/* dispatch.c — CPU detection and the choice of kernel table.
 * The library carries every ISA level's kernels; at load we take the best one the CPU supports,
 * unless TRAIN_VOCAB_ISA names a lower one (tests use this to check every level). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kernels.h"
#include "train_vocab.h"

TV_DECLARE_ISA(portable)
TV_DECLARE_ISA(avx2)
TV_DECLARE_ISA(avx512)

#define TV_TABLE_ENTRY_portable(name, params) .name = tv_k_##name##_portable,
#define TV_TABLE_ENTRY_avx2(name, params) .name = tv_k_##name##_avx2,
#define TV_TABLE_ENTRY_avx512(name, params) .name = tv_k_##name##_avx512,

static const tv_kernels table_portable = {TV_KERNEL_LIST(TV_TABLE_ENTRY_portable)};
static const tv_kernels table_avx2 = {TV_KERNEL_LIST(TV_TABLE_ENTRY_avx2)};
static const tv_kernels table_avx512 = {TV_KERNEL_LIST(TV_TABLE_ENTRY_avx512)};

const tv_kernels* tv_active = &table_portable;
static int current_level = TV_ISA_PORTABLE;
static int best_level = -1;
static int has_bf16 = 0;
static char features[256];

static int table_complete(const tv_kernels* t) {
  /* A level counts only if the build produced all of its kernels. */
  const void* const* fns = (const void* const*)t;
  for (size_t i = 0; i < sizeof(*t) / sizeof(void*); i++)
    if (!fns[i]) return 0;
  return 1;
}

static void append_feature(const char* name, int present) {
  if (!present) return;
  size_t len = strlen(features);
  if (len + strlen(name) + 2 >= sizeof(features)) return;
  if (len) features[len++] = ' ';
  strcpy(features + len, name);
}

static void detect(void) {
  if (best_level >= 0) return;
  int avx2 = 0, avx512 = 0;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  int f_avx2 = __builtin_cpu_supports("avx2"), f_fma = __builtin_cpu_supports("fma");
  int f_512f = __builtin_cpu_supports("avx512f"), f_512bw = __builtin_cpu_supports("avx512bw");
  int f_512vl = __builtin_cpu_supports("avx512vl"), f_512dq = __builtin_cpu_supports("avx512dq");
  int f_bf16 = __builtin_cpu_supports("avx512bf16"), f_vnni = __builtin_cpu_supports("avx512vnni");
  append_feature("sse2", __builtin_cpu_supports("sse2"));
  append_feature("avx", __builtin_cpu_supports("avx"));
  append_feature("avx2", f_avx2);
  append_feature("fma", f_fma);
  append_feature("avx512f", f_512f);
  append_feature("avx512dq", f_512dq);
  append_feature("avx512bw", f_512bw);
  append_feature("avx512vl", f_512vl);
  append_feature("avx512vnni", f_vnni);
  append_feature("avx512bf16", f_bf16);
  avx2 = f_avx2 && f_fma;
  avx512 = avx2 && f_512f && f_512bw && f_512vl;
  has_bf16 = avx512 && f_bf16;
#endif
  if (!features[0]) strcpy(features, "(no x86 SIMD; portable C)");
  best_level = TV_ISA_PORTABLE;
  if (avx2 && table_complete(&table_avx2)) best_level = TV_ISA_AVX2;
  if (avx512 && table_complete(&table_avx512)) best_level = TV_ISA_AVX512;
}

static const tv_kernels* table_for(int level) {
  switch (level) {
    case TV_ISA_AVX512: return &table_avx512;
    case TV_ISA_AVX2: return &table_avx2;
    default: return &table_portable;
  }
}

int tv_isa_best(void) {
  detect();
  return best_level;
}

int tv_isa_current(void) { return current_level; }

int tv_isa_set(int level) {
  detect();
  if (level < TV_ISA_PORTABLE || level > best_level) return TV_E_ISA;
  if (!table_complete(table_for(level))) return TV_E_ISA;
  current_level = level;
  tv_active = table_for(level);
  return TV_OK;
}

const char* tv_isa_name(int level) {
  switch (level) {
    case TV_ISA_PORTABLE: return "portable";
    case TV_ISA_AVX2: return "avx2";
    case TV_ISA_AVX512: return "avx512";
    default: return NULL;
  }
}

const char* tv_cpu_features(void) {
  detect();
  return features;
}

int tv_has_bf16(void) {
  detect();
  return has_bf16 && current_level == TV_ISA_AVX512;
}

__attribute__((constructor)) static void tv_dispatch_init(void) {
  detect();
  int level = best_level;
  const char* env = getenv("TRAIN_VOCAB_ISA");
  if (env && *env) {
    for (int l = TV_ISA_PORTABLE; l <= TV_ISA_AVX512; l++)
      if (strcasecmp(env, tv_isa_name(l)) == 0 && l < level) level = l;
  }
  tv_isa_set(level);
}
