/* Feature transforms that run per batch in C (lua/mtl/features.lua uses them):
 * bucketizing numbers, crossing id columns, looking keys up in kv bags. */
#ifndef MTL_FEATURES_H
#define MTL_FEATURES_H

#include "mtl/core.h"

/* ids[i] = number of boundaries <= x[i] (0 .. nb), so bucket k holds
 * boundaries[k-1] <= x < boundaries[k]. boundaries ascending. NaN -> 0. */
mtl_tensor *mtl_bucketize(mtl_tensor *x, const double *boundaries, int nb);

/* A hashed cross of n int64 columns of equal length: XXH3-64 of the ids of
 * each row (order matters), as int64 bit patterns. */
mtl_tensor *mtl_hash_cross(int n, mtl_tensor *const *cols);

/* For each row i: the value of key[i] among the row's (keys, values) pairs
 * ids[offsets[i] .. offsets[i+1]-1] (0-based offsets), or missing when absent. */
mtl_tensor *mtl_kv_lookup(mtl_tensor *key, mtl_tensor *ids, mtl_tensor *offsets, mtl_tensor *values,
                          double missing);

/* Vocabulary lookup: keys sorted ascending (int64, distinct); for each id
 * the 1-based position of its key, or 0 (the out-of-vocabulary row). */
mtl_tensor *mtl_vocab_index(mtl_tensor *ids, mtl_tensor *keys);

/* The distinct values of an int64 vector, sorted ascending (vocabulary keys). */
mtl_tensor *mtl_sort_unique(mtl_tensor *ids);

/* Padding a batch of sequences: offsets [n + 1] give row i's steps
 * offsets[i] .. offsets[i+1]-1 (0-based, S steps in all). Each row becomes L
 * positions: its first L steps, then padding. L = len when len > 0, else the
 * longest row (at least 1), at most max_len when max_len > 0. *index (int64
 * [n * L]) holds 1-based step numbers, S + 1 at padding (a row appended to
 * the S step vectors); *mask (float [n, L]) is 1 at steps and 0 at padding.
 * Returns 0, or -1 with the error set. */
int mtl_seq_pad(mtl_tensor *offsets, int64_t len, int64_t max_len, mtl_tensor **index, mtl_tensor **mask);

#endif
