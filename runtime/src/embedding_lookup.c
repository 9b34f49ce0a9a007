/* Embedding lookups (single ids and pooled bags) with their backward, which
 * adds into the table's sparse gradient; and that gradient's bookkeeping.
 * Rows in ops_embedding.def. See embedding.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "embedding_internal.h"
#include "mtl/autograd.h"
#include "mtl/embedding.h"

/* ---- the sparse gradient ------------------------------------------------------
 * Backward appends one entry (row, dim values) per looked-up id: a plain
 * sequential write. Before anything reads the gradient, coalescing sorts the
 * entries by id (a stable radix sort, so duplicates are summed in the order
 * backward produced them) and sums the rows of equal ids. */
void mtl_embedding_zero_grad(mtl_embedding *t) {
  t->g_nnz = 0;
  t->g_coalesced = true;
}

static int grad_grow(mtl_embedding *t) {
  int64_t cap = t->g_cap ? 2 * t->g_cap : 1024, dim = t->cfg.dim;
  if (cap > INT64_MAX / 16 / dim) return mtl_error("mtl.Embedding: gradient too large");
  int64_t *rows = realloc(t->g_rows, (size_t)cap * sizeof *rows);
  if (!rows) return mtl_error("mtl.Embedding: out of memory for a gradient of %lld entries", (long long)cap);
  t->g_rows = rows;
  float *vals = realloc(t->g_vals, (size_t)(cap * dim) * sizeof *vals);
  if (!vals) return mtl_error("mtl.Embedding: out of memory for a gradient of %lld entries", (long long)cap);
  t->g_vals = vals;
  free(t->g_tmp); /* scratch for coalescing, allocated on demand */
  t->g_tmp = NULL;
  free(t->g_scratch);
  t->g_scratch = NULL;
  t->g_cap = cap;
  return 0;
}

float *mtl_embedding_grad_append(mtl_embedding *t, int64_t row) {
  if (t->g_nnz == t->g_cap && grad_grow(t) < 0) return NULL;
  int64_t k = t->g_nnz++;
  /* still coalesced while ids arrive in strictly increasing order */
  if (k > 0 && mtl_embedding_row_id(t, row) <= mtl_embedding_row_id(t, t->g_rows[k - 1])) t->g_coalesced = false;
  t->g_rows[k] = row;
  return t->g_vals + k * t->cfg.dim;
}

int mtl_embedding_grad_coalesce(mtl_embedding *t) {
  int64_t n = t->g_nnz, dim = t->cfg.dim;
  if (t->g_coalesced || n <= 1) {
    t->g_coalesced = true;
    return 0;
  }
  /* scratch kept with the gradient, so a training step does not allocate */
  if (!t->g_tmp && !(t->g_tmp = malloc((size_t)(t->g_cap * dim) * sizeof(float))))
    return mtl_error("mtl.Embedding: out of memory coalescing the gradient");
  if (!t->g_scratch && !(t->g_scratch = malloc((size_t)(4 * t->g_cap) * sizeof(int64_t))))
    return mtl_error("mtl.Embedding: out of memory coalescing the gradient");
  int64_t *keys = t->g_scratch, *pos = keys + t->g_cap;
  for (int64_t k = 0; k < n; k++) {
    keys[k] = mtl_embedding_row_id(t, t->g_rows[k]);
    pos[k] = k;
  }
  mtl_sort_pairs_scratch(n, keys, pos, pos + t->g_cap, pos + 2 * t->g_cap);
  float *out = t->g_tmp;
  int64_t m = 0;
  for (int64_t k = 0; k < n; k++) {
    if (k + MTL_PREFETCH_GATHER < n) mtl_prefetch_floats(t->g_vals + pos[k + MTL_PREFETCH_GATHER] * dim, dim, 0);
    int64_t p = pos[k];
    const float *src = t->g_vals + p * dim;
    if (m > 0 && keys[k] == keys[k - 1]) {
      float *dst = out + (m - 1) * dim;
      for (int64_t j = 0; j < dim; j++) dst[j] += src[j];
    } else {
      memcpy(out + m * dim, src, (size_t)dim * sizeof *out);
      pos[m++] = t->g_rows[p]; /* pos[m] (m <= k) is no longer needed: reuse it for the rows */
    }
  }
  memcpy(t->g_rows, pos, (size_t)m * sizeof *pos);
  t->g_tmp = t->g_vals;
  t->g_vals = out;
  t->g_nnz = m;
  t->g_coalesced = true;
  return 0;
}

