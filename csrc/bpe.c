/* bpe.c — the hot loops of byte-level BPE: GPT-2-style pre-tokenization, word counting, merge
 * training, encoding and decoding.
 *
 * Not a numeric kernel: these functions allocate (word tables, pair tables, caches) and report a
 * failed allocation as TV_E_BPE_NOMEM. Every input is bounds-checked; nothing here aborts.
 * Results never depend on the thread count: counting sums per-thread tables and sorts the words;
 * encoding cuts the text only where the pre-tokenizer always cuts; the merge loop is sequential.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "threads.h"
#include "train_vocab.h"

#define MAX_THREADS 256
#define PARTS_PER_THREAD 8 /* text is cut into this many parts per thread, taken in turn */

/* ---- character classes (set once from TypeScript, which owns the Unicode tables) ----------- */

static uint8_t g_classes[TV_BPE_CODEPOINTS];
static int g_classes_set = 0;

int tv_bpe_set_classes(const uint8_t* classes, int64_t n) {
  if (!classes) return TV_E_NULL;
  if (n != TV_BPE_CODEPOINTS) return TV_E_SIZE;
  for (int64_t i = 0; i < n; i++) g_classes[i] = classes[i] <= TV_BPE_SPACE ? classes[i] : TV_BPE_OTHER;
  g_classes_set = 1;
  return TV_OK;
}

/* One UTF-8 character at s[i] (i < len): its byte length, and its class. A byte that does not start
 * a valid, shortest-form sequence is a character of its own, of class OTHER. */
