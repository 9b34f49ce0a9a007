/* Tensors: reference-counted handles over reference-counted storage. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "mtl/autograd.h"
#include "mtl/core.h"

size_t mtl_dtype_size(mtl_dtype d) { return d == MTL_I64 ? 8 : 4; }
const char *mtl_dtype_name(mtl_dtype d) { return d == MTL_I64 ? "int64" : "float32"; }

char *mtl_dims_str(int ndim, const int64_t *shape, char *buf, size_t n) {
  size_t k = 0;
  k += (size_t)snprintf(buf + k, n - k, "[");
  for (int i = 0; i < ndim && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, i ? ",%lld" : "%lld", (long long)shape[i]);
  if (k < n) snprintf(buf + k, n - k, "]");
  return buf;
}

char *mtl_shape_str(const mtl_tensor *t, char *buf, size_t n) {
  return mtl_dims_str(t->ndim, t->shape, buf, n);
}

int64_t mtl_shape_numel(const char *op, int ndim, const int64_t *shape) {
  if (ndim < 0 || ndim > MTL_MAX_DIMS)
    return mtl_error("%s: tensors have at most %d dimensions, got %d", op, MTL_MAX_DIMS, ndim);
  /* nz, the product of the non-zero sizes, bounds the strides too: a zero
   * size must not hide an overflowing stride (e.g. [0, 2^53, 2^53]) */
  int64_t n = 1, nz = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0)
      return mtl_error("%s: size of dimension %d must be >= 0, got %lld", op, i + 1,
                       (long long)shape[i]);
    if (shape[i] != 0 && nz > INT64_MAX / 16 / shape[i])
      return mtl_error("%s: out of memory: tensor of that shape is too large", op);
    if (shape[i] != 0) nz *= shape[i];
    n *= shape[i];
  }
  return n;
}

/* Tensor handles and storage headers come from free lists, so a training
 * step that creates and drops the same tensors each time calls no malloc.
 * A mutex keeps the lists safe for concurrent scoring threads. */
typedef union handle_slot {
  union handle_slot *next;
  mtl_tensor tensor;
  mtl_storage storage;
} handle_slot;

static handle_slot *free_handles;
static pthread_mutex_t handle_lock = PTHREAD_MUTEX_INITIALIZER;

static void *handle_alloc(void) {
#ifdef MTL_NO_POOLS /* sanitizer builds: every handle is its own allocation */
  void *p = malloc(sizeof(handle_slot));
  if (!p) mtl_error("out of memory");
  return p;
#endif
  pthread_mutex_lock(&handle_lock);
  handle_slot *h = free_handles;
  if (h) free_handles = h->next;
  pthread_mutex_unlock(&handle_lock);
  if (!h) h = malloc(sizeof *h);
  if (!h) mtl_error("out of memory");
  return h;
}

static void handle_free(void *p) {
#ifdef MTL_NO_POOLS
  free(p);
  return;
#endif
  handle_slot *h = p;
  pthread_mutex_lock(&handle_lock);
  h->next = free_handles;
  free_handles = h;
  pthread_mutex_unlock(&handle_lock);
}

static mtl_storage *storage_new(size_t nbytes) {
  mtl_storage *s = handle_alloc();
  if (!s) return NULL;
  s->data = mtl_alloc(nbytes);
  if (!s->data) { handle_free(s); return NULL; }
  s->nbytes = nbytes;
  s->refcount = 1;
  s->bf16 = NULL;
  s->fp32 = NULL;
  return s;
}

/* A write to s's data: its packed copies for mtl.linear are stale now. */
static void storage_written(mtl_storage *s) {
  if (s->bf16) { mtl_bf16_packing_free(s->bf16); s->bf16 = NULL; }
  if (s->fp32) { mtl_fp32_packing_free(s->fp32); s->fp32 = NULL; }
}

static void storage_release(mtl_storage *s) {
  if (s && --s->refcount == 0) {
    mtl_bf16_packing_free(s->bf16);
    mtl_fp32_packing_free(s->fp32);
    mtl_free(s->data, s->nbytes);
    handle_free(s);
  }
}

static void set_contiguous_strides(mtl_tensor *t) {
  int64_t st = 1;
  for (int i = t->ndim - 1; i >= 0; i--) {
    t->stride[i] = st;
    st *= t->shape[i] ? t->shape[i] : 1;
  }
}