int mtl_embedding_grad_add(mtl_embedding *t, const mtl_tensor *ids, const mtl_tensor *values) {
  const char *fn = "mtl.Embedding.add_grad";
  int64_t n = ids->numel, dim = t->cfg.dim;
  char a[128];
  if (ids->dtype != MTL_I64) return mtl_error("%s: expected int64 ids, got %s", fn, mtl_dtype_name(ids->dtype));
  if (values->dtype != MTL_F32 || values->ndim != 2 || values->shape[0] != n || values->shape[1] != dim)
    return mtl_error("%s: expected float32 values [%lld,%lld] (one row per id), got %s %s", fn, (long long)n,
                     (long long)dim, mtl_dtype_name(values->dtype), mtl_shape_str(values, a, sizeof a));
  mtl_tensor *idc = mtl_tensor_contiguous_data((mtl_tensor *)ids);
  mtl_tensor *vc = mtl_tensor_contiguous_data((mtl_tensor *)values);
  int64_t *rows = malloc((size_t)(n ? n : 1) * sizeof *rows);
  int rc = idc && vc && rows ? 0 : mtl_error("%s: out of memory", fn);
  for (int64_t i = 0; rc == 0 && i < n; i++) { /* every key first: all or nothing */
    int64_t id = mtl_i64(idc)[i];
    if (t->cfg.kind == MTL_EMB_DYNAMIC) {
      mtl_id_entry *e = mtl_id_map_find(&t->map, id);
      rows[i] = e ? e->val : -1;
      if (!e) rc = mtl_error("%s: id %lld has no row in this dynamic table", fn, (long long)id);
    } else if (id < 0 || id >= t->cfg.num_rows) {
      rc = mtl_error("%s: %s %lld out of range for a %s table of %lld rows (valid: 0..%lld)", fn,
                     t->cfg.kind == MTL_EMB_HASHED ? "bucket" : "id", (long long)id,
                     mtl_embedding_kind_name(t->cfg.kind), (long long)t->cfg.num_rows, (long long)t->cfg.num_rows - 1);
    } else {
      rows[i] = id;
    }
  }
  for (int64_t i = 0; rc == 0 && i < n; i++) {
    float *dst = mtl_embedding_grad_append(t, rows[i]);
    if (!dst) rc = -1;
    else memcpy(dst, mtl_f32(vc) + i * dim, (size_t)dim * sizeof *dst);
  }
  free(rows);
  mtl_tensor_release(idc);
  mtl_tensor_release(vc);
  return rc;
}

void mtl_embedding_grad_drop_free_rows(mtl_embedding *t) {
  int64_t dim = t->cfg.dim, m = 0;
  for (int64_t k = 0; k < t->g_nnz; k++) {
    if (t->last_seen[t->g_rows[k]] < 0) continue;
    if (m != k) {
      t->g_rows[m] = t->g_rows[k];
      memmove(t->g_vals + m * dim, t->g_vals + k * dim, (size_t)dim * sizeof(float));
    }
    m++;
  }
  t->g_nnz = m;
}

/* ---- shared checks ------------------------------------------------------------ */
static int check_ids(const char *fn, const char *what, const mtl_tensor *ids) {
  if (ids->dtype != MTL_I64)
    return mtl_error("%s: expected int64 %s, got %s", fn, what, mtl_dtype_name(ids->dtype));
  return 0;
}

static int check_epoch(const mtl_embedding *t, const mtl_node *n) {
  if ((uint64_t)n->iarg[0] != t->layout_epoch)
    return mtl_error("backward of %s: the table's rows were evicted or reloaded after the lookup "
                     "(run backward before the optimizer step)", mtl_op_name(n->op));
  return 0;
}

/* The value of row r (or the default row / zeros when r < 0). */
static inline const float *row_values(const mtl_embedding *t, int64_t r) {
  return r >= 0 ? mtl_embedding_row(t, r) : t->default_row;
}

