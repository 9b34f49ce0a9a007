/* Reverse-mode autodiff: node recording, the op registry's dispatch, and the
 * backward pass (see docs/autograd.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mtl/autograd.h"
#include "mtl/ops.h"

/* ---- the registry -------------------------------------------------------- */
#define MTL_OP(id, name, nin, backward) int backward(mtl_node *n, mtl_tensor *gout);
#include "mtl/ops.def"
#undef MTL_OP

static const char *const op_names[] = {
#define MTL_OP(id, name, nin, backward) name,
#include "mtl/ops.def"
#undef MTL_OP
};
static const int op_arity[] = {
#define MTL_OP(id, name, nin, backward) nin,
#include "mtl/ops.def"
#undef MTL_OP
};
static const mtl_backward_fn op_backward[] = {
#define MTL_OP(id, name, nin, backward) backward,
#include "mtl/ops.def"
#undef MTL_OP
};
_Static_assert(sizeof op_names / sizeof op_names[0] == MTL_OP__COUNT, "op name table out of step");
_Static_assert(sizeof op_backward / sizeof op_backward[0] == MTL_OP__COUNT, "op table out of step");

const char *mtl_op_name(int op) { return op >= 0 && op < MTL_OP__COUNT ? op_names[op] : "?"; }
int mtl_op_arity(int op) { return op >= 0 && op < MTL_OP__COUNT ? op_arity[op] : 0; }

/* ---- grad mode ----------------------------------------------------------- */
/* Per thread: a serving thread scores with recording off while another thread
 * may train. (The node pool below is not locked: only one thread records.) */
static _Thread_local bool grad_enabled = true;
bool mtl_grad_enabled(void) { return grad_enabled; }
void mtl_set_grad_enabled(bool on) { grad_enabled = on; }

bool mtl_needs_grad(int nin, mtl_tensor *const *in) {
  if (!grad_enabled) return false;
  for (int i = 0; i < nin; i++)
    if (in[i] && in[i]->requires_grad) return true;
  return false;
}

/* ---- nodes: a free list so the step path does not call malloc ------------ */
static mtl_node *node_pool;

static mtl_node *node_alloc(int nin) {
  mtl_node *n = node_pool;
  if (n) node_pool = n->next;
  else if (!(n = malloc(sizeof *n))) { mtl_error("out of memory"); return NULL; }
  memset(n, 0, sizeof *n);
  if (nin > 4) {
    n->in = calloc((size_t)nin, sizeof *n->in);
    if (!n->in) {
      n->next = node_pool;
      node_pool = n;
      mtl_error("out of memory");
      return NULL;
    }
  } else {
    n->in = n->in_inline;
  }
  return n;
}

/* Drops what the node holds (inputs, saved tensors, object). */
static void node_clear(mtl_node *n) {
  for (int i = 0; i < n->nin; i++) {
    mtl_tensor_release(n->in[i]);
    n->in[i] = NULL;
  }
  for (int i = 0; i < MTL_NODE_MAX_SAVED; i++) {
    mtl_tensor_release(n->saved[i]);
    n->saved[i] = NULL;
  }
  if (n->obj && n->obj_release) n->obj_release(n->obj);
  n->obj = NULL;
  mtl_tensor_release(n->gout);
  n->gout = NULL;
}

/* Releasing a node can release its inputs' nodes in turn; a long chain would
 * recurse deeply, so nodes to free are put on a worklist. */
void mtl_node_release(mtl_node *n) {
  static mtl_node *worklist;
  static int busy;
  if (!n || --n->refcount > 0) return;
  n->next = worklist;
  worklist = n;
  if (busy) return;
  busy = 1;
  while (worklist) {
    mtl_node *m = worklist;
    worklist = m->next;
    node_clear(m);
    if (m->in != m->in_inline) free(m->in);
#ifdef MTL_NO_POOLS
    free(m);
#else
    m->next = node_pool;
    node_pool = m;
#endif
  }
  busy = 0;
}

mtl_node *mtl_record(int op, mtl_tensor *out, int nin, mtl_tensor *const *in) {
  mtl_node *n = node_alloc(nin);
  if (!n) return NULL;
  n->op = op;
  n->nin = nin;
  for (int i = 0; i < nin; i++) {
    n->in[i] = in[i];
    mtl_tensor_retain(in[i]);
  }
  n->out_ndim = out->ndim;
  n->out_dtype = out->dtype;
  memcpy(n->out_shape, out->shape, sizeof n->out_shape);
  n->refcount = 1;
  if (out->node) mtl_node_release(out->node);
  out->node = n;
  out->requires_grad = true;
  return n;
}

void mtl_node_save(mtl_node *n, int i, mtl_tensor *t) {
  mtl_tensor_retain(t);
  mtl_tensor_release(n->saved[i]);
  n->saved[i] = t;
}

bool mtl_node_wants(const mtl_node *n, int i) {
  return i < n->nin && n->in[i] && n->in[i]->requires_grad && n->in[i]->dtype == MTL_F32;
}