static mtl_tensor *handle_new(mtl_dtype dtype, int ndim, const int64_t *shape) {
  int64_t n = mtl_shape_numel("mtl.tensor", ndim, shape);
  if (n < 0) return NULL;
  mtl_tensor *t = handle_alloc();
  if (!t) return NULL;
  memset(t, 0, sizeof *t);
  t->refcount = 1;
  t->dtype = dtype;
  t->ndim = ndim;
  for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
  t->numel = n;
  set_contiguous_strides(t);
  return t;
}

mtl_tensor *mtl_tensor_new(mtl_dtype dtype, int ndim, const int64_t *shape) {
  mtl_tensor *t = handle_new(dtype, ndim, shape);
  if (!t) return NULL;
  t->storage = storage_new((size_t)t->numel * mtl_dtype_size(dtype));
  if (!t->storage) { handle_free(t); return NULL; }
  return t;
}

mtl_tensor *mtl_tensor_new_named(const char *op, mtl_dtype dtype, int ndim, const int64_t *shape) {
  if (mtl_shape_numel(op, ndim, shape) < 0) return NULL;
  mtl_tensor *t = mtl_tensor_new(dtype, ndim, shape);
  if (!t) mtl_error_prefix(op); /* the allocation's message ("out of memory: ...") */
  return t;
}

mtl_tensor *mtl_tensor_zeros(mtl_dtype dtype, int ndim, const int64_t *shape) {
  mtl_tensor *t = mtl_tensor_new(dtype, ndim, shape);
  if (t) memset(t->storage->data, 0, (size_t)t->numel * mtl_dtype_size(dtype));
  return t;
}

mtl_tensor *mtl_tensor_empty_like(const mtl_tensor *t) {
  return mtl_tensor_new(t->dtype, t->ndim, t->shape);
}

mtl_tensor *mtl_tensor_zeros_like(const mtl_tensor *t) {
  return mtl_tensor_zeros(t->dtype, t->ndim, t->shape);
}

mtl_tensor *mtl_tensor_view(mtl_tensor *t, int ndim, const int64_t *shape,
                            const int64_t *stride, int64_t offset) {
  mtl_tensor *v = handle_new(t->dtype, ndim, shape);
  if (!v) return NULL;
  if (stride)
    for (int i = 0; i < ndim; i++) v->stride[i] = stride[i];
  v->offset = offset;
  v->storage = t->storage;
  t->storage->refcount++;
  return v;
}

mtl_tensor *mtl_tensor_alias(mtl_tensor *t) {
  return mtl_tensor_view(t, t->ndim, t->shape, t->stride, t->offset);
}

void mtl_tensor_retain(mtl_tensor *t) {
  if (t) t->refcount++;
}

void mtl_tensor_release(mtl_tensor *t) {
  if (!t || --t->refcount > 0) return;
  if (t->node) mtl_node_release(t->node);
  mtl_tensor_release(t->grad);
  storage_release(t->storage);
  handle_free(t);
}

void mtl_tensor_release_all(int n, mtl_tensor *const *ts) {
  for (int i = 0; i < n; i++) mtl_tensor_release(ts[i]);
}

bool mtl_tensor_is_contiguous(const mtl_tensor *t) {
  int64_t st = 1;
  for (int i = t->ndim - 1; i >= 0; i--) {
    if (t->shape[i] != 1 && t->stride[i] != st) return false;
    st *= t->shape[i];
  }
  return true;
}

/* The elements of dims d.. of t from element offset `at`, into the hash state. */
static void checksum_dims(XXH3_state_t *h, const mtl_tensor *t, int d, int64_t at) {
  size_t es = mtl_dtype_size(t->dtype);
  const char *base = (const char *)t->storage->data;
  if (d == t->ndim - 1 && t->stride[d] == 1) {
    XXH3_64bits_update(h, base + (size_t)at * es, (size_t)t->shape[d] * es);
  } else if (d == t->ndim) {
    XXH3_64bits_update(h, base + (size_t)at * es, es);
  } else {
    for (int64_t i = 0; i < t->shape[d]; i++) checksum_dims(h, t, d + 1, at + i * t->stride[d]);
  }
}