/* What a lookup prefetches of a row ahead of use: its weights, or, when the
 * lookup records a node for a big table an optimizer updates, the whole row
 * block (weights and optimizer state, with write intent), so that the update
 * after backward finds the block in the cache instead of missing on it again.
 * A table whose blocks fit in the last-level cache does not gain from it:
 * the update's own prefetching finds them there (measured: the forward
 * lookup of a 10^5-row Adam table took 2x as long, the update the same). */
typedef struct {
  int64_t n;
  int write;
} row_prefetch;

static row_prefetch lookup_prefetch(const mtl_embedding *t) {
  bool updating = mtl_grad_enabled() && t->requires_grad && t->slot_owner != NULL &&
                  t->row_stride > t->cfg.dim && mtl_embedding_is_big(t);
  return updating ? (row_prefetch){t->row_stride, 1} : (row_prefetch){t->cfg.dim, 0};
}

MTL_ALWAYS_INLINE void prefetch_row(const mtl_embedding *t, int64_t r, row_prefetch p) {
  if (r >= 0) mtl_prefetch_floats(mtl_embedding_row(t, r), p.n, p.write);
}

/* Copies the rows of ids [begin, end) into their places of the output; parts
 * of the range can run in parallel. */
typedef struct {
  const mtl_embedding *t;
  const int64_t *rows;
  float *out;
  row_prefetch pf;
} gather_job;

/* Ids (bags) per thread below which a lookup stays on one thread. */
static int64_t lookup_grain(const mtl_embedding *t, int64_t per_row) {
  return (mtl_embedding_is_big(t) ? MTL_EMB_PAR_ROWS_BIG : MTL_EMB_PAR_ROWS_SMALL) / per_row + 1;
}

static void gather_rows(void *ctx, int64_t begin, int64_t end) {
  const gather_job *j = ctx;
  const mtl_embedding *t = j->t;
  const int64_t *r = j->rows, dim = t->cfg.dim;
  for (int64_t i = begin; i < begin + MTL_PREFETCH_GATHER && i < end; i++) prefetch_row(t, r[i], j->pf);
  for (int64_t i = begin; i < end; i++) {
    if (i + MTL_PREFETCH_GATHER < end) prefetch_row(t, r[i + MTL_PREFETCH_GATHER], j->pf);
    const float *src = row_values(t, r[i]);
    float *o = j->out + i * dim;
    if (src) memcpy(o, src, (size_t)dim * sizeof *o);
    else memset(o, 0, (size_t)dim * sizeof *o);
  }
}

/* Records the node for a lookup: rows saved, the table held. */
static mtl_node *record(int op, mtl_embedding *t, mtl_tensor *out, int nin, mtl_tensor *const *in,
                        mtl_tensor *rows) {
  mtl_node *n = mtl_record(op, out, nin, in);
  if (!n) return NULL;
  mtl_node_save(n, 0, rows);
  mtl_embedding_retain(t);
  n->obj = t;
  n->obj_release = (void (*)(void *))mtl_embedding_release;
  n->iarg[0] = (int64_t)t->layout_epoch;
  return n;
}

/* ---- single ids: ids [...] -> [..., dim] ------------------------------------------ */
mtl_tensor *mtl_embedding_lookup(mtl_embedding *t, mtl_tensor *ids) {
  const char *fn = "mtl.Embedding.lookup";
  if (check_ids(fn, "ids", ids) < 0) return NULL;
  if (ids->ndim >= MTL_MAX_DIMS) {
    mtl_error("%s: ids have at most %d dimensions, got %d", fn, MTL_MAX_DIMS - 1, ids->ndim);
    return NULL;
  }
  int64_t n = ids->numel, dim = t->cfg.dim, shape[MTL_MAX_DIMS];
  memcpy(shape, ids->shape, (size_t)ids->ndim * sizeof *shape);
  shape[ids->ndim] = dim;
  mtl_tensor *idc = mtl_tensor_contiguous_data(ids);
  mtl_tensor *rows = mtl_tensor_new(MTL_I64, 1, &n);
  mtl_tensor *out = mtl_tensor_new(MTL_F32, ids->ndim + 1, shape);
  if (!idc || !rows || !out || mtl_embedding_resolve_named(t, fn, n, mtl_i64(idc), mtl_i64(rows)) < 0)
    goto fail;
  const int64_t *r = mtl_i64(rows);
  float *o = mtl_f32(out);
  gather_job j = {t, r, o, lookup_prefetch(t)};
  mtl_parallel_for(n, lookup_grain(t, 1), gather_rows, &j);
  if (mtl_grad_enabled() && t->requires_grad && !record(MTL_OP_EMBEDDING_LOOKUP, t, out, 0, NULL, rows))
    goto fail;
  mtl_tensor_release(idc);
  mtl_tensor_release(rows);
  return out;
fail:
  mtl_tensor_release(idc);
  mtl_tensor_release(rows);
  mtl_tensor_release(out);
  return NULL;
}

