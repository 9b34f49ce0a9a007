/* Per-batch feature transforms: bucketize, hashed crosses, kv lookups,
 * vocabularies, padding sequences. */
#include "mtl/features.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

static int check_vec(const char *fn, const mtl_tensor *t, mtl_dtype dt, const char *what) {
  char s[64];
  if (t->dtype != dt)
    return mtl_error("%s: %s must be %s, got %s", fn, what, mtl_dtype_name(dt), mtl_dtype_name(t->dtype));
  if (t->ndim != 1 || !mtl_tensor_is_contiguous(t))
    return mtl_error("%s: %s must be a contiguous vector, got %s", fn, what, mtl_shape_str(t, s, sizeof s));
  return 0;
}

mtl_tensor *mtl_bucketize(mtl_tensor *x, const double *b, int nb) {
  if (check_vec("mtl.bucketize", x, MTL_F32, "the values") < 0) return NULL;
  for (int k = 1; k < nb; k++)
    if (!(b[k - 1] < b[k]))
      return (void)mtl_error("mtl.bucketize: boundaries must be strictly ascending (entry %d: %g after %g)", k + 1,
                             b[k], b[k - 1]), NULL;
  mtl_tensor *out = mtl_tensor_new(MTL_I64, 1, x->shape);
  if (!out) return NULL;
  const float *px = mtl_f32(x);
  int64_t *po = mtl_i64(out);
  for (int64_t i = 0; i < x->numel; i++) {
    double v = px[i];
    int lo = 0, hi = nb; /* first boundary > v */
    if (v != v) { po[i] = 0; continue; }
    while (lo < hi) {
      int mid = (lo + hi) / 2;
      if (b[mid] <= v) lo = mid + 1; else hi = mid;
    }
    po[i] = lo;
  }
  return out;
}

mtl_tensor *mtl_hash_cross(int n, mtl_tensor *const *cols) {
  if (n < 1 || n > 16) return (void)mtl_error("mtl.hash_cross: expected 1 to 16 columns, got %d", n), NULL;
  for (int c = 0; c < n; c++) {
    if (check_vec("mtl.hash_cross", cols[c], MTL_I64, "every column") < 0) return NULL;
    if (cols[c]->numel != cols[0]->numel)
      return (void)mtl_error("mtl.hash_cross: columns differ in length: %lld and %lld", (long long)cols[0]->numel,
                             (long long)cols[c]->numel), NULL;
  }
  mtl_tensor *out = mtl_tensor_new(MTL_I64, 1, cols[0]->shape);
  if (!out) return NULL;
  int64_t *po = mtl_i64(out);
  for (int64_t i = 0; i < out->numel; i++) {
    int64_t key[16];
    for (int c = 0; c < n; c++) key[c] = mtl_i64(cols[c])[i];
    po[i] = (int64_t)XXH3_64bits(key, (size_t)n * sizeof(int64_t));
  }
  return out;
}

mtl_tensor *mtl_kv_lookup(mtl_tensor *key, mtl_tensor *ids, mtl_tensor *offsets, mtl_tensor *values, double missing) {
  const char *fn = "mtl.kv_lookup";
  if (check_vec(fn, key, MTL_I64, "the key") < 0 || check_vec(fn, ids, MTL_I64, "the ids") < 0 ||
      check_vec(fn, offsets, MTL_I64, "the offsets") < 0 || check_vec(fn, values, MTL_F32, "the values") < 0)
    return NULL;
  int64_t n = key->numel;
  if (offsets->numel != n + 1 || values->numel != ids->numel)
    return (void)mtl_error("%s: expected offsets of %lld entries and one value per id", fn, (long long)n + 1), NULL;
  const int64_t *off = mtl_i64(offsets);
  if (off[0] != 0 || off[n] != ids->numel) return (void)mtl_error("%s: offsets must run from 0 to %lld", fn, (long long)ids->numel), NULL;
  for (int64_t i = 0; i < n; i++)
    if (off[i] > off[i + 1]) return (void)mtl_error("%s: offsets must not decrease (row %lld)", fn, (long long)i + 1), NULL;
  mtl_tensor *out = mtl_tensor_new(MTL_F32, 1, key->shape);
  if (!out) return NULL;
  const int64_t *pk = mtl_i64(key), *pi = mtl_i64(ids);
  const float *pv = mtl_f32(values);
  float *po = mtl_f32(out);
  for (int64_t i = 0; i < n; i++) {
    float v = (float)missing;
    for (int64_t j = off[i]; j < off[i + 1]; j++)
      if (pi[j] == pk[i]) { v = pv[j]; break; }
    po[i] = v;
  }
  return out;
}