uint64_t mtl_tensor_checksum(const mtl_tensor *t) {
  XXH3_state_t h; /* on the stack: XXH_STATIC_LINKING_ONLY exposes its layout */
  XXH3_64bits_reset(&h);
  int64_t head[1 + MTL_MAX_DIMS] = {(int64_t)t->dtype};
  for (int i = 0; i < t->ndim; i++) head[1 + i] = t->shape[i];
  XXH3_64bits_update(&h, head, (size_t)(1 + t->ndim) * sizeof head[0]);
  size_t es = mtl_dtype_size(t->dtype);
  if (t->numel > 0 && mtl_tensor_is_contiguous(t))
    XXH3_64bits_update(&h, (const char *)t->storage->data + (size_t)t->offset * es, (size_t)t->numel * es);
  else if (t->numel > 0)
    checksum_dims(&h, t, 0, t->offset);
  return XXH3_64bits_digest(&h);
}

/* float -> int64 without undefined behaviour: truncates, saturates at the
 * int64 range, NaN becomes 0. */
static inline int64_t to_i64(double v) {
  if (v != v) return 0;
  if (v >= 9223372036854775807.0) return INT64_MAX;
  if (v <= -9223372036854775808.0) return INT64_MIN;
  return (int64_t)v;
}

/* Offset (elements) of the k-th element in row-major order. */
static inline int64_t offset_of(const mtl_tensor *t, int64_t k) {
  int64_t off = 0;
  for (int i = t->ndim - 1; i >= 0; i--) {
    int64_t n = t->shape[i];
    off += (k % n) * t->stride[i];
    k /= n;
  }
  return off;
}

int mtl_tensor_copy_into(mtl_tensor *dst, const mtl_tensor *src) {
  if (dst->numel != src->numel) {
    char a[128], b[128];
    return mtl_error("copy: sizes differ: %s and %s", mtl_shape_str(dst, a, sizeof a),
                     mtl_shape_str(src, b, sizeof b));
  }
  int64_t n = dst->numel;
  if (n == 0) return 0;
  storage_written(dst->storage);
  if (dst->dtype == src->dtype && mtl_tensor_is_contiguous(dst) && mtl_tensor_is_contiguous(src)) {
    size_t es = mtl_dtype_size(dst->dtype);
    memmove((char *)dst->storage->data + dst->offset * (int64_t)es,
            (char *)src->storage->data + src->offset * (int64_t)es, (size_t)n * es);
    return 0;
  }
  /* Same dtype and shape (making a strided view contiguous, the common case):
   * a row at a time, with the innermost dim as a tight loop or a memcpy. */
  bool same_shape = src->ndim == dst->ndim && src->dtype == dst->dtype && src->ndim > 0;
  for (int i = 0; same_shape && i < src->ndim; i++) same_shape = src->shape[i] == dst->shape[i];
  if (same_shape) {
    int nd = src->ndim;
    size_t es = mtl_dtype_size(src->dtype);
    int64_t inner = src->shape[nd - 1], ss = src->stride[nd - 1], ds = dst->stride[nd - 1];
    int64_t idx[MTL_MAX_DIMS] = {0}, os = src->offset, od = dst->offset;
    char *sb = src->storage->data, *db = dst->storage->data;
    for (int64_t row = 0; row < n / inner; row++) {
      if (ss == 1 && ds == 1) {
        memcpy(db + od * (int64_t)es, sb + os * (int64_t)es, (size_t)inner * es);
      } else if (es == 4) {
        const float *x = (const float *)sb + os;
        float *y = (float *)db + od;
        for (int64_t j = 0; j < inner; j++) y[j * ds] = x[j * ss];
      } else {
        const int64_t *x = (const int64_t *)sb + os;
        int64_t *y = (int64_t *)db + od;
        for (int64_t j = 0; j < inner; j++) y[j * ds] = x[j * ss];
      }
      for (int d = nd - 2; d >= 0; d--) {
        if (++idx[d] < src->shape[d]) { os += src->stride[d]; od += dst->stride[d]; break; }
        os -= (idx[d] - 1) * src->stride[d];
        od -= (idx[d] - 1) * dst->stride[d];
        idx[d] = 0;
      }
    }
    return 0;
  }
  /* general strided path with a running multi-index */
  int64_t idx_s[MTL_MAX_DIMS] = {0}, idx_d[MTL_MAX_DIMS] = {0};
  int64_t os = src->offset, od = dst->offset;
  for (int64_t k = 0; k < n; k++) {
    if (src->dtype == dst->dtype && src->dtype == MTL_I64) { /* exact, no trip through double */
      ((int64_t *)dst->storage->data)[od] = ((int64_t *)src->storage->data)[os];
    } else {
      double v = src->dtype == MTL_F32 ? ((float *)src->storage->data)[os]
                                       : (double)((int64_t *)src->storage->data)[os];
      if (dst->dtype == MTL_F32)
        ((float *)dst->storage->data)[od] = (float)v;
      else
        ((int64_t *)dst->storage->data)[od] = to_i64(v);
    }
    for (int i = src->ndim - 1; i >= 0; i--) {
      if (++idx_s[i] < src->shape[i]) { os += src->stride[i]; break; }
      os -= (idx_s[i] - 1) * src->stride[i];
      idx_s[i] = 0;
    }
    for (int i = dst->ndim - 1; i >= 0; i--) {
      if (++idx_d[i] < dst->shape[i]) { od += dst->stride[i]; break; }
      od -= (idx_d[i] - 1) * dst->stride[i];
      idx_d[i] = 0;
    }
  }
  return 0;
}