int mtl_embedding_lookup_backward(mtl_node *n, mtl_tensor *g) {
  mtl_embedding *t = n->obj;
  if (!t->requires_grad) return 0;
  if (check_epoch(t, n) < 0) return -1;
  mtl_tensor *gc = mtl_tensor_contiguous_data(g);
  if (!gc) return -1;
  const int64_t *r = mtl_i64(n->saved[0]), cnt = n->saved[0]->numel, dim = t->cfg.dim;
  const float *go = mtl_f32(gc);
  int rc = 0;
  for (int64_t i = 0; i < cnt; i++) {
    if (r[i] < 0) continue;
    float *dst = mtl_embedding_grad_append(t, r[i]);
    if (!dst) { rc = -1; break; }
    memcpy(dst, go + i * dim, (size_t)dim * sizeof *dst);
  }
  mtl_tensor_release(gc);
  return rc;
}

/* ---- bags: (ids [n], offsets [B]) -> [B, dim] ---------------------------------------- */
static const char *const combiner_names[] = {"sum", "mean", "sqrtn"};

/* The pooling denominator of ids [s, e): sum 1, mean sum(w), sqrtn sqrt(sum(w^2)). */
static double bag_denominator(mtl_combiner c, const float *w, int64_t s, int64_t e) {
  if (c == MTL_COMBINE_SUM) return 1.0;
  double d = 0;
  for (int64_t k = s; k < e; k++) {
    double x = w ? w[k] : 1.0;
    d += c == MTL_COMBINE_MEAN ? x : x * x;
  }
  return c == MTL_COMBINE_MEAN ? d : sqrt(d);
}

static inline int64_t bag_end(const int64_t *off, int64_t b, int64_t nb, int64_t n, int64_t base) {
  return b + 1 < nb ? off[b + 1] - base : n;
}

/* Pools bags [begin, end) into their output rows and records each id's
 * coefficient; parts of the range can run in parallel. */
typedef struct {
  const mtl_embedding *t;
  const int64_t *rows, *off;
  const float *w;
  float *coef, *out;
  int64_t nb, n, base;
  mtl_combiner combiner;
  row_prefetch pf;
} bag_job;

static void pool_bags(void *ctx, int64_t begin, int64_t end) {
  const bag_job *j = ctx;
  const mtl_embedding *t = j->t;
  const int64_t *r = j->rows, dim = t->cfg.dim;
  int64_t lo = j->off[begin] - j->base, hi = bag_end(j->off, end - 1, j->nb, j->n, j->base);
  for (int64_t k = lo; k < lo + MTL_PREFETCH_GATHER && k < hi; k++) prefetch_row(t, r[k], j->pf);
  for (int64_t b = begin; b < end; b++) {
    int64_t s = j->off[b] - j->base, e = bag_end(j->off, b, j->nb, j->n, j->base);
    double d = bag_denominator(j->combiner, j->w, s, e);
    float *ob = j->out + b * dim;
    for (int64_t k = s; k < e; k++) {
      if (k + MTL_PREFETCH_GATHER < hi) prefetch_row(t, r[k + MTL_PREFETCH_GATHER], j->pf);
      j->coef[k] = d != 0 ? (float)((j->w ? j->w[k] : 1.0) / d) : 0.0f;
      const float *src = row_values(t, r[k]);
      if (!src) continue;
      float ck = j->coef[k];
      for (int64_t i = 0; i < dim; i++) ob[i] += ck * src[i];
    }
  }
}

