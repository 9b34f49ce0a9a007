/* Shape and indexing ops: views (reshape, transpose, permute, narrow, expand,
 * squeeze, unsqueeze), contiguous, concat/stack/split, index_select, gather.
 *
 * Views share their input's storage (mtl_tensor_view) and still get their own
 * autograd node, whose backward maps the gradient back onto the input's
 * shape. The copying ops (contiguous, concat, stack, index_select) view
 * contiguous data as [outer, n, inner] blocks and move whole rows; gather
 * reads through the input's strides. Each backward sits right after its
 * forward; rows in ops_shape.def.
 *
 * Positions are 0-based here; error messages print dims and positions
 * 1-based, as the Lua user sees them. */
#include <stdlib.h>
#include <string.h>

#include "mtl/autograd.h"
#include "mtl/ops.h"

/* ---- helpers -------------------------------------------------------------- */
static int check_dim(const char *op, const mtl_tensor *a, int dim) {
  if (dim < 0 || dim >= a->ndim)
    return mtl_error("%s: dimension %d out of range (tensor has %d dimensions)", op, dim + 1, a->ndim);
  return 0;
}

/* A 0-based position printed 1-based (without overflowing at INT64_MAX). */
static long long pos1(int64_t i) { return i == INT64_MAX ? (long long)i : (long long)i + 1; }

/* Records a one-input node for a view/copy op; on failure releases out. */
static mtl_node *record1(int op, mtl_tensor **out, mtl_tensor *a) {
  if (!mtl_needs_grad(1, &a)) return NULL;
  mtl_node *n = mtl_record(op, *out, 1, &a);
  if (!n) {
    mtl_tensor_release(*out);
    *out = NULL;
  }
  return n;
}

/* Records a one-input node for an op that reads a at positions ixc along dim
 * (saved for the backward), then drops the caller's reference to ixc.
 * Returns out, or NULL when recording failed. */
static mtl_tensor *record_positions(int op, mtl_tensor *out, mtl_tensor *a, int dim, mtl_tensor *ixc) {
  mtl_node *n = record1(op, &out, a);
  if (n) {
    n->iarg[0] = dim;
    mtl_node_save(n, 0, ixc);
  }
  mtl_tensor_release(ixc);
  return out;
}

/* Products of the sizes before and after dim. */
static int64_t outer_of(const mtl_tensor *a, int dim) {
  int64_t o = 1;
  for (int i = 0; i < dim; i++) o *= a->shape[i];
  return o;
}
static int64_t inner_of(const mtl_tensor *a, int dim) {
  int64_t o = 1;
  for (int i = dim + 1; i < a->ndim; i++) o *= a->shape[i];
  return o;
}

/* Copies `outer` blocks of `blk` elements (size es bytes): block o goes from
 * src + o*src_row to dst + o*dst_row (rows and blocks in elements). */
static void copy_blocks(void *dst, int64_t dst_row, const void *src, int64_t src_row, int64_t outer,
                        int64_t blk, size_t es) {
  if (blk == 0) return;
  char *d = dst;
  const char *s = src;
  for (int64_t o = 0; o < outer; o++)
    memcpy(d + (size_t)(o * dst_row) * es, s + (size_t)(o * src_row) * es, (size_t)blk * es);
}

/* The gradient of a view: g reshaped back to input 0's shape. */
static int reshape_back(mtl_node *n, mtl_tensor *g) {
  if (!mtl_node_wants(n, 0)) return 0;
  const mtl_tensor *x = n->in[0];
  return mtl_node_accumulate(n, 0, mtl_reshape(g, x->ndim, x->shape));
}

/* ---- reshape ---------------------------------------------------------------
 * A reshape is a view when every run of input dims that the new shape merges
 * or splits is laid out contiguously in memory. The input's dims (size-1 dims
 * dropped) fall into "chunks" of dims whose strides chain
 * (stride[i] == stride[i+1] * shape[i+1]); each chunk is one evenly strided
 * block, so the new dims must group into the same chunks, product by product,
 * and inside a chunk they get strides counted from the chunk's last stride. */