/* ---- gradient accumulation ------------------------------------------------ */
/* a += b elementwise (same numel, both contiguous float). */
static void add_into(mtl_tensor *a, const mtl_tensor *b) {
  float *pa = mtl_f32(a);
  const float *pb = mtl_f32(b);
  for (int64_t i = 0; i < a->numel; i++) pa[i] += pb[i];
}

static bool same_shape(int nd, const int64_t *s, const mtl_tensor *t) {
  if (nd != t->ndim) return false;
  for (int i = 0; i < nd; i++)
    if (s[i] != t->shape[i]) return false;
  return true;
}

/* Adds g (owned) into *slot, a gradient of the given shape. */
static int accumulate_into(mtl_tensor **slot, mtl_tensor *g, int nd, const int64_t *shape) {
  if (!same_shape(nd, shape, g)) {
    mtl_tensor *r = mtl_sum_to_shape(g, nd, shape);
    mtl_tensor_release(g);
    if (!r) return -1;
    g = r;
  }
  if (!mtl_tensor_is_contiguous(g)) {
    mtl_tensor *c = mtl_tensor_contiguous_data(g);
    mtl_tensor_release(g);
    if (!c) return -1;
    g = c;
  }
  if (!*slot) {
    /* A gradient must own its storage: g may alias a saved tensor. */
    if (g->refcount == 1 && g->storage->refcount == 1 && !g->node) {
      *slot = g;
      return 0;
    }
    mtl_tensor *c = mtl_tensor_empty_like(g);
    if (!c) { mtl_tensor_release(g); return -1; }
    mtl_tensor_copy_into(c, g);
    mtl_tensor_release(g);
    *slot = c;
    return 0;
  }
  add_into(*slot, g);
  mtl_tensor_release(g);
  return 0;
}

mtl_tensor *mtl_node_grad_sum(mtl_node *n, int i) {
  if (!mtl_node_wants(n, i)) return NULL;
  mtl_tensor *x = n->in[i];
  mtl_tensor *g = x->node ? x->node->gout : x->grad;
  if (!g || g->refcount != 1 || g->storage->refcount != 1 || g->node || g->dtype != MTL_F32 ||
      !same_shape(x->ndim, x->shape, g) || !mtl_tensor_is_contiguous(g))
    return NULL;
  return g;
}

int mtl_node_accumulate(mtl_node *n, int i, mtl_tensor *g) {
  if (!g) return -1;
  mtl_tensor *x = n->in[i];
  if (!mtl_node_wants(n, i)) {
    mtl_tensor_release(g);
    return 0;
  }
  if (x->node) return accumulate_into(&x->node->gout, g, x->ndim, x->shape);
  return accumulate_into(&x->grad, g, x->ndim, x->shape);
}

mtl_tensor *mtl_sum_to_shape(mtl_tensor *g, int ndim, const int64_t *shape) {
  /* Sum over leading extra dims, then over dims where shape is 1. */
  mtl_tensor *cur = g;
  mtl_tensor_retain(cur);
  while (cur->ndim > ndim) {
    mtl_tensor *r = mtl_sum(cur, 0, false);
    mtl_tensor_release(cur);
    if (!r) return NULL;
    cur = r;
  }
  for (int d = 0; d < ndim; d++) {
    if (shape[d] == 1 && cur->shape[d] != 1) {
      mtl_tensor *r = mtl_sum(cur, d, true);
      mtl_tensor_release(cur);
      if (!r) return NULL;
      cur = r;
    }
  }
  return cur;
}

/* ---- backward ------------------------------------------------------------ */
int mtl_tensor_set_requires_grad(mtl_tensor *t, bool on) {
  if (t->node)
    return mtl_error("requires_grad: only leaf tensors can be marked (this one is the result of '%s')",
                     mtl_op_name(t->node->op));
  if (on && t->dtype != MTL_F32)
    return mtl_error("requires_grad: only float32 tensors can require gradients, got %s",
                     mtl_dtype_name(t->dtype));
  t->requires_grad = on;
  return 0;
}

void mtl_tensor_zero_grad(mtl_tensor *t) {
  mtl_tensor_release(t->grad);
  t->grad = NULL;
}

mtl_tensor *mtl_detach(mtl_tensor *t) { return mtl_tensor_alias(t); }

/* Depth-first post-order over the graph, iterative (graphs can be deep). */
static int topo_sort(mtl_node *root, mtl_node ***order, int *count) {
  int cap = 64, n = 0, sp = 0, scap = 64;
  mtl_node **out = malloc((size_t)cap * sizeof *out);
  struct frame { mtl_node *node; int next; } *stack = malloc((size_t)scap * sizeof *stack);
  if (!out || !stack) {
    free(out);
    free(stack);
    return mtl_error("backward: out of memory");
  }
  root->pending = 1; /* pending doubles as the "visited" mark here */
  stack[sp++] = (struct frame){root, 0};
  while (sp > 0) {
    struct frame *f = &stack[sp - 1];
    if (f->next < f->node->nin) {
      mtl_tensor *x = f->node->in[f->next++];
      if (x && x->node && !x->node->pending && x->requires_grad) {
        if (x->node->spent) {
          for (int k = 0; k < n; k++) out[k]->pending = 0;
          for (int k = 0; k < sp; k++) stack[k].node->pending = 0;
          free(out);
          free(stack);
          return mtl_error("backward: trying to backward through part of a graph a second time "
                           "(its buffers were freed by an earlier backward)");
        }
        x->node->pending = 1;
        if (sp == scap) {
          scap *= 2;
          void *p = realloc(stack, (size_t)scap * sizeof *stack);
          if (!p) { free(out); free(stack); return mtl_error("backward: out of memory"); }
          stack = p;
        }
        stack[sp++] = (struct frame){x->node, 0};
      }
    } else {
      if (n == cap) {
        cap *= 2;
        void *p = realloc(out, (size_t)cap * sizeof *out);
        if (!p) { free(out); free(stack); return mtl_error("backward: out of memory"); }
        out = p;
      }
      out[n++] = f->node;
      sp--;
    }
  }
  free(stack);
  *order = out;
  *count = n;
  return 0;
}