mtl_tensor *mtl_vocab_index(mtl_tensor *ids, mtl_tensor *keys) {
  const char *fn = "mtl.vocab_index";
  if (check_vec(fn, ids, MTL_I64, "the ids") < 0 || check_vec(fn, keys, MTL_I64, "the vocabulary keys") < 0)
    return NULL;
  const int64_t *k = mtl_i64(keys);
  int64_t nk = keys->numel;
  for (int64_t j = 1; j < nk; j++)
    if (!(k[j - 1] < k[j]))
      return (void)mtl_error("%s: vocabulary keys must be sorted and distinct (entry %lld)", fn, (long long)j + 1), NULL;
  mtl_tensor *out = mtl_tensor_new(MTL_I64, 1, ids->shape);
  if (!out) return NULL;
  const int64_t *pi = mtl_i64(ids);
  int64_t *po = mtl_i64(out);
  for (int64_t i = 0; i < ids->numel; i++) {
    int64_t lo = 0, hi = nk, v = pi[i];
    while (lo < hi) {
      int64_t mid = lo + (hi - lo) / 2;
      if (k[mid] < v) lo = mid + 1; else hi = mid;
    }
    po[i] = (lo < nk && k[lo] == v) ? lo + 1 : 0;
  }
  return out;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

mtl_tensor *mtl_sort_unique(mtl_tensor *ids) {
  if (check_vec("mtl.sort_unique", ids, MTL_I64, "the ids") < 0) return NULL;
  mtl_tensor *tmp = mtl_tensor_new(MTL_I64, 1, ids->shape);
  if (!tmp) return NULL;
  int64_t *p = mtl_i64(tmp), n = ids->numel, m = 0;
  memcpy(p, mtl_i64(ids), (size_t)n * sizeof *p);
  qsort(p, (size_t)n, sizeof *p, cmp_i64);
  for (int64_t i = 0; i < n; i++)
    if (m == 0 || p[i] != p[m - 1]) p[m++] = p[i];
  mtl_tensor *out = mtl_tensor_new(MTL_I64, 1, &m);
  if (out) memcpy(mtl_i64(out), p, (size_t)m * sizeof *p);
  mtl_tensor_release(tmp);
  return out;
}

int mtl_seq_pad(mtl_tensor *offsets, int64_t len, int64_t max_len, mtl_tensor **index, mtl_tensor **mask) {
  const char *fn = "mtl.seq_pad";
  *index = *mask = NULL;
  if (check_vec(fn, offsets, MTL_I64, "the offsets") < 0) return -1;
  int64_t n = offsets->numel - 1;
  const int64_t *off = mtl_i64(offsets);
  if (n < 0 || off[0] != 0) return mtl_error("%s: offsets must start at 0 (n + 1 entries)", fn);
  int64_t longest = 1;
  for (int64_t i = 0; i < n; i++) {
    if (off[i] > off[i + 1]) return mtl_error("%s: offsets must not decrease (row %lld)", fn, (long long)i + 1);
    if (off[i + 1] - off[i] > longest) longest = off[i + 1] - off[i];
  }
  if (len <= 0) len = max_len > 0 && longest > max_len ? max_len : longest;
  int64_t si[1] = {n * len}, sm[2] = {n, len};
  *index = mtl_tensor_new(MTL_I64, 1, si);
  *mask = *index ? mtl_tensor_new(MTL_F32, 2, sm) : NULL;
  if (!*mask) {
    mtl_tensor_release(*index);
    *index = NULL;
    return -1;
  }
  int64_t *pi = mtl_i64(*index), pad = off[n] + 1;
  float *pm = mtl_f32(*mask);
  for (int64_t i = 0; i < n; i++)
    for (int64_t t = 0; t < len; t++) {
      bool step = off[i] + t < off[i + 1];
      pi[i * len + t] = step ? off[i] + t + 1 : pad;
      pm[i * len + t] = step ? 1.0f : 0.0f;
    }
  return 0;
}