static bool view_strides(const mtl_tensor *a, int nd, const int64_t *shape, int64_t *stride) {
  if (a->numel == 0) { /* no data to address: any strides do */
    int64_t st = 1;
    for (int i = nd - 1; i >= 0; i--) {
      stride[i] = st;
      st *= shape[i] ? shape[i] : 1;
    }
    return true;
  }
  int od = 0;
  int64_t os[MTL_MAX_DIMS], ot[MTL_MAX_DIMS]; /* input dims without the 1s */
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != 1) {
      os[od] = a->shape[i];
      ot[od++] = a->stride[i];
    }
  int j = nd - 1; /* next new dim to assign, from the back */
  int i = od - 1;
  while (i >= 0) {
    /* the chunk ending at input dim i */
    int64_t base = ot[i], size = os[i];
    int k = i;
    while (k > 0 && ot[k - 1] == ot[k] * os[k]) size *= os[--k];
    i = k - 1;
    int64_t got = 1;
    while (j >= 0 && (got < size || shape[j] == 1)) {
      stride[j] = base * got;
      got *= shape[j--];
    }
    if (got != size) return false;
  }
  for (; j >= 0; j--) stride[j] = 1; /* leading 1s left over */
  return true;
}

mtl_tensor *mtl_reshape(mtl_tensor *a, int ndim, const int64_t *shape_in) {
  const char *op = "mtl.reshape";
  if (ndim < 0 || ndim > MTL_MAX_DIMS)
    return (void)mtl_error("%s: tensors have at most %d dimensions, got %d", op, MTL_MAX_DIMS, ndim), NULL;
  int64_t shape[MTL_MAX_DIMS] = {0};
  int infer = -1;
  for (int i = 0; i < ndim; i++) {
    shape[i] = shape_in[i];
    if (shape[i] == -1) {
      if (infer >= 0)
        return (void)mtl_error("%s: only one size can be -1 (inferred), got -1 at %d and %d", op, infer + 1, i + 1), NULL;
      infer = i;
      shape[i] = 1;
    }
  }
  char sa[128], sb[128];
  /* the product of the given sizes (an overflowing one cannot match) */
  int64_t known = 1;
  bool too_many = false, has_zero = false;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0)
      return (void)mtl_error("%s: size %d must be >= 0 (or -1 to infer it), got %lld", op, i + 1, (long long)shape[i]),
             NULL;
    if (shape[i] == 0) has_zero = true;
    else if (known > INT64_MAX / shape[i]) too_many = true;
    else known *= shape[i];
  }
  if (has_zero) known = 0;
  if (too_many && !has_zero) {
    if (infer >= 0) shape[infer] = -1;
    return (void)mtl_error("%s: cannot reshape %s (%lld elements) into %s", op, mtl_shape_str(a, sa, sizeof sa),
                           (long long)a->numel, mtl_dims_str(ndim, shape, sb, sizeof sb)),
           NULL;
  }
  if (infer >= 0) {
    shape[infer] = -1; /* for the messages */
    if (known == 0 || a->numel % known != 0)
      return (void)mtl_error("%s: cannot reshape %s (%lld elements) into %s", op, mtl_shape_str(a, sa, sizeof sa),
                             (long long)a->numel, mtl_dims_str(ndim, shape, sb, sizeof sb)),
             NULL;
    shape[infer] = a->numel / known;
  } else if (known != a->numel) {
    return (void)mtl_error("%s: cannot reshape %s (%lld elements) into %s (%lld elements)", op,
                           mtl_shape_str(a, sa, sizeof sa), (long long)a->numel,
                           mtl_dims_str(ndim, shape, sb, sizeof sb), (long long)known),
           NULL;
  }
  if (mtl_shape_numel(op, ndim, shape) < 0) return NULL; /* e.g. [2^53,2^53,0]: strides would overflow */
  int64_t stride[MTL_MAX_DIMS];
  mtl_tensor *out;
  if (view_strides(a, ndim, shape, stride)) {
    out = mtl_tensor_view(a, ndim, shape, stride, a->offset);
  } else {
    out = mtl_tensor_new(a->dtype, ndim, shape);
    if (out) mtl_tensor_copy_into(out, a);
  }
  if (!out) return NULL;
  record1(MTL_OP_RESHAPE, &out, a);
  return out;
}

int mtl_reshape_backward(mtl_node *n, mtl_tensor *g) { return reshape_back(n, g); }

/* ---- squeeze / unsqueeze (always views) ----------------------------------- */
mtl_tensor *mtl_squeeze(mtl_tensor *a, int dim) {
  if (dim != -1 && check_dim("mtl.squeeze", a, dim) < 0) return NULL;
  int64_t shape[MTL_MAX_DIMS], stride[MTL_MAX_DIMS];
  int nd = 0;
  for (int i = 0; i < a->ndim; i++) {
    bool drop = a->shape[i] == 1 && (dim == -1 || dim == i);
    if (!drop) {
      shape[nd] = a->shape[i];
      stride[nd++] = a->stride[i];
    }
  }
  mtl_tensor *out = mtl_tensor_view(a, nd, shape, stride, a->offset);
  if (out) record1(MTL_OP_SQUEEZE, &out, a);
  return out;
}