mtl_tensor *mtl_embedding_bag(mtl_embedding *t, mtl_tensor *ids, mtl_tensor *offsets, int64_t base,
                              mtl_tensor *weights, mtl_combiner combiner) {
  const char *fn = "mtl.Embedding.lookup_bag";
  char s1[64], s2[64];
  if (check_ids(fn, "ids", ids) < 0 || check_ids(fn, "offsets", offsets) < 0) return NULL;
  if (combiner < MTL_COMBINE_SUM || combiner > MTL_COMBINE_SQRTN) {
    mtl_error("%s: unknown combiner %d", fn, (int)combiner);
    return NULL;
  }
  if (ids->ndim != 1 || offsets->ndim != 1) {
    mtl_error("%s: expected 1-D ids and offsets, got %s and %s", fn, mtl_shape_str(ids, s1, sizeof s1),
              mtl_shape_str(offsets, s2, sizeof s2));
    return NULL;
  }
  int64_t n = ids->numel, nb = offsets->numel, dim = t->cfg.dim;
  if (weights && (weights->dtype != MTL_F32 || weights->ndim != 1 || weights->numel != n)) {
    mtl_error("%s: expected float32 weights with one value per id, [%lld], got %s %s", fn, (long long)n,
              mtl_dtype_name(weights->dtype), mtl_shape_str(weights, s1, sizeof s1));
    return NULL;
  }
  if (nb == 0 && n > 0) {
    mtl_error("%s: offsets is empty but there are %lld ids", fn, (long long)n);
    return NULL;
  }
  mtl_tensor *idc = mtl_tensor_contiguous_data(ids), *offc = mtl_tensor_contiguous_data(offsets);
  mtl_tensor *wc = weights ? mtl_tensor_contiguous_data(weights) : NULL;
  int64_t oshape[2] = {nb, dim};
  mtl_tensor *rows = mtl_tensor_new(MTL_I64, 1, &n), *coef = mtl_tensor_new(MTL_F32, 1, &n);
  mtl_tensor *out = mtl_tensor_zeros(MTL_F32, 2, oshape);
  if (!idc || !offc || (weights && !wc) || !rows || !coef || !out) goto fail;
  const int64_t *off = mtl_i64(offc);
  for (int64_t b = 0; b < nb; b++) {
    int64_t prev = b ? off[b - 1] : base;
    if (b == 0 && off[0] != base) {
      mtl_error("%s: offsets must start at %lld (the position of the first id), got %lld", fn, (long long)base,
                (long long)off[0]);
      goto fail;
    }
    if (off[b] < prev || off[b] - base > n) {
      mtl_error("%s: offsets must be nondecreasing positions in %lld..%lld, got offsets[%lld] = %lld after %lld",
                fn, (long long)base, (long long)(n + base), (long long)(b + base), (long long)off[b],
                (long long)prev);
      goto fail;
    }
  }
  if (mtl_embedding_resolve_named(t, fn, n, mtl_i64(idc), mtl_i64(rows)) < 0) goto fail;
  const int64_t *r = mtl_i64(rows);
  const float *w = wc ? mtl_f32(wc) : NULL;
  float *c = mtl_f32(coef), *o = mtl_f32(out);
  bag_job j = {t, r, off, w, c, o, nb, n, base, combiner, lookup_prefetch(t)};
  mtl_parallel_for(nb, lookup_grain(t, nb ? n / nb + 1 : 1), pool_bags, &j);
  bool wants_w = weights && weights->requires_grad;
  if (mtl_grad_enabled() && (t->requires_grad || wants_w)) {
    mtl_node *node = record(MTL_OP_EMBEDDING_BAG, t, out, 1, &weights, rows);
    if (!node) goto fail;
    mtl_node_save(node, 1, offc);
    mtl_node_save(node, 2, coef);
    if (wants_w) {
      mtl_tensor *y = mtl_tensor_alias(out); /* output values, no graph link */
      if (!y) goto fail;
      mtl_node_save(node, 3, y);
      mtl_tensor_release(y);
    }
    node->iarg[1] = base;
    node->iarg[2] = combiner;
  }
  mtl_tensor_release(idc);
  mtl_tensor_release(offc);
  mtl_tensor_release(wc);
  mtl_tensor_release(rows);
  mtl_tensor_release(coef);
  return out;
fail:
  mtl_tensor_release(idc);
  mtl_tensor_release(offc);
  mtl_tensor_release(wc);
  mtl_tensor_release(rows);
  mtl_tensor_release(coef);
  mtl_tensor_release(out);
  return NULL;
}