int mtl_backward(mtl_tensor *t, mtl_tensor *grad) {
  if (!t->requires_grad)
    return mtl_error("backward: the tensor does not require a gradient (no input of the "
                     "computation was marked with requires_grad)");
  if (!t->node) {
    /* a leaf: its gradient is the seed itself */
    mtl_tensor *g;
    char a[128], b[128];
    if (grad) {
      /* checked as for a non-leaf: a gradient of another size or dtype would
       * be read past its end */
      if (grad->numel != t->numel || grad->dtype != MTL_F32)
        return mtl_error("backward: gradient must be float32 shaped like the tensor %s, got %s %s",
                         mtl_shape_str(t, a, sizeof a), mtl_dtype_name(grad->dtype),
                         mtl_shape_str(grad, b, sizeof b));
      g = mtl_tensor_new(MTL_F32, t->ndim, t->shape);
      if (g) mtl_tensor_copy_into(g, grad);
    } else {
      if (t->numel != 1)
        return mtl_error("backward: a gradient argument is needed for a non-scalar tensor %s",
                         mtl_shape_str(t, a, sizeof a));
      g = mtl_tensor_new(MTL_F32, t->ndim, t->shape);
      if (g) mtl_f32(g)[0] = 1.0f;
    }
    if (!g) return -1;
    return accumulate_into(&t->grad, g, t->ndim, t->shape);
  }
  if (t->node->spent)
    return mtl_error("backward: trying to backward through the graph a second time "
                     "(its buffers were freed by the first backward)");
  mtl_tensor *seed;
  if (grad) {
    if (grad->numel != t->numel || grad->dtype != MTL_F32) {
      char a[128], b[128];
      return mtl_error("backward: gradient must be float32 shaped like the tensor %s, got %s %s",
                       mtl_shape_str(t, a, sizeof a), mtl_dtype_name(grad->dtype),
                       mtl_shape_str(grad, b, sizeof b));
    }
    seed = mtl_tensor_new(MTL_F32, t->ndim, t->shape);
    if (!seed) return -1;
    mtl_tensor_copy_into(seed, grad);
  } else {
    if (t->numel != 1) {
      char a[128];
      return mtl_error("backward: a gradient argument is needed for a non-scalar tensor %s",
                       mtl_shape_str(t, a, sizeof a));
    }
    seed = mtl_tensor_new(MTL_F32, t->ndim, t->shape);
    if (!seed) return -1;
    mtl_f32(seed)[0] = 1.0f;
  }
  mtl_node **order = NULL;
  int count = 0;
  if (topo_sort(t->node, &order, &count) < 0) {
    mtl_tensor_release(seed);
    return -1;
  }
  for (int i = 0; i < count; i++) order[i]->pending = 0;
  t->node->gout = seed;
  bool was_enabled = grad_enabled;
  grad_enabled = false;
  int rc = 0;
  for (int i = count - 1; i >= 0; i--) {
    mtl_node *n = order[i];
    mtl_tensor *g = n->gout;
    n->gout = NULL;
    if (rc == 0 && g) {
      rc = op_backward[n->op](n, g);
      if (rc < 0 && strncmp(mtl_error_message(), "backward", 8) != 0) {
        char pre[96];
        snprintf(pre, sizeof pre, "backward of %s", mtl_op_name(n->op));
        mtl_error_prefix(pre);
      }
    }
    mtl_tensor_release(g);
    /* the node is spent: drop what it saved, keep it as a marker */
    for (int k = 0; k < MTL_NODE_MAX_SAVED; k++) {
      mtl_tensor_release(n->saved[k]);
      n->saved[k] = NULL;
    }
    n->spent = true;
  }
  /* Spent nodes no longer need their inputs: release them so intermediate
   * tensors are freed now, not when the outputs are collected. */
  for (int i = 0; i < count; i++) {
    mtl_node *n = order[i];
    for (int k = 0; k < n->nin; k++) {
      mtl_tensor_release(n->in[k]);
      n->in[k] = NULL;
    }
    if (n->obj && n->obj_release) n->obj_release(n->obj);
    n->obj = NULL;
  }
  free(order);
  grad_enabled = was_enabled;
  return rc;
}