int mtl_squeeze_backward(mtl_node *n, mtl_tensor *g) { return reshape_back(n, g); }

mtl_tensor *mtl_unsqueeze(mtl_tensor *a, int dim) {
  if (dim < 0 || dim > a->ndim)
    return (void)mtl_error("mtl.unsqueeze: dimension %d out of range (expected 1..%d)", dim + 1, a->ndim + 1), NULL;
  if (a->ndim == MTL_MAX_DIMS)
    return (void)mtl_error("mtl.unsqueeze: tensors have at most %d dimensions", MTL_MAX_DIMS), NULL;
  int64_t shape[MTL_MAX_DIMS], stride[MTL_MAX_DIMS];
  for (int i = 0, k = 0; i <= a->ndim; i++) {
    if (i == dim) {
      shape[i] = 1;
      /* any stride works for a size-1 dim; this one keeps a contiguous
       * tensor recognisably contiguous */
      stride[i] = k < a->ndim ? a->stride[k] * a->shape[k] : 1;
    } else {
      shape[i] = a->shape[k];
      stride[i] = a->stride[k++];
    }
  }
  mtl_tensor *out = mtl_tensor_view(a, a->ndim + 1, shape, stride, a->offset);
  if (out) record1(MTL_OP_UNSQUEEZE, &out, a);
  return out;
}

int mtl_unsqueeze_backward(mtl_node *n, mtl_tensor *g) { return reshape_back(n, g); }

/* ---- transpose / permute --------------------------------------------------- */
mtl_tensor *mtl_transpose(mtl_tensor *a, int d0, int d1) {
  if (check_dim("mtl.transpose", a, d0) < 0 || check_dim("mtl.transpose", a, d1) < 0) return NULL;
  int64_t shape[MTL_MAX_DIMS], stride[MTL_MAX_DIMS];
  memcpy(shape, a->shape, sizeof shape);
  memcpy(stride, a->stride, sizeof stride);
  shape[d0] = a->shape[d1];
  shape[d1] = a->shape[d0];
  stride[d0] = a->stride[d1];
  stride[d1] = a->stride[d0];
  mtl_tensor *out = mtl_tensor_view(a, a->ndim, shape, stride, a->offset);
  if (!out) return NULL;
  mtl_node *n = record1(MTL_OP_TRANSPOSE, &out, a);
  if (n) {
    n->iarg[0] = d0;
    n->iarg[1] = d1;
  }
  return out;
}

int mtl_transpose_backward(mtl_node *n, mtl_tensor *g) {
  if (!mtl_node_wants(n, 0)) return 0;
  return mtl_node_accumulate(n, 0, mtl_transpose(g, (int)n->iarg[0], (int)n->iarg[1]));
}

mtl_tensor *mtl_permute(mtl_tensor *a, const int *perm) {
  int64_t shape[MTL_MAX_DIMS], stride[MTL_MAX_DIMS];
  bool seen[MTL_MAX_DIMS] = {false};
  for (int i = 0; i < a->ndim; i++) {
    int p = perm[i];
    if (p < 0 || p >= a->ndim || seen[p]) {
      char s[128];
      return (void)mtl_error("mtl.permute: expected a permutation of 1..%d for a tensor of shape %s, "
                             "got %d at position %d",
                             a->ndim, mtl_shape_str(a, s, sizeof s), p + 1, i + 1),
             NULL;
    }
    seen[p] = true;
    shape[i] = a->shape[p];
    stride[i] = a->stride[p];
  }
  mtl_tensor *out = mtl_tensor_view(a, a->ndim, shape, stride, a->offset);
  if (!out) return NULL;
  mtl_node *n = record1(MTL_OP_PERMUTE, &out, a);
  if (n)
    for (int i = 0; i < a->ndim; i++) n->iarg[i] = perm[i];
  return out;
}

int mtl_permute_backward(mtl_node *n, mtl_tensor *g) {
  if (!mtl_node_wants(n, 0)) return 0;
  int inv[MTL_MAX_DIMS];
  for (int i = 0; i < n->out_ndim; i++) inv[n->iarg[i]] = i;
  return mtl_node_accumulate(n, 0, mtl_permute(g, inv));
}