mtl_tensor *mtl_tensor_contiguous_data(mtl_tensor *t) {
  if (mtl_tensor_is_contiguous(t)) {
    mtl_tensor_retain(t);
    return t;
  }
  mtl_tensor *c = mtl_tensor_empty_like(t);
  if (!c) return NULL;
  mtl_tensor_copy_into(c, t);
  return c;
}

int mtl_tensor_fill(mtl_tensor *t, double v) {
  storage_written(t->storage);
  if (mtl_tensor_is_contiguous(t)) {
    if (t->dtype == MTL_F32) {
      float *p = mtl_f32(t), f = (float)v;
      for (int64_t i = 0; i < t->numel; i++) p[i] = f;
    } else {
      int64_t *p = mtl_i64(t), x = to_i64(v);
      for (int64_t i = 0; i < t->numel; i++) p[i] = x;
    }
    return 0;
  }
  for (int64_t k = 0; k < t->numel; k++) {
    int64_t o = t->offset + offset_of(t, k);
    if (t->dtype == MTL_F32)
      ((float *)t->storage->data)[o] = (float)v;
    else
      ((int64_t *)t->storage->data)[o] = to_i64(v);
  }
  return 0;
}

mtl_tensor *mtl_tensor_arange(double start, double stop, double step, mtl_dtype dtype) {
  if (step == 0 || !isfinite(step) || !isfinite(start) || !isfinite(stop))
    return (void)mtl_error("mtl.arange: step must be finite and nonzero, bounds finite (got start %g, stop %g, "
                           "step %g)", start, stop, step), NULL;
  double count = ceil((stop - start) / step);
  if (count < 0) count = 0;
  if (count > 4e18) return (void)mtl_error("mtl.arange: too many elements (%g)", count), NULL;
  int64_t n = (int64_t)count;
  mtl_tensor *t = mtl_tensor_new_named("mtl.arange", dtype, 1, &n);
  if (!t) return NULL;
  for (int64_t i = 0; i < n; i++) {
    double v = start + (double)i * step;
    if (dtype == MTL_F32) mtl_f32(t)[i] = (float)v;
    else mtl_i64(t)[i] = to_i64(v);
  }
  return t;
}

double mtl_tensor_get_at(const mtl_tensor *t, const int64_t *idx) {
  int64_t o = t->offset;
  for (int i = 0; i < t->ndim; i++) o += idx[i] * t->stride[i];
  return t->dtype == MTL_F32 ? ((float *)t->storage->data)[o]
                             : (double)((int64_t *)t->storage->data)[o];
}

void mtl_tensor_set_at(mtl_tensor *t, const int64_t *idx, double v) {
  storage_written(t->storage);
  int64_t o = t->offset;
  for (int i = 0; i < t->ndim; i++) o += idx[i] * t->stride[i];
  if (t->dtype == MTL_F32)
    ((float *)t->storage->data)[o] = (float)v;
  else
    ((int64_t *)t->storage->data)[o] = to_i64(v);
}