static inline int char_at(const uint8_t* s, int64_t len, int64_t i, int32_t* cp, int* cls) {
  uint32_t c = s[i];
  if (c < 0x80) {
    *cp = (int32_t)c;
    *cls = g_classes[c];
    return 1;
  }
  int32_t v = -1;
  int n = 1;
  if (c >= 0xC2 && c <= 0xDF) {
    if (i + 1 < len && (s[i + 1] & 0xC0) == 0x80) {
      v = (int32_t)(((c & 0x1F) << 6) | (s[i + 1] & 0x3F));
      n = 2;
    }
  } else if (c >= 0xE0 && c <= 0xEF) {
    if (i + 2 < len && (s[i + 1] & 0xC0) == 0x80 && (s[i + 2] & 0xC0) == 0x80) {
      int32_t w = (int32_t)(((c & 0x0F) << 12) | ((s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F));
      if (w >= 0x800 && (w < 0xD800 || w > 0xDFFF)) {
        v = w;
        n = 3;
      }
    }
  } else if (c >= 0xF0 && c <= 0xF4) {
    if (i + 3 < len && (s[i + 1] & 0xC0) == 0x80 && (s[i + 2] & 0xC0) == 0x80 && (s[i + 3] & 0xC0) == 0x80) {
      int32_t w = (int32_t)(((c & 0x07) << 18) | ((s[i + 1] & 0x3F) << 12) | ((s[i + 2] & 0x3F) << 6) |
                            (s[i + 3] & 0x3F));
      if (w >= 0x10000 && w <= 0x10FFFF) {
        v = w;
        n = 4;
      }
    }
  }
  *cp = v;
  *cls = v < 0 ? TV_BPE_OTHER : g_classes[v];
  return n;
}

/* End of the piece that starts at s[i]: the GPT-2 pattern
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * evaluated by hand (leftmost alternative wins, runs are greedy). */
static int64_t piece_end(const uint8_t* s, int64_t len, int64_t i) {
  if (s[i] == '\'' && i + 1 < len) {
    uint8_t d = s[i + 1];
    if (d == 's' || d == 't' || d == 'm' || d == 'd') return i + 2;
    if (i + 2 < len) {
      uint8_t e = s[i + 2];
      if ((d == 'r' && e == 'e') || (d == 'v' && e == 'e') || (d == 'l' && e == 'l')) return i + 3;
    }
  }
  int32_t cp;
  int k;
  int64_t j = i + char_at(s, len, i, &cp, &k);
  if (cp == ' ' && j < len) { /* an optional leading space joins a following non-space run */
    int32_t cp2;
    int k2;
    int n2 = char_at(s, len, j, &cp2, &k2);
    if (k2 != TV_BPE_SPACE) {
      k = k2;
      j += n2;
    }
  }
  if (k != TV_BPE_SPACE) {
    while (j < len) {
      int32_t c;
      int kc;
      int n = char_at(s, len, j, &c, &kc);
      if (kc != k) break;
      j += n;
    }
    return j;
  }
  /* whitespace run: all of it at the end of the text; otherwise all but its last character
   * (which then leads the next piece, or stands alone), unless the run is one character. */
  int64_t last = i;
  int64_t nchars = 1;
  while (j < len) {
    int32_t c;
    int kc;
    int n = char_at(s, len, j, &c, &kc);
    if (kc != TV_BPE_SPACE) break;
    last = j;
    j += n;
    nchars++;
  }
  if (j == len || nchars == 1) return j;
  return last;
}

int64_t tv_bpe_pretokenize(int64_t* ends, int64_t cap, const uint8_t* text, int64_t len) {
  if (!g_classes_set) return TV_E_BPE_CLASSES;
  if (len < 0 || cap < 0) return TV_E_SIZE;
  if (len > 0 && !text) return TV_E_NULL;
  if (cap > 0 && !ends) return TV_E_NULL;
  int64_t n = 0;
  for (int64_t i = 0; i < len;) {
    int64_t e = piece_end(text, len, i);
    if (n < cap) ends[n] = e;
    n++;
    i = e;
  }
  return n;
}

static inline int is_ascii_space(uint8_t c) { return c == ' ' || (c >= 9 && c <= 13); }
static inline int is_ascii_letter(uint8_t c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }

/* Can a byte end a whitespace character? (ASCII spaces, or the last byte of U+0085, U+00A0, U+1680,
 * U+2000–U+200A, U+2028, U+2029, U+202F, U+205F, U+3000.) Conservative: may say yes wrongly. */
static inline int may_end_space(uint8_t c) {
  if (c < 0x80) return is_ascii_space(c);
  return c == 0x85 || c == 0xA0 || (c >= 0x80 && c <= 0x8A) || c == 0xA8 || c == 0xA9 || c == 0xAF || c == 0x9F;
}

/* Is p a place where the pre-tokenizer always cuts, whatever comes before or after the window?
 * (a) after a lone '\n' (no whitespace before it) and before an ASCII non-space byte: that '\n' is a
 *     piece of its own both in the whole text and at the end of the left part; (b) between an ASCII
 *     letter and " x" (x an ASCII letter): the letter run ends at p and the space joins the next word. */
static inline int safe_cut_at(const uint8_t* s, int64_t len, int64_t p) {
  if (p <= 0 || p >= len) return 0;
  uint8_t a = s[p - 1], b = s[p];
  if (a == '\n' && b < 0x80 && !is_ascii_space(b) && (p == 1 || !may_end_space(s[p - 2]))) return 1;
  if (b == ' ' && p + 1 < len && is_ascii_letter(a) && is_ascii_letter(s[p + 1])) {
    /* "'s t": the letter may belong to a contraction, which also ends at p: still a cut. */
    return 1;
  }
  return 0;
}

int64_t tv_bpe_safe_cut(const uint8_t* text, int64_t len) {
  if (len < 0) return TV_E_SIZE;
  if (len > 0 && !text) return TV_E_NULL;
  for (int64_t p = len - 1; p > 0; p--)
    if (safe_cut_at(text, len, p)) return p;
  return 0;
}

/* Cut [0,len) into up to `parts` slices at safe points near equal sizes; cuts[0]=0, cuts[k]=len. */
static int split_text(const uint8_t* s, int64_t len, int parts, int64_t* cuts) {
  int k = 0;
  cuts[0] = 0;
  for (int t = 1; t < parts; t++) {
    int64_t target = len * t / parts;
    if (target <= cuts[k]) continue;
    int64_t p = target, limit = target + (1 << 20);
    if (limit > len) limit = len;
    while (p < limit && !safe_cut_at(s, len, p)) p++;
    if (p < limit) cuts[++k] = p;
  }
  cuts[++k] = len;
  return k;
}

/* ---- hashing -------------------------------------------------------------------------------- */

static inline uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

static inline uint64_t hash_bytes(const uint8_t* p, int64_t n) {
  uint64_t h = 0x9E3779B97F4A7C15ULL ^ (uint64_t)n;
  while (n >= 8) {
    uint64_t v;
    memcpy(&v, p, 8);
    h = (h ^ mix64(v)) * 0x100000001b3ULL;
    p += 8;
    n -= 8;
  }
  uint64_t v = 0;
  for (int64_t i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
  return mix64(h ^ v);
}

/* Equality of two short byte strings without a libc call (most words are a few bytes). */
static inline int bytes_eq(const uint8_t* a, const uint8_t* b, int64_t n) {
  while (n >= 8) {
    uint64_t x, y;
    memcpy(&x, a, 8);
    memcpy(&y, b, 8);
    if (x != y) return 0;
    a += 8;
    b += 8;
    n -= 8;
  }
  for (int64_t i = 0; i < n; i++)
    if (a[i] != b[i]) return 0;
  return 1;
}

/* A growable byte/int arena. */
typedef struct {
  uint8_t* data;
  int64_t len, cap;
} arena;

static int arena_reserve(arena* a, int64_t extra) {
  if (a->len + extra <= a->cap) return 1;
  int64_t cap = a->cap ? a->cap : 4096;
  while (cap < a->len + extra) cap *= 2;
  uint8_t* d = (uint8_t*)realloc(a->data, (size_t)cap);
  if (!d) return 0;
  a->data = d;
  a->cap = cap;
  return 1;
}

/* ---- word counting -------------------------------------------------------------------------- */

typedef struct {
  uint64_t hash;
  int64_t off; /* into the table's arena; -1 = empty slot */
  int64_t count;
  int32_t len;
} word_slot;

typedef struct {
  word_slot* slots;
  int64_t cap, used;
  arena bytes;
  int64_t total; /* words counted, with repeats */
  int failed;
} word_table;

static int wt_grow(word_table* t) {
  int64_t cap = t->cap ? t->cap * 2 : 1 << 14;
  word_slot* s = (word_slot*)malloc((size_t)cap * sizeof(word_slot));
  if (!s) return 0;
  for (int64_t i = 0; i < cap; i++) s[i].off = -1;
  for (int64_t i = 0; i < t->cap; i++) {
    if (t->slots[i].off < 0) continue;
    int64_t j = (int64_t)(t->slots[i].hash & (uint64_t)(cap - 1));
    while (s[j].off >= 0) j = (j + 1) & (cap - 1);
    s[j] = t->slots[i];
  }
  free(t->slots);
  t->slots = s;
  t->cap = cap;
  return 1;
}

static int wt_add(word_table* t, const uint8_t* w, int64_t n, uint64_t h, int64_t count) {
  if ((t->used + 1) * 2 > t->cap && !wt_grow(t)) return 0;
  int64_t j = (int64_t)(h & (uint64_t)(t->cap - 1));
  for (;;) {
    word_slot* s = &t->slots[j];
    if (s->off < 0) break;
    if (s->hash == h && s->len == n && bytes_eq(t->bytes.data + s->off, w, n)) {
      s->count += count;
      return 1;
    }
    j = (j + 1) & (t->cap - 1);
  }
  if (!arena_reserve(&t->bytes, n)) return 0;
  memcpy(t->bytes.data + t->bytes.len, w, (size_t)n);
  word_slot* s = &t->slots[j];
  s->hash = h;
  s->off = t->bytes.len;
  s->len = (int32_t)n;
  s->count = count;
  t->bytes.len += n;
  t->used++;
  return 1;
}

static void wt_free(word_table* t) {
  free(t->slots);
  free(t->bytes.data);
  memset(t, 0, sizeof(*t));
}

/* ---- trainer: words → merges -------------------------------------------------------------- */

typedef struct {
  uint32_t* w;
  int32_t n, cap;
} word_list;

typedef struct {
  int64_t count;
  int32_t a, b, idx;
} heap_entry;

struct tv_bpe_trainer {
  word_table tables[MAX_THREADS];
  int prepared;
  /* words (distinct, sorted by bytes), each a run of symbol ids in `sym` */
  int32_t* sym;
  int64_t* word_off;
  int32_t* word_len;
  int64_t* word_count;
  int64_t n_words;
  int32_t* stamp; /* per word: last merge that visited it */
  /* pairs */
  int32_t *pa, *pb;
  int64_t* pcount;
  word_list* plist;
  uint8_t* banned;
  int32_t* ptouched;
  int64_t n_pairs, pairs_cap;
  uint64_t* pmap_key;
  int32_t* pmap_val;
  int64_t pmap_cap;
  heap_entry* heap;
  int64_t heap_len, heap_cap;
  int32_t* touched;
  int64_t n_touched, touched_cap;
  /* token bytes, for the rule "never create a second token with the same bytes" */
  arena tok_bytes;
  int64_t* tok_off;
  int32_t* tok_len;
  int64_t n_tok, tok_cap;
  word_table tok_set; /* bytes → token (count holds the id) */
  int32_t next_id;
  int32_t merges_done;
  int failed;
};

tv_bpe_trainer* tv_bpe_trainer_new(void) {
  tv_bpe_trainer* t = (tv_bpe_trainer*)calloc(1, sizeof(tv_bpe_trainer));
  return t;
}

typedef struct {
  tv_bpe_trainer* t;
  const uint8_t* text;
  int64_t* cuts;
  int nparts;
  _Atomic int next_part; /* parts are taken in turn: a busy core does fewer (results do not depend on who) */
} count_job;

static void count_body(void* arg, int tid, int nthreads) {
  count_job* job = (count_job*)arg;
  word_table* wt = &job->t->tables[tid];
  for (int part; (part = atomic_fetch_add(&job->next_part, 1)) < job->nparts;) {
    const uint8_t* s = job->text + job->cuts[part];
    int64_t len = job->cuts[part + 1] - job->cuts[part];
    for (int64_t i = 0; i < len && !wt->failed;) {
      int64_t e = piece_end(s, len, i);
      if (!wt_add(wt, s + i, e - i, hash_bytes(s + i, e - i), 1)) wt->failed = 1;
      wt->total++;
      i = e;
    }
  }
}

int tv_bpe_trainer_count(tv_bpe_trainer* t, const uint8_t* text, int64_t len) {
  if (!t) return TV_E_NULL;
  if (!g_classes_set) return TV_E_BPE_CLASSES;
  if (len < 0) return TV_E_SIZE;
  if (len == 0) return TV_OK;
  if (!text) return TV_E_NULL;
  if (t->prepared) return TV_E_BPE_STATE;
  if (t->failed) return TV_E_BPE_NOMEM;
  int threads = tv_pool_threads();
  if (threads > MAX_THREADS) threads = MAX_THREADS;
  int64_t cuts[PARTS_PER_THREAD * MAX_THREADS + 1];
  int parts = len < (1 << 16) ? 1 : PARTS_PER_THREAD * threads;
  int nparts = split_text(text, len, parts, cuts);
  count_job job = {t, text, cuts, nparts, 0};
  if (nparts == 1)
    count_body(&job, 0, 1);
  else
    tv_parallel_run(count_body, &job);
  for (int i = 0; i < MAX_THREADS; i++)
    if (t->tables[i].failed) {
      t->failed = 1;
      return TV_E_BPE_NOMEM;
    }
  return TV_OK;
}

int64_t tv_bpe_trainer_stat(const tv_bpe_trainer* t, int what) {
  if (!t) return TV_E_NULL;
  int64_t sum = 0;
  switch (what) {
    case TV_BPE_STAT_WORDS_TOTAL:
      for (int i = 0; i < MAX_THREADS; i++) sum += t->tables[i].total;
      return sum;
    case TV_BPE_STAT_WORDS_DISTINCT:
      if (t->prepared) return t->n_words;
      for (int i = 0; i < MAX_THREADS; i++) sum += t->tables[i].used;
      return sum; /* an upper bound until prepared: a word seen by two threads counts twice */
    case TV_BPE_STAT_PAIRS:
      return t->n_pairs;
    case TV_BPE_STAT_MERGES:
      return t->merges_done;
    default:
      return TV_E_SIZE;
  }
}

static const uint8_t* g_sort_bytes; /* qsort has no context argument in C11 */
static int cmp_words(const void* x, const void* y) {
  const word_slot* a = (const word_slot*)x;
  const word_slot* b = (const word_slot*)y;
  int32_t n = a->len < b->len ? a->len : b->len;
  int c = memcmp(g_sort_bytes + a->off, g_sort_bytes + b->off, (size_t)n);
  if (c) return c;
  return (a->len > b->len) - (a->len < b->len);
}

static int grow_array(void** p, int64_t* cap, int64_t need, size_t elem) {
  if (need <= *cap) return 1;
  int64_t c = *cap ? *cap : 1024;
  while (c < need) c *= 2;
  void* q = realloc(*p, (size_t)c * elem);
  if (!q) return 0;
  *p = q;
  *cap = c;
  return 1;
}

/* pair table ------------------------------------------------------------------------------ */

static int pmap_grow(tv_bpe_trainer* t) {
  int64_t cap = t->pmap_cap ? t->pmap_cap * 2 : 1 << 16;
  uint64_t* key = (uint64_t*)malloc((size_t)cap * sizeof(uint64_t));
  int32_t* val = (int32_t*)malloc((size_t)cap * sizeof(int32_t));
  if (!key || !val) {
    free(key);
    free(val);
    return 0;
  }
  for (int64_t i = 0; i < cap; i++) val[i] = -1;
  for (int64_t i = 0; i < t->pmap_cap; i++) {
    if (t->pmap_val[i] < 0) continue;
    int64_t j = (int64_t)(mix64(t->pmap_key[i]) & (uint64_t)(cap - 1));
    while (val[j] >= 0) j = (j + 1) & (cap - 1);
    key[j] = t->pmap_key[i];
    val[j] = t->pmap_val[i];
  }
  free(t->pmap_key);
  free(t->pmap_val);
  t->pmap_key = key;
  t->pmap_val = val;
  t->pmap_cap = cap;
  return 1;
}

/* Index of pair (a,b), created with count 0 if new; -1 when out of memory. */
static int32_t pair_get(tv_bpe_trainer* t, int32_t a, int32_t b) {
  if ((t->n_pairs + 1) * 2 > t->pmap_cap && !pmap_grow(t)) return -1;
  uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
  int64_t j = (int64_t)(mix64(key) & (uint64_t)(t->pmap_cap - 1));
  while (t->pmap_val[j] >= 0) {
    if (t->pmap_key[j] == key) return t->pmap_val[j];
    j = (j + 1) & (t->pmap_cap - 1);
  }
  int64_t n = t->n_pairs;
  if (n >= INT32_MAX - 1) return -1;
  if (n + 1 > t->pairs_cap) {
    int64_t cap = t->pairs_cap;
    int64_t c1 = cap, c2 = cap, c3 = cap, c4 = cap, c5 = cap, c6 = cap;
    if (!grow_array((void**)&t->pa, &c1, n + 1, sizeof(int32_t)) ||
        !grow_array((void**)&t->pb, &c2, n + 1, sizeof(int32_t)) ||
        !grow_array((void**)&t->pcount, &c3, n + 1, sizeof(int64_t)) ||
        !grow_array((void**)&t->plist, &c4, n + 1, sizeof(word_list)) ||
        !grow_array((void**)&t->banned, &c5, n + 1, sizeof(uint8_t)) ||
        !grow_array((void**)&t->ptouched, &c6, n + 1, sizeof(int32_t)))
      return -1;
    t->pairs_cap = c1;
  }
  t->pa[n] = a;
  t->pb[n] = b;
  t->pcount[n] = 0;
  t->plist[n] = (word_list){NULL, 0, 0};
  t->banned[n] = 0;
  t->ptouched[n] = -1;
  t->pmap_key[j] = key;
  t->pmap_val[j] = (int32_t)n;
  t->n_pairs++;
  return (int32_t)n;
}

static int32_t pair_find(const tv_bpe_trainer* t, int32_t a, int32_t b) {
  if (!t->pmap_cap) return -1;
  uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
  int64_t j = (int64_t)(mix64(key) & (uint64_t)(t->pmap_cap - 1));
  while (t->pmap_val[j] >= 0) {
    if (t->pmap_key[j] == key) return t->pmap_val[j];
    j = (j + 1) & (t->pmap_cap - 1);
  }
  return -1;
}

static int list_push(word_list* l, uint32_t w) {
  if (l->n && l->w[l->n - 1] == w) return 1; /* a word visits its pairs in order: skip repeats */
  if (l->n == l->cap) {
    int32_t cap = l->cap ? l->cap * 2 : 4;
    if (cap < 0) return 0;
    uint32_t* p = (uint32_t*)realloc(l->w, (size_t)cap * sizeof(uint32_t));
    if (!p) return 0;
    l->w = p;
    l->cap = cap;
  }
  l->w[l->n++] = w;
  return 1;
}

/* Add `delta` to pair (a,b)'s count; a positive delta records word w and marks the pair for the heap. */
static int pair_add(tv_bpe_trainer* t, int32_t a, int32_t b, int64_t delta, uint32_t w) {
  int32_t p = delta > 0 ? pair_get(t, a, b) : pair_find(t, a, b);
  if (p < 0) return delta > 0 ? 0 : 1;
  t->pcount[p] += delta;
  if (delta > 0) {
    if (!list_push(&t->plist[p], w)) return 0;
    if (t->ptouched[p] != t->merges_done) {
      t->ptouched[p] = t->merges_done;
      if (!grow_array((void**)&t->touched, &t->touched_cap, t->n_touched + 1, sizeof(int32_t))) return 0;
      t->touched[t->n_touched++] = p;
    }
  }
  return 1;
}

/* heap: highest count first; ties → smaller left id, then smaller right id (the stated rule) */
static inline int heap_before(const heap_entry* x, const heap_entry* y) {
  if (x->count != y->count) return x->count > y->count;
  if (x->a != y->a) return x->a < y->a;
  return x->b < y->b;
}

static int heap_push(tv_bpe_trainer* t, int32_t p) {
  if (!grow_array((void**)&t->heap, &t->heap_cap, t->heap_len + 1, sizeof(heap_entry))) return 0;
  heap_entry e = {t->pcount[p], t->pa[p], t->pb[p], p};
  int64_t i = t->heap_len++;
  while (i > 0) {
    int64_t up = (i - 1) / 2;
    if (!heap_before(&e, &t->heap[up])) break;
    t->heap[i] = t->heap[up];
    i = up;
  }
  t->heap[i] = e;
  return 1;
}

static heap_entry heap_pop(tv_bpe_trainer* t) {
  heap_entry top = t->heap[0];
  heap_entry last = t->heap[--t->heap_len];
  int64_t i = 0, n = t->heap_len;
  for (;;) {
    int64_t c = 2 * i + 1;
    if (c >= n) break;
    if (c + 1 < n && heap_before(&t->heap[c + 1], &t->heap[c])) c++;
    if (!heap_before(&t->heap[c], &last)) break;
    t->heap[i] = t->heap[c];
    i = c;
  }
  if (n > 0) t->heap[i] = last;
  return top;
}

static int tok_add(tv_bpe_trainer* t, int32_t id, const uint8_t* bytes, int32_t n) {
  int64_t need = (int64_t)id + 1, cap_off = t->tok_cap, cap_len = t->tok_cap;
  if (!grow_array((void**)&t->tok_off, &cap_off, need, sizeof(int64_t)) ||
      !grow_array((void**)&t->tok_len, &cap_len, need, sizeof(int32_t)))
    return 0;
  t->tok_cap = cap_off;
  for (int64_t i = t->n_tok; i < need; i++) { /* ids reserved for specials hold no bytes here */
    t->tok_off[i] = 0;
    t->tok_len[i] = 0;
  }
  if (t->n_tok < need) t->n_tok = need;
  if (!arena_reserve(&t->tok_bytes, n)) return 0;
  memcpy(t->tok_bytes.data + t->tok_bytes.len, bytes, (size_t)n);
  t->tok_off[id] = t->tok_bytes.len;
  t->tok_len[id] = n;
  t->tok_bytes.len += n;
  return wt_add(&t->tok_set, bytes, n, hash_bytes(bytes, n), id);
}

static int tok_exists(tv_bpe_trainer* t, const uint8_t* w, int64_t n) {
  word_table* s = &t->tok_set;
  if (!s->cap) return 0;
  uint64_t h = hash_bytes(w, n);
  int64_t j = (int64_t)(h & (uint64_t)(s->cap - 1));
  while (s->slots[j].off >= 0) {
    if (s->slots[j].hash == h && s->slots[j].len == n && memcmp(s->bytes.data + s->slots[j].off, w, (size_t)n) == 0)
      return 1;
    j = (j + 1) & (s->cap - 1);
  }
  return 0;
}

int tv_bpe_trainer_prepare(tv_bpe_trainer* t, int32_t first_merge_id) {
  if (!t) return TV_E_NULL;
  if (t->prepared) return TV_E_BPE_STATE;
  if (t->failed) return TV_E_BPE_NOMEM;
  if (first_merge_id < 256) return TV_E_SIZE;
  /* fold the per-thread tables into table 0 (sums do not depend on the order) */
  word_table* all = &t->tables[0];
  for (int i = 1; i < MAX_THREADS; i++) {
    word_table* o = &t->tables[i];
    for (int64_t j = 0; j < o->cap; j++) {
      word_slot* s = &o->slots[j];
      if (s->off < 0) continue;
      if (!wt_add(all, o->bytes.data + s->off, s->len, s->hash, s->count)) return (t->failed = 1, TV_E_BPE_NOMEM);
    }
    all->total += o->total;
    o->total = 0;
    wt_free(o);
  }
  /* words of one byte make no pairs: drop them; sort the rest by bytes for a canonical order */
  int64_t n = 0, nsym = 0;
  for (int64_t j = 0; j < all->cap; j++)
    if (all->slots[j].off >= 0 && all->slots[j].len >= 2) {
      all->slots[n++] = all->slots[j];
      nsym += all->slots[j].len;
    }
  g_sort_bytes = all->bytes.data;
  qsort(all->slots, (size_t)n, sizeof(word_slot), cmp_words);
  if (n >= UINT32_MAX) return TV_E_SIZE;
  t->sym = (int32_t*)malloc((size_t)(nsym ? nsym : 1) * sizeof(int32_t));
  t->word_off = (int64_t*)malloc((size_t)(n ? n : 1) * sizeof(int64_t));
  t->word_len = (int32_t*)malloc((size_t)(n ? n : 1) * sizeof(int32_t));
  t->word_count = (int64_t*)malloc((size_t)(n ? n : 1) * sizeof(int64_t));
  t->stamp = (int32_t*)malloc((size_t)(n ? n : 1) * sizeof(int32_t));
  if (!t->sym || !t->word_off || !t->word_len || !t->word_count || !t->stamp) return (t->failed = 1, TV_E_BPE_NOMEM);
  int64_t off = 0;
  for (int64_t w = 0; w < n; w++) {
    const word_slot* s = &all->slots[w];
    t->word_off[w] = off;
    t->word_len[w] = s->len;
    t->word_count[w] = s->count;
    t->stamp[w] = -1;
    for (int32_t i = 0; i < s->len; i++) t->sym[off + i] = all->bytes.data[s->off + i];
    off += s->len;
  }
  t->n_words = n;
  int64_t total = all->total;
  wt_free(all);
  all->total = total;
  t->merges_done = -1; /* marks pairs touched by the initial count (not a merge) */
  for (int64_t w = 0; w < n; w++) {
    const int32_t* s = t->sym + t->word_off[w];
    for (int32_t i = 0; i + 1 < t->word_len[w]; i++)
      if (!pair_add(t, s[i], s[i + 1], t->word_count[w], (uint32_t)w)) return (t->failed = 1, TV_E_BPE_NOMEM);
  }
  t->merges_done = 0;
  t->n_touched = 0;
  for (int64_t p = 0; p < t->n_pairs; p++)
    if (!heap_push(t, (int32_t)p)) return (t->failed = 1, TV_E_BPE_NOMEM);
  for (int b = 0; b < 256; b++) {
    uint8_t byte = (uint8_t)b;
    if (!tok_add(t, b, &byte, 1)) return (t->failed = 1, TV_E_BPE_NOMEM);
  }
  t->next_id = first_merge_id;
  t->prepared = 1;
  return TV_OK;
}

/* Replace every (a,b) in word w by z, left to right, keeping the pair counts exact. The left
 * neighbour is read from the rewritten sequence, so back-to-back merges ("a b a b") count right. */
static int merge_word(tv_bpe_trainer* t, uint32_t w, int32_t a, int32_t b, int32_t z) {
  int32_t* s = t->sym + t->word_off[w];
  int32_t n = t->word_len[w];
  int64_t c = t->word_count[w];
  int32_t out = 0, i = 0;
  while (i < n) {
    if (i + 1 < n && s[i] == a && s[i + 1] == b) {
      if (out > 0) {
        int32_t x = s[out - 1];
        if (!pair_add(t, x, a, -c, w) || !pair_add(t, x, z, c, w)) return 0;
      }
      if (i + 2 < n) {
        int32_t y = s[i + 2];
        if (!pair_add(t, b, y, -c, w) || !pair_add(t, z, y, c, w)) return 0;
      }
      if (!pair_add(t, a, b, -c, w)) return 0;
      s[out++] = z;
      i += 2;
    } else {
      s[out++] = s[i++];
    }
  }
  t->word_len[w] = out;
  return 1;
}

int32_t tv_bpe_trainer_merge(tv_bpe_trainer* t, int32_t* merges, int32_t max_merges, int64_t min_frequency) {
  if (!t) return TV_E_NULL;
  if (!t->prepared) return TV_E_BPE_STATE;
  if (t->failed) return TV_E_BPE_NOMEM;
  if (max_merges < 0) return TV_E_SIZE;
  if (max_merges > 0 && !merges) return TV_E_NULL;
  if (min_frequency < 1) min_frequency = 1;
  int32_t done = 0;
  uint8_t* buf = NULL;
  int64_t buf_cap = 0;
  while (done < max_merges && t->heap_len > 0) {
    heap_entry top = heap_pop(t);
    int32_t p = top.idx;
    if (t->banned[p]) continue;
    if (t->pcount[p] != top.count) { /* stale: counts only fall, so re-queue the current one */
      if (t->pcount[p] > 0 && !heap_push(t, p)) return (t->failed = 1, TV_E_BPE_NOMEM);
      continue;
    }
    if (top.count < min_frequency) { /* the best pair is too rare: training is over */
      if (!heap_push(t, p)) return (t->failed = 1, TV_E_BPE_NOMEM);
      break;
    }
    int32_t a = top.a, b = top.b;
    int64_t la = t->tok_len[a], lb = t->tok_len[b];
    if (!grow_array((void**)&buf, &buf_cap, la + lb, 1)) return (t->failed = 1, TV_E_BPE_NOMEM);
    memcpy(buf, t->tok_bytes.data + t->tok_off[a], (size_t)la);
    memcpy(buf + la, t->tok_bytes.data + t->tok_off[b], (size_t)lb);
    if (tok_exists(t, buf, la + lb)) { /* one token per byte string: this pair can never merge */
      t->banned[p] = 1;
      continue;
    }
    if (t->next_id == INT32_MAX) break;
    int32_t z = t->next_id++;
    if (!tok_add(t, z, buf, (int32_t)(la + lb))) return (free(buf), t->failed = 1, TV_E_BPE_NOMEM);
    t->merges_done++;
    t->n_touched = 0;
    /* the word list may hold stale or repeated words: the stamp visits each word once */
    word_list list = t->plist[p];
    t->plist[p] = (word_list){NULL, 0, 0};
    for (int32_t k = 0; k < list.n; k++) {
      uint32_t w = list.w[k];
      if (t->stamp[w] == t->merges_done) continue;
      t->stamp[w] = t->merges_done;
      if (!merge_word(t, w, a, b, z)) return (free(list.w), free(buf), t->failed = 1, TV_E_BPE_NOMEM);
    }
    free(list.w);
    t->pcount[p] = 0;
    for (int64_t k = 0; k < t->n_touched; k++)
      if (t->pcount[t->touched[k]] > 0 && !heap_push(t, t->touched[k])) return (free(buf), t->failed = 1, TV_E_BPE_NOMEM);
    merges[2 * done] = a;
    merges[2 * done + 1] = b;
    done++;
  }
  free(buf);
  return done;
}

void tv_bpe_trainer_free(tv_bpe_trainer* t) {
  if (!t) return;
  for (int i = 0; i < MAX_THREADS; i++) wt_free(&t->tables[i]);
  free(t->sym);
  free(t->word_off);
  free(t->word_len);
  free(t->word_count);
  free(t->stamp);
  for (int64_t p = 0; p < t->n_pairs; p++) free(t->plist[p].w);
  free(t->pa);
  free(t->pb);
  free(t->pcount);
  free(t->plist);
  free(t->banned);
  free(t->ptouched);
  free(t->pmap_key);
  free(t->pmap_val);
  free(t->heap);
  free(t->touched);
  free(t->tok_bytes.data);
  free(t->tok_off);
  free(t->tok_len);
  wt_free(&t->tok_set);
  free(t);
}

/* ---- encoder / decoder ---------------------------------------------------------------------- */

#define CACHE_KEY 22           /* pieces up to this many bytes go through the cache … */
#define CACHE_IDS 7            /* … when they encode to at most this many ids */
#define CACHE_SLOTS (1 << 17)  /* 64-byte slots: 8 MB per thread */
#define CACHE_WAYS 4           /* a piece lives in one of 4 neighbouring slots; a full set evicts one */
#define SHORT_WORD 48          /* up to this many bytes: quadratic merging on the stack */

/* One cache line: the piece's bytes inline (zero-padded) and its ids. */
typedef struct {
  uint32_t hash; /* 0 = empty */
  uint8_t key_len, n_ids;
  uint8_t key[CACHE_KEY];
  int32_t ids[CACHE_IDS];
  int32_t pad;
} cache_slot;

typedef struct {
  cache_slot* slots;
  int failed;
} word_cache;

struct tv_bpe_encoder {
  int32_t n_vocab;
  int32_t byte_id[256];
  int32_t *left, *right;
  uint64_t* mkey;
  int32_t* mval; /* (left,right) → child id; the child id is also the merge's rank */
  int64_t mcap;
  uint8_t* tok_bytes; /* padded by 16 bytes for wide copies */
  int64_t* tok_off;   /* [n_vocab + 1] */
  word_cache caches[MAX_THREADS];
};

static inline int32_t merge_of(const tv_bpe_encoder* e, int32_t a, int32_t b) {
  uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
  int64_t j = (int64_t)(mix64(key) & (uint64_t)(e->mcap - 1));
  for (;;) {
    int32_t v = e->mval[j];
    if (v < 0) return -1;
    if (e->mkey[j] == key) return v;
    j = (j + 1) & (e->mcap - 1);
  }
}

void tv_bpe_encoder_free(tv_bpe_encoder* e) {
  if (!e) return;
  free(e->left);
  free(e->right);
  free(e->mkey);
  free(e->mval);
  free(e->tok_bytes);
  free(e->tok_off);
  for (int i = 0; i < MAX_THREADS; i++) free(e->caches[i].slots);
  free(e);
}

tv_bpe_encoder* tv_bpe_encoder_new(const uint8_t* kinds, const int32_t* left, const int32_t* right,
                                   const uint8_t* bytes, const int64_t* offsets, int32_t n_vocab,
                                   int32_t* status) {
  int32_t dummy;
  if (!status) status = &dummy;
  *status = TV_E_NULL;
  if (!kinds || !left || !right || !bytes || !offsets) return NULL;
  *status = TV_E_SIZE;
  if (n_vocab < 256 || n_vocab > TV_BPE_MAX_VOCAB) return NULL;
  if (offsets[0] != 0) return NULL;
  for (int32_t i = 0; i < n_vocab; i++)
    if (offsets[i + 1] < offsets[i] || offsets[i + 1] - offsets[i] > TV_BPE_MAX_TOKEN_BYTES) return NULL;
  int64_t total = offsets[n_vocab];
  *status = TV_E_BPE_NOMEM;
  tv_bpe_encoder* e = (tv_bpe_encoder*)calloc(1, sizeof(tv_bpe_encoder));
  if (!e) return NULL;
  e->n_vocab = n_vocab;
  e->left = (int32_t*)malloc((size_t)n_vocab * sizeof(int32_t));
  e->right = (int32_t*)malloc((size_t)n_vocab * sizeof(int32_t));
  e->tok_bytes = (uint8_t*)malloc((size_t)total + 16);
  e->tok_off = (int64_t*)malloc(((size_t)n_vocab + 1) * sizeof(int64_t));
  int64_t mcap = 1024;
  while (mcap < 2 * (int64_t)n_vocab) mcap *= 2;
  e->mcap = mcap;
  e->mkey = (uint64_t*)malloc((size_t)mcap * sizeof(uint64_t));
  e->mval = (int32_t*)malloc((size_t)mcap * sizeof(int32_t));
  if (!e->left || !e->right || !e->tok_bytes || !e->tok_off || !e->mkey || !e->mval) {
    tv_bpe_encoder_free(e);
    return NULL;
  }
  memcpy(e->tok_bytes, bytes, (size_t)total);
  memset(e->tok_bytes + total, 0, 16);
  memcpy(e->tok_off, offsets, ((size_t)n_vocab + 1) * sizeof(int64_t));
  for (int64_t j = 0; j < mcap; j++) e->mval[j] = -1;
  for (int b = 0; b < 256; b++) e->byte_id[b] = -1;
  *status = TV_E_RANGE; /* a vocabulary that is not a valid byte-level BPE */
  for (int32_t i = 0; i < n_vocab; i++) {
    int64_t len = offsets[i + 1] - offsets[i];
    e->left[i] = e->right[i] = -1;
    if (kinds[i] == TV_BPE_KIND_BYTE) {
      if (len != 1 || e->byte_id[bytes[offsets[i]]] >= 0) goto bad;
      e->byte_id[bytes[offsets[i]]] = i;
    } else if (kinds[i] == TV_BPE_KIND_MERGE) {
      int32_t a = left[i], b = right[i];
      if (a < 0 || b < 0 || a >= i || b >= i || e->left[a] == -2 || e->left[b] == -2) goto bad;
      if (offsets[a + 1] - offsets[a] + offsets[b + 1] - offsets[b] != len) goto bad;
      if (merge_of(e, a, b) >= 0) goto bad;
      e->left[i] = a;
      e->right[i] = b;
      uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
      int64_t j = (int64_t)(mix64(key) & (uint64_t)(mcap - 1));
      while (e->mval[j] >= 0) j = (j + 1) & (mcap - 1);
      e->mkey[j] = key;
      e->mval[j] = i;
    } else if (kinds[i] == TV_BPE_KIND_SPECIAL) {
      e->left[i] = -2; /* never a merge parent */
    } else {
      goto bad;
    }
  }
  for (int b = 0; b < 256; b++)
    if (e->byte_id[b] < 0) goto bad;
  *status = TV_OK;
  return e;
bad:
  tv_bpe_encoder_free(e);
  return NULL;
}

/* BPE of one piece: merge the lowest-ranked pair (rank = child id), leftmost first, until none
 * applies. Short pieces: a quadratic scan on the stack. Long ones: a heap over a linked list. */
static int32_t bpe_short(const tv_bpe_encoder* e, const uint8_t* w, int32_t n, int32_t* out) {
  int32_t s[SHORT_WORD], r[SHORT_WORD]; /* r[i]: child of (s[i], s[i+1]) or INT32_MAX */
  for (int32_t i = 0; i < n; i++) s[i] = e->byte_id[w[i]];
  for (int32_t i = 0; i + 1 < n; i++) {
    int32_t m = merge_of(e, s[i], s[i + 1]);
    r[i] = m < 0 ? INT32_MAX : m;
  }
  while (n > 1) {
    int32_t best = INT32_MAX, at = -1;
    for (int32_t i = 0; i + 1 < n; i++)
      if (r[i] < best) {
        best = r[i];
        at = i;
      }
    if (at < 0) break;
    /* merge at `at`, then recompute the ranks of its two neighbours */
    s[at] = best;
    for (int32_t i = at + 1; i + 1 < n; i++) s[i] = s[i + 1];
    for (int32_t i = at + 1; i + 2 < n; i++) r[i] = r[i + 1];
    n--;
    if (at > 0) {
      int32_t m = merge_of(e, s[at - 1], s[at]);
      r[at - 1] = m < 0 ? INT32_MAX : m;
    }
    if (at + 1 < n) {
      int32_t m = merge_of(e, s[at], s[at + 1]);
      r[at] = m < 0 ? INT32_MAX : m;
    }
  }
  memcpy(out, s, (size_t)n * sizeof(int32_t));
  return n;
}

typedef struct {
  int32_t rank, pos;
} rank_pos;

static inline int rp_less(rank_pos x, rank_pos y) { return x.rank != y.rank ? x.rank < y.rank : x.pos < y.pos; }

static void rp_push(rank_pos* h, int64_t* n, rank_pos v) {
  int64_t i = (*n)++;
  while (i > 0 && rp_less(v, h[(i - 1) / 2])) {
    h[i] = h[(i - 1) / 2];
    i = (i - 1) / 2;
  }
  h[i] = v;
}

static rank_pos rp_pop(rank_pos* h, int64_t* n) {
  rank_pos top = h[0], last = h[--(*n)];
  int64_t i = 0;
  for (;;) {
    int64_t c = 2 * i + 1;
    if (c >= *n) break;
    if (c + 1 < *n && rp_less(h[c + 1], h[c])) c++;
    if (!rp_less(h[c], last)) break;
    h[i] = h[c];
    i = c;
  }
  if (*n > 0) h[i] = last;
  return top;
}

static int64_t bpe_long(const tv_bpe_encoder* e, const uint8_t* w, int64_t n, int32_t* out) {
  int32_t* s = (int32_t*)malloc((size_t)n * sizeof(int32_t));
  int64_t* next = (int64_t*)malloc((size_t)n * sizeof(int64_t));
  int64_t* prev = (int64_t*)malloc((size_t)n * sizeof(int64_t));
  rank_pos* h = (rank_pos*)malloc((size_t)(2 * n + 1) * sizeof(rank_pos)); /* ≤ n−1 initial + 2 per merge */
  int64_t hn = 0, result = TV_E_BPE_NOMEM;
  if (!s || !next || !prev || !h || n > INT32_MAX) goto done;
  for (int64_t i = 0; i < n; i++) {
    s[i] = e->byte_id[w[i]];
    next[i] = i + 1 < n ? i + 1 : -1;
    prev[i] = i - 1;
  }
  for (int64_t i = 0; i + 1 < n; i++) {
    int32_t m = merge_of(e, s[i], s[i + 1]);
    if (m >= 0) rp_push(h, &hn, (rank_pos){m, (int32_t)i});
  }
  while (hn > 0) {
    rank_pos top = rp_pop(h, &hn);
    int64_t i = top.pos, j = next[i];
    if (s[i] < 0 || j < 0 || e->left[top.rank] != s[i] || e->right[top.rank] != s[j]) continue; /* stale */
    s[i] = top.rank;
    s[j] = -1; /* dead */
    next[i] = next[j];
    if (next[j] >= 0) prev[next[j]] = i;
    if (hn + 2 > 2 * n + 1) goto done;
    if (prev[i] >= 0) {
      int32_t m = merge_of(e, s[prev[i]], s[i]);
      if (m >= 0) rp_push(h, &hn, (rank_pos){m, (int32_t)prev[i]});
    }
    if (next[i] >= 0) {
      int32_t m = merge_of(e, s[i], s[next[i]]);
      if (m >= 0) rp_push(h, &hn, (rank_pos){m, (int32_t)i});
    }
  }
  result = 0;
  for (int64_t i = 0; i >= 0; i = next[i]) out[result++] = s[i];
done:
  free(s);
  free(next);
  free(prev);
  free(h);
  return result;
}

static int64_t bpe_piece(const tv_bpe_encoder* e, const uint8_t* w, int64_t n, int32_t* out) {
  if (n == 1) {
    out[0] = e->byte_id[w[0]];
    return 1;
  }
  if (n <= SHORT_WORD) return bpe_short(e, w, (int32_t)n, out);
  return bpe_long(e, w, n, out);
}

/* Ids of a short piece through the per-thread cache; returns the count or a negative status. */
static inline uint64_t cache_hash(const uint8_t* w, int64_t n) {
  uint8_t key[CACHE_KEY] = {0};
  memcpy(key, w, (size_t)n);
  return hash_bytes(key, CACHE_KEY);
}

static int64_t encode_cached(const tv_bpe_encoder* e, word_cache* c, const uint8_t* w, int64_t n, uint64_t h64,
                             int32_t* out) {
  if (!c->slots) {
    if (c->failed || !(c->slots = (cache_slot*)calloc(CACHE_SLOTS, sizeof(cache_slot)))) {
      c->failed = 1;
      return bpe_piece(e, w, n, out);
    }
  }
  uint8_t key[CACHE_KEY] = {0};
  memcpy(key, w, (size_t)n);
  uint32_t h = (uint32_t)(h64 >> 32) | 1;
  cache_slot* set = c->slots + ((h64 & (CACHE_SLOTS - 1)) & ~(uint64_t)(CACHE_WAYS - 1));
  cache_slot* empty = NULL;
  for (int k = 0; k < CACHE_WAYS; k++) {
    cache_slot* s = &set[k];
    if (s->hash == h && s->key_len == n && memcmp(s->key, key, CACHE_KEY) == 0) { /* fixed size: inlined */
      for (int i = 0; i < s->n_ids; i++) out[i] = s->ids[i];
      return s->n_ids;
    }
    if (!s->hash && !empty) empty = s;
  }
  int64_t k = bpe_piece(e, w, n, out);
  if (k <= 0 || k > CACHE_IDS) return k;
  cache_slot* s = empty ? empty : &set[(h >> 8) & (CACHE_WAYS - 1)];
  s->hash = h;
  s->key_len = (uint8_t)n;
  s->n_ids = (uint8_t)k;
  memcpy(s->key, key, CACHE_KEY);
  for (int i = 0; i < k; i++) s->ids[i] = out[i];
  return k;
}

typedef struct {
  tv_bpe_encoder* e;
  const uint8_t* text;
  uint32_t* out;
  int64_t* cuts;
  int64_t* written; /* per part */
  int nparts;
  _Atomic int next_part;
  int status[MAX_THREADS];
} encode_job;

static void encode_body(void* arg, int tid, int nthreads) {
  encode_job* job = (encode_job*)arg;
  word_cache* cache = &job->e->caches[tid];
  for (int part; (part = atomic_fetch_add(&job->next_part, 1)) < job->nparts;) {
    int64_t begin = job->cuts[part], end = job->cuts[part + 1];
    const uint8_t* s = job->text + begin;
    int64_t len = end - begin;
    /* each id covers at least one byte, so a part's ids fit in out[begin, end) */
    int32_t* out = (int32_t*)(job->out + begin);
    int64_t o = 0;
    /* Pieces go in batches: find a batch's pieces and prefetch their cache sets, then encode them,
     * so the cache misses of a batch overlap instead of queueing. */
    enum { BATCH = 16 };
    int64_t starts[BATCH + 1];
    uint64_t hashes[BATCH];
    for (int64_t i = 0; i < len;) {
      int nb = 0;
      starts[0] = i;
      while (nb < BATCH && i < len) {
        int64_t p = piece_end(s, len, i);
        if (p - i <= CACHE_KEY) {
          hashes[nb] = cache_hash(s + i, p - i);
          if (cache->slots) __builtin_prefetch(cache->slots + ((hashes[nb] & (CACHE_SLOTS - 1)) & ~(uint64_t)(CACHE_WAYS - 1)));
        }
        starts[++nb] = p;
        i = p;
      }
      for (int b = 0; b < nb; b++) {
        int64_t a = starts[b], n = starts[b + 1] - a;
        int64_t k = n <= CACHE_KEY ? encode_cached(job->e, cache, s + a, n, hashes[b], out + o) : bpe_piece(job->e, s + a, n, out + o);
        if (k < 0) {
          job->status[tid] = (int)k;
          return;
        }
        o += k;
      }
    }
    job->written[part] = o;
  }
}

int64_t tv_bpe_encode(tv_bpe_encoder* e, uint32_t* out, int64_t cap, const uint8_t* text, int64_t len) {
  if (!e) return TV_E_NULL;
  if (!g_classes_set) return TV_E_BPE_CLASSES;
  if (len < 0 || cap < len) return TV_E_SIZE;
  if (len == 0) return 0;
  if (!text || !out) return TV_E_NULL;
  int threads = tv_pool_threads();
  if (threads > MAX_THREADS) threads = MAX_THREADS;
  int64_t cuts[PARTS_PER_THREAD * MAX_THREADS + 1], written[PARTS_PER_THREAD * MAX_THREADS];
  int parts = len < (1 << 16) ? 1 : PARTS_PER_THREAD * threads;
  encode_job job;
  memset(&job, 0, sizeof(job));
  job.e = e;
  job.text = text;
  job.out = out;
  job.cuts = cuts;
  job.written = written;
  job.nparts = split_text(text, len, parts, cuts);
  if (job.nparts == 1)
    encode_body(&job, 0, 1);
  else
    tv_parallel_run(encode_body, &job);
  for (int i = 0; i < MAX_THREADS; i++)
    if (job.status[i]) return job.status[i];
  int64_t o = 0; /* close the gaps between the parts */
  for (int part = 0; part < job.nparts; part++) {
    if (o != cuts[part]) memmove(out + o, out + cuts[part], (size_t)written[part] * sizeof(uint32_t));
    o += written[part];
  }
  return o;
}

int64_t tv_bpe_decode(const tv_bpe_encoder* e, uint8_t* out, int64_t cap, const uint32_t* ids, int64_t n) {
  if (!e) return TV_E_NULL;
  if (n < 0 || cap < 0) return TV_E_SIZE;
  if (n > 0 && !ids) return TV_E_NULL;
  const int64_t* off = e->tok_off;
  uint32_t nv = (uint32_t)e->n_vocab;
  if (!out) { /* measure only */
    int64_t total = 0;
    for (int64_t i = 0; i < n; i++) {
      uint32_t id = ids[i];
      if (id >= nv) return TV_E_RANGE;
      total += off[id + 1] - off[id];
    }
    return total;
  }
  int64_t o = 0;
  for (int64_t i = 0; i < n; i++) {
    uint32_t id = ids[i];
    if (id >= nv) return TV_E_RANGE;
    int64_t l = off[id + 1] - off[id];
    const uint8_t* src = e->tok_bytes + off[id];
    if (l <= 16 && cap - o >= 16) {
      memcpy(out + o, src, 16); /* tok_bytes is padded: a fixed-size copy is faster than memcpy(l) */
    } else {
      if (cap - o < l) return TV_E_SIZE;
      memcpy(out + o, src, (size_t)l);
    }
    o += l;
  }
  return o;
}