/* ---- narrow ------------------------------------------------------------------ */
mtl_tensor *mtl_narrow(mtl_tensor *a, int dim, int64_t start, int64_t length) {
  if (check_dim("mtl.narrow", a, dim) < 0) return NULL;
  int64_t size = a->shape[dim];
  if (start < 0 || start > size)
    return (void)mtl_error("mtl.narrow: start %lld out of range for dimension %d of size %lld (expected 1..%lld)",
                           pos1(start), dim + 1, (long long)size, (long long)size + 1),
           NULL;
  if (length < 0 || length > size - start)
    return (void)mtl_error("mtl.narrow: length %lld out of range for dimension %d of size %lld starting at %lld "
                           "(expected 0..%lld)",
                           (long long)length, dim + 1, (long long)size, pos1(start), (long long)(size - start)),
           NULL;
  int64_t shape[MTL_MAX_DIMS];
  memcpy(shape, a->shape, sizeof shape);
  shape[dim] = length;
  mtl_tensor *out = mtl_tensor_view(a, a->ndim, shape, a->stride, a->offset + start * a->stride[dim]);
  if (!out) return NULL;
  mtl_node *n = record1(MTL_OP_NARROW, &out, a);
  if (n) {
    n->iarg[0] = dim;
    n->iarg[1] = start;
    n->iarg[2] = length;
  }
  return out;
}

/* Zero gradient of the input's shape with the narrowed slice filled. */
int mtl_narrow_backward(mtl_node *n, mtl_tensor *g) {
  if (!mtl_node_wants(n, 0)) return 0;
  const mtl_tensor *x = n->in[0];
  int dim = (int)n->iarg[0];
  int64_t start = n->iarg[1], len = n->iarg[2];
  mtl_tensor *gi = mtl_tensor_zeros(MTL_F32, x->ndim, x->shape);
  mtl_tensor *gc = gi ? mtl_tensor_contiguous_data(g) : NULL;
  if (!gc) { mtl_tensor_release(gi); return -1; }
  int64_t inner = inner_of(x, dim), size = x->shape[dim];
  copy_blocks(mtl_f32(gi) + start * inner, size * inner, mtl_f32(gc), len * inner, outer_of(x, dim),
              len * inner, sizeof(float));
  mtl_tensor_release(gc);
  return mtl_node_accumulate(n, 0, gi);
}

/* ---- expand ------------------------------------------------------------------ */
mtl_tensor *mtl_expand(mtl_tensor *a, int ndim, const int64_t *shape_in) {
  const char *op = "mtl.expand";
  char sa[128], sb[128];
  if (ndim > MTL_MAX_DIMS)
    return (void)mtl_error("%s: tensors have at most %d dimensions, got %d", op, MTL_MAX_DIMS, ndim), NULL;
  if (ndim < a->ndim)
    return (void)mtl_error("%s: cannot expand %s to %s (fewer dimensions)", op, mtl_shape_str(a, sa, sizeof sa),
                           mtl_dims_str(ndim, shape_in, sb, sizeof sb)),
           NULL;
  int64_t shape[MTL_MAX_DIMS], stride[MTL_MAX_DIMS];
  int lead = ndim - a->ndim; /* new dims on the left */
  for (int i = 0; i < ndim; i++) {
    int64_t want = shape_in[i];
    int k = i - lead;
    if (k < 0) {
      if (want < 0)
        return (void)mtl_error("%s: size %lld not allowed for the new leading dimension %d of %s", op,
                               (long long)want, i + 1, mtl_dims_str(ndim, shape_in, sb, sizeof sb)),
               NULL;
      shape[i] = want;
      stride[i] = 0;
      continue;
    }
    int64_t have = a->shape[k];
    if (want == -1 || want == have) {
      shape[i] = have;
      stride[i] = a->stride[k];
    } else if (have == 1 && want >= 0) {
      shape[i] = want;
      stride[i] = 0;
    } else {
      return (void)mtl_error("%s: cannot expand %s to %s (dimension %d: %lld vs %lld; only size-1 dimensions expand)",
                             op, mtl_shape_str(a, sa, sizeof sa), mtl_dims_str(ndim, shape_in, sb, sizeof sb),
                             i + 1, (long long)have, (long long)want),
             NULL;
    }
  }
  if (mtl_shape_numel(op, ndim, shape) < 0) return NULL;
  mtl_tensor *out = mtl_tensor_view(a, ndim, shape, stride, a->offset);
  if (out) record1(MTL_OP_EXPAND, &out, a);
  return out;
}

int mtl_expand_backward(mtl_node *n, mtl_tensor *g) {
  if (!mtl_node_wants(n, 0)) return 0;
  const mtl_tensor *x = n->in[0];
  return mtl_node_accumulate(n, 0, mtl_sum_to_shape(g, x->ndim, x->shape));
}