/* d out_b / d w_k, with D the bag's denominator and y_b the output:
 *   sum:   <g_b, e_k>
 *   mean:  (<g_b, e_k> - <g_b, y_b>) / D
 *   sqrtn: (<g_b, e_k> - <g_b, y_b> w_k / D) / D */
static int bag_weight_grad(mtl_node *n, mtl_embedding *t, const float *go) {
  mtl_tensor *wc = mtl_tensor_contiguous_data(n->in[0]);
  if (!wc) return -1;
  mtl_tensor *gw = mtl_tensor_new(MTL_F32, 1, &wc->numel);
  if (!gw) { mtl_tensor_release(wc); return -1; }
  const int64_t *r = mtl_i64(n->saved[0]), *off = mtl_i64(n->saved[1]);
  int64_t base = n->iarg[1], nb = n->saved[1]->numel, cnt = wc->numel, dim = t->cfg.dim;
  mtl_combiner comb = (mtl_combiner)n->iarg[2];
  const float *w = mtl_f32(wc), *y = mtl_f32(n->saved[3]);
  float *gwp = mtl_f32(gw);
  for (int64_t b = 0; b < nb; b++) {
    int64_t s = off[b] - base, e = bag_end(off, b, nb, cnt, base);
    double d = bag_denominator(comb, w, s, e), gy = 0;
    const float *gb = go + b * dim, *yb = y + b * dim;
    for (int64_t j = 0; j < dim; j++) gy += (double)gb[j] * yb[j];
    for (int64_t k = s; k < e; k++) {
      const float *ek = row_values(t, r[k]);
      double ge = 0;
      if (ek)
        for (int64_t j = 0; j < dim; j++) ge += (double)gb[j] * ek[j];
      double v;
      if (d == 0) v = 0;
      else if (comb == MTL_COMBINE_SUM) v = ge;
      else if (comb == MTL_COMBINE_MEAN) v = (ge - gy) / d;
      else v = (ge - gy * w[k] / d) / d;
      gwp[k] = (float)v;
    }
  }
  mtl_tensor_release(wc);
  return mtl_node_accumulate(n, 0, gw);
}

int mtl_embedding_bag_backward(mtl_node *n, mtl_tensor *g) {
  mtl_embedding *t = n->obj;
  if (check_epoch(t, n) < 0) return -1;
  mtl_tensor *gc = mtl_tensor_contiguous_data(g);
  if (!gc) return -1;
  const float *go = mtl_f32(gc);
  int rc = 0;
  if (t->requires_grad) {
    const int64_t *r = mtl_i64(n->saved[0]), *off = mtl_i64(n->saved[1]);
    const float *c = mtl_f32(n->saved[2]);
    int64_t base = n->iarg[1], nb = n->saved[1]->numel, cnt = n->saved[0]->numel, dim = t->cfg.dim;
    for (int64_t b = 0; b < nb && rc == 0; b++) {
      const float *gb = go + b * dim;
      for (int64_t k = off[b] - base, e = bag_end(off, b, nb, cnt, base); k < e; k++) {
        if (r[k] < 0) continue;
        float *dst = mtl_embedding_grad_append(t, r[k]);
        if (!dst) { rc = -1; break; }
        float ck = c[k];
        for (int64_t j = 0; j < dim; j++) dst[j] = ck * gb[j];
      }
    }
  }
  if (rc == 0 && mtl_node_wants(n, 0)) rc = bag_weight_grad(n, t, go);
  mtl_tensor_release(gc);
  return rc;
}

const char *mtl_combiner_name(mtl_combiner c) {
  return c >= MTL_COMBINE_SUM && c <= MTL_COMBINE_SQRTN ? combiner_names[c] : "?";
}
