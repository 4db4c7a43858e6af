/* The row chunks of the norms' backward (LayerNorm, RMSNorm): dweight (and dbias) are summed per
 * chunk into partial rows, then the partials in chunk order, so the bytes depend on M and C alone,
 * never on the thread count. One rule for both norms: M/16 rows, within [16, 128], more when the
 * partials would not fit (enough chunks for the threads, few partials to add up). */
#ifndef TV_NORM_CHUNKS_H
#define TV_NORM_CHUNKS_H
#include <stdint.h>

#define CHUNK_ROWS_MIN 16
#define CHUNK_ROWS_MAX 128

/* Rows per chunk for M rows when at most max_chunks (>= 1) partial rows fit. */
static inline int64_t norm_chunk_rows(int64_t M, int64_t max_chunks) {
  int64_t rows = (M + 15) / 16;
  rows = rows < CHUNK_ROWS_MIN ? CHUNK_ROWS_MIN : rows > CHUNK_ROWS_MAX ? CHUNK_ROWS_MAX : rows;
  if ((M + rows - 1) / rows > max_chunks) rows = (M + max_chunks - 1) / max_chunks;
  return rows;
}
#endif