/* ---- contiguous -------------------------------------------------------------- */
mtl_tensor *mtl_contiguous(mtl_tensor *a) {
  if (mtl_tensor_is_contiguous(a)) { /* the tensor itself, as PyTorch does */
    mtl_tensor_retain(a);
    return a;
  }
  mtl_tensor *out = mtl_tensor_new(a->dtype, a->ndim, a->shape);
  if (!out) return NULL;
  mtl_tensor_copy_into(out, a);
  record1(MTL_OP_CONTIGUOUS, &out, a);
  return out;
}

int mtl_contiguous_backward(mtl_node *n, mtl_tensor *g) {
  if (!mtl_node_wants(n, 0)) return 0;
  mtl_tensor_retain(g);
  return mtl_node_accumulate(n, 0, g);
}

/* ---- concat / stack ------------------------------------------------------------
 * Both lay the inputs side by side in rows: the output is [outer, row] where
 * outer is the product of the sizes before dim, and each row holds, input
 * after input, a block of the input's sizes from dim on (for concat that is
 * size(dim) * inner; for stack, which inserts the new dim at dim, the whole
 * tail). The backward cuts g's rows into the same blocks. */
static int64_t tail_of(const mtl_tensor *a, int dim) {
  int64_t o = 1;
  for (int i = dim; i < a->ndim; i++) o *= a->shape[i];
  return o;
}

static int check_list(const char *op, int n, mtl_tensor *const *ts) {
  if (n < 1) return mtl_error("%s: expected a non-empty list of tensors", op);
  for (int i = 0; i < n; i++) {
    if (!ts[i]) return mtl_error("%s: tensor %d of the list is missing", op, i + 1);
    if (ts[i]->dtype != ts[0]->dtype)
      return mtl_error("%s: tensor %d is %s but tensor 1 is %s (all must have the same dtype)", op, i + 1,
                       mtl_dtype_name(ts[i]->dtype), mtl_dtype_name(ts[0]->dtype));
  }
  return 0;
}

/* Fills out's rows with the inputs' blocks; records the node. */
static mtl_tensor *join(int op_id, mtl_tensor *out, int n, mtl_tensor *const *ts, int dim) {
  size_t es = mtl_dtype_size(out->dtype);
  int64_t outer = outer_of(ts[0], dim), row = 0, off = 0;
  for (int i = 0; i < n; i++) row += tail_of(ts[i], dim);
  for (int i = 0; i < n; i++) {
    int64_t blk = tail_of(ts[i], dim);
    mtl_tensor *c = mtl_tensor_contiguous_data(ts[i]);
    if (!c) { mtl_tensor_release(out); return NULL; }
    copy_blocks((char *)out->storage->data + (size_t)(out->offset + off) * es, row,
                (const char *)c->storage->data + (size_t)c->offset * es, blk, outer, blk, es);
    mtl_tensor_release(c);
    off += blk;
  }
  if (mtl_needs_grad(n, ts)) {
    mtl_node *nd = mtl_record(op_id, out, n, ts);
    if (!nd) { mtl_tensor_release(out); return NULL; }
    nd->iarg[0] = dim;
  }
  return out;
}

static int join_backward(mtl_node *n, mtl_tensor *g) {
  int dim = (int)n->iarg[0];
  mtl_tensor *gc = mtl_tensor_contiguous_data(g);
  if (!gc) return -1;
  int64_t outer = outer_of(n->in[0], dim), row = 0, off = 0;
  for (int i = 0; i < n->nin; i++) row += tail_of(n->in[i], dim);
  for (int i = 0; i < n->nin; i++) {
    const mtl_tensor *x = n->in[i];
    int64_t blk = tail_of(x, dim);
    if (mtl_node_wants(n, i)) {
      mtl_tensor *gi = mtl_tensor_new(MTL_F32, x->ndim, x->shape);
      if (!gi) { mtl_tensor_release(gc); return -1; }
      copy_blocks(mtl_f32(gi), blk, mtl_f32(gc) + off, row, outer, blk, sizeof(float));
      if (mtl_node_accumulate(n, i, gi) < 0) { mtl_tensor_release(gc); return -1; }
    }
    off += blk;
  }
  mtl_tensor_release(gc);
  return 0;
}

mtl_tensor *mtl_concat(int n, mtl_tensor *const *ts, int dim) {
  const char *op = "mtl.concat";
  if (check_list(op, n, ts) < 0 || check_dim(op, ts[0], dim) < 0) return NULL;
  const mtl_tensor *a = ts[0];
  int64_t shape[MTL_MAX_DIMS];
  memcpy(shape, a->shape, sizeof shape);
  shape[dim] = 0;
  for (int i = 0; i < n; i++) {
    const mtl_tensor *t = ts[i];
    bool ok = t->ndim == a->ndim;
    for (int d = 0; ok && d < a->ndim; d++) ok = d == dim || t->shape[d] == a->shape[d];
    if (!ok) {
      char sa[128], sb[128];
      return (void)mtl_error("%s: tensor %d has shape %s but tensor 1 has %s (sizes must match except in "
                             "dimension %d)",
                             op, i + 1, mtl_shape_str(t, sa, sizeof sa), mtl_shape_str(a, sb, sizeof sb), dim + 1),
             NULL;
    }
    if (t->shape[dim] > INT64_MAX / 2 - shape[dim]) return (void)mtl_error("%s: the result is too large", op), NULL;
    shape[dim] += t->shape[dim];
  }
  mtl_tensor *out = mtl_tensor_new(a->dtype, a->ndim, shape);
  return out ? join(MTL_OP_CONCAT, out, n, ts, dim) : NULL;
}

int mtl_concat_backward(mtl_node *n, mtl_tensor *g) { return join_backward(n, g); }

mtl_tensor *mtl_stack(int n, mtl_tensor *const *ts, int dim) {
  const char *op = "mtl.stack";
  if (check_list(op, n, ts) < 0) return NULL;
  const mtl_tensor *a = ts[0];
  if (dim < 0 || dim > a->ndim)
    return (void)mtl_error("%s: dimension %d out of range (expected 1..%d)", op, dim + 1, a->ndim + 1), NULL;
  if (a->ndim == MTL_MAX_DIMS)
    return (void)mtl_error("%s: tensors have at most %d dimensions", op, MTL_MAX_DIMS), NULL;
  for (int i = 1; i < n; i++) {
    const mtl_tensor *t = ts[i];
    bool ok = t->ndim == a->ndim;
    for (int d = 0; ok && d < a->ndim; d++) ok = t->shape[d] == a->shape[d];
    if (!ok) {
      char sa[128], sb[128];
      return (void)mtl_error("%s: tensor %d has shape %s but tensor 1 has %s (all must have the same shape)", op,
                             i + 1, mtl_shape_str(t, sa, sizeof sa), mtl_shape_str(a, sb, sizeof sb)),
             NULL;
    }
  }
  int64_t shape[MTL_MAX_DIMS];
  for (int i = 0, k = 0; i <= a->ndim; i++) shape[i] = i == dim ? n : a->shape[k++];
  mtl_tensor *out = mtl_tensor_new(a->dtype, a->ndim + 1, shape);
  return out ? join(MTL_OP_STACK, out, n, ts, dim) : NULL;
}

int mtl_stack_backward(mtl_node *n, mtl_tensor *g) { return join_backward(n, g); }

/* ---- split ------------------------------------------------------------------ */
int mtl_split(mtl_tensor *a, int dim, int n, const int64_t *sizes, mtl_tensor **out) {
  const char *op = "mtl.split";
  if (check_dim(op, a, dim) < 0) return -1;
  if (n < 1) return mtl_error("%s: expected at least one piece, got %d", op, n);
  int64_t total = 0;
  for (int i = 0; i < n; i++) {
    if (sizes[i] < 0 || sizes[i] > a->shape[dim] - total)
      return mtl_error("%s: piece sizes must be >= 0 and add up to %lld (the size of dimension %d), got %lld for "
                       "piece %d after %lld",
                       op, (long long)a->shape[dim], dim + 1, (long long)sizes[i], i + 1, (long long)total);
    total += sizes[i];
  }
  if (total != a->shape[dim])
    return mtl_error("%s: piece sizes add up to %lld but dimension %d has size %lld", op, (long long)total, dim + 1,
                     (long long)a->shape[dim]);
  int64_t start = 0;
  for (int i = 0; i < n; i++) {
    out[i] = mtl_narrow(a, dim, start, sizes[i]);
    if (!out[i]) {
      while (i-- > 0) mtl_tensor_release(out[i]);
      return -1;
    }
    start += sizes[i];
  }
  return 0;
}

/* ---- index_select ------------------------------------------------------------ */
static int check_index_tensor(const char *op, const mtl_tensor *index) {
  if (!index) return mtl_error("%s: the index tensor is missing", op);
  if (index->dtype != MTL_I64)
    return mtl_error("%s: expected an int64 index tensor, got %s", op, mtl_dtype_name(index->dtype));
  return 0;
}

/* Every position in ix must lie in 0..size-1; the message is in Lua terms. */
static int check_positions(const char *op, const int64_t *ix, int64_t n, int dim, int64_t size) {
  for (int64_t k = 0; k < n; k++) {
    if (ix[k] >= 0 && ix[k] < size) continue;
    if (size == 0)
      return mtl_error("%s: index %lld out of range for dimension %d of size 0 (the dimension is empty)", op,
                       pos1(ix[k]), dim + 1);
    return mtl_error("%s: index %lld out of range for dimension %d of size %lld (expected 1..%lld)", op, pos1(ix[k]),
                     dim + 1, (long long)size, (long long)size);
  }
  return 0;
}

mtl_tensor *mtl_index_select(mtl_tensor *a, int dim, mtl_tensor *index) {
  const char *op = "mtl.index_select";
  if (check_dim(op, a, dim) < 0 || check_index_tensor(op, index) < 0) return NULL;
  if (index->ndim != 1) {
    char s[128];
    return (void)mtl_error("%s: expected a 1-D index tensor, got %s", op, mtl_shape_str(index, s, sizeof s)), NULL;
  }
  mtl_tensor *ixc = mtl_tensor_contiguous_data(index);
  if (!ixc) return NULL;
  const int64_t *ix = mtl_i64(ixc);
  int64_t k = index->numel, size = a->shape[dim];
  if (check_positions(op, ix, k, dim, size) < 0) { mtl_tensor_release(ixc); return NULL; }
  int64_t shape[MTL_MAX_DIMS];
  memcpy(shape, a->shape, sizeof shape);
  shape[dim] = k;
  mtl_tensor *out = mtl_tensor_new(a->dtype, a->ndim, shape);
  mtl_tensor *src = out ? mtl_tensor_contiguous_data(a) : NULL;
  if (!src) { mtl_tensor_release(out); mtl_tensor_release(ixc); return NULL; }
  /* out[o, j, :] = a[o, ix[j], :] over [outer, size, inner] */
  int64_t outer = outer_of(a, dim), inner = inner_of(a, dim);
  size_t es = mtl_dtype_size(a->dtype);
  const char *ps = (const char *)src->storage->data + (size_t)src->offset * es;
  char *po = out->storage->data;
  if (out->numel > 0 && inner == 1) { /* single elements: a plain typed gather */
    for (int64_t o = 0; o < outer; o++) {
      if (a->dtype == MTL_F32) {
        const float *s = (const float *)ps + o * size;
        float *d = (float *)po + o * k;
        for (int64_t j = 0; j < k; j++) d[j] = s[ix[j]];
      } else {
        const int64_t *s = (const int64_t *)ps + o * size;
        int64_t *d = (int64_t *)po + o * k;
        for (int64_t j = 0; j < k; j++) d[j] = s[ix[j]];
      }
    }
  } else if (out->numel > 0) {
    for (int64_t o = 0; o < outer; o++)
      for (int64_t j = 0; j < k; j++)
        memcpy(po + (size_t)((o * k + j) * inner) * es, ps + (size_t)((o * size + ix[j]) * inner) * es,
               (size_t)inner * es);
  }
  mtl_tensor_release(src);
  return record_positions(MTL_OP_INDEX_SELECT, out, a, dim, ixc);
}

/* Scatter-add of g's rows into a zero gradient (repeated indices add up). */
int mtl_index_select_backward(mtl_node *n, mtl_tensor *g) {
  if (!mtl_node_wants(n, 0)) return 0;
  const mtl_tensor *x = n->in[0];
  int dim = (int)n->iarg[0];
  const int64_t *ix = mtl_i64(n->saved[0]);
  int64_t k = n->saved[0]->numel, size = x->shape[dim];
  int64_t outer = outer_of(x, dim), inner = inner_of(x, dim);
  mtl_tensor *gi = mtl_tensor_zeros(MTL_F32, x->ndim, x->shape);
  mtl_tensor *gc = gi ? mtl_tensor_contiguous_data(g) : NULL;
  if (!gc) { mtl_tensor_release(gi); return -1; }
  float *pi = mtl_f32(gi);
  const float *pg = mtl_f32(gc);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t j = 0; j < k; j++) {
      float *d = pi + (o * size + ix[j]) * inner;
      const float *s = pg + (o * k + j) * inner;
      for (int64_t t = 0; t < inner; t++) d[t] += s[t];
    }
  mtl_tensor_release(gc);
  return mtl_node_accumulate(n, 0, gi);
}

/* ---- gather ------------------------------------------------------------------ */
/* Walks a shape in row-major order keeping the offset sum(pos[d] * stride[d]). */
typedef struct {
  int nd;
  const int64_t *shape;
  int64_t stride[MTL_MAX_DIMS], pos[MTL_MAX_DIMS], offset;
} walker;

static void walker_init(walker *w, int nd, const int64_t *shape, const int64_t *stride, int64_t offset) {
  w->nd = nd;
  w->shape = shape;
  w->offset = offset;
  for (int d = 0; d < nd; d++) {
    w->stride[d] = stride[d];
    w->pos[d] = 0;
  }
}

static inline void walker_next(walker *w) {
  for (int d = w->nd - 1; d >= 0; d--) {
    if (++w->pos[d] < w->shape[d]) { w->offset += w->stride[d]; return; }
    w->offset -= (w->pos[d] - 1) * w->stride[d];
    w->pos[d] = 0;
  }
}

/* The walker over index's shape that yields a's offset without the dim term. */
static void gather_walker(walker *w, const mtl_tensor *index, const int64_t *stride, int64_t offset, int dim) {
  int64_t st[MTL_MAX_DIMS];
  for (int d = 0; d < index->ndim; d++) st[d] = d == dim ? 0 : stride[d];
  walker_init(w, index->ndim, index->shape, st, offset);
}

mtl_tensor *mtl_gather(mtl_tensor *a, int dim, mtl_tensor *index) {
  const char *op = "mtl.gather";
  if (check_dim(op, a, dim) < 0 || check_index_tensor(op, index) < 0) return NULL;
  char sa[128], sb[128];
  if (index->ndim != a->ndim)
    return (void)mtl_error("%s: the index needs as many dimensions as the input %s, got %s", op,
                           mtl_shape_str(a, sa, sizeof sa), mtl_shape_str(index, sb, sizeof sb)),
           NULL;
  for (int d = 0; d < a->ndim; d++)
    if (d != dim && index->shape[d] > a->shape[d])
      return (void)mtl_error("%s: index of shape %s does not fit the input %s (dimension %d: %lld > %lld)", op,
                             mtl_shape_str(index, sb, sizeof sb), mtl_shape_str(a, sa, sizeof sa), d + 1,
                             (long long)index->shape[d], (long long)a->shape[d]),
             NULL;
  mtl_tensor *ixc = mtl_tensor_contiguous_data(index);
  if (!ixc) return NULL;
  const int64_t *ix = mtl_i64(ixc);
  if (check_positions(op, ix, index->numel, dim, a->shape[dim]) < 0) { mtl_tensor_release(ixc); return NULL; }
  mtl_tensor *out = mtl_tensor_new(a->dtype, index->ndim, index->shape);
  if (!out) { mtl_tensor_release(ixc); return NULL; }
  /* out[p] = a[p with p[dim] replaced by ix[p]], read through a's strides */
  walker w;
  gather_walker(&w, index, a->stride, a->offset, dim);
  int64_t sd = a->stride[dim], n = index->numel;
  if (a->dtype == MTL_F32) {
    const float *pa = a->storage->data;
    float *po = mtl_f32(out);
    for (int64_t k = 0; k < n; k++, walker_next(&w)) po[k] = pa[w.offset + ix[k] * sd];
  } else {
    const int64_t *pa = a->storage->data;
    int64_t *po = mtl_i64(out);
    for (int64_t k = 0; k < n; k++, walker_next(&w)) po[k] = pa[w.offset + ix[k] * sd];
  }
  return record_positions(MTL_OP_GATHER, out, a, dim, ixc);
}

/* Scatter-add of g into a zero gradient shaped like the input. */
int mtl_gather_backward(mtl_node *n, mtl_tensor *g) {
  if (!mtl_node_wants(n, 0)) return 0;
  const mtl_tensor *x = n->in[0], *index = n->saved[0];
  int dim = (int)n->iarg[0];
  mtl_tensor *gi = mtl_tensor_zeros(MTL_F32, x->ndim, x->shape);
  mtl_tensor *gc = gi ? mtl_tensor_contiguous_data(g) : NULL;
  if (!gc) { mtl_tensor_release(gi); return -1; }
  walker w;
  gather_walker(&w, index, gi->stride, 0, dim);
  int64_t sd = gi->stride[dim];
  const int64_t *ix = mtl_i64(index);
  const float *pg = mtl_f32(gc);
  float *pi = mtl_f32(gi);
  for (int64_t k = 0; k < index->numel; k++, walker_next(&w)) pi[w.offset + ix[k] * sd] += pg[k];
  mtl_tensor_release(gc);
  return mtl_node_accumulate(n, 0, gi);
}
