/* Reverse-mode autodiff (see docs/autograd.md).
 *
 * An op that runs while gradients are enabled and has an input that requires
 * a gradient records a node: the op id, its inputs (retained), tensors it
 * saved for backward and small scalar arguments. The node hangs off the
 * output tensor (out->node). mtl_backward() orders the graph topologically,
 * calls each node's backward (found through the op registry, ops.def) and
 * accumulates gradients into leaves' ->grad. Afterwards the nodes are spent:
 * their saved tensors are dropped and a second backward raises an error.
 */
#ifndef MTL_AUTOGRAD_H
#define MTL_AUTOGRAD_H

#include "mtl/core.h"

/* The op registry: ops.def lists every op once. */
typedef enum {
#define MTL_OP(id, name, nin, backward) MTL_OP_##id,
#include "mtl/ops.def"
#undef MTL_OP
  MTL_OP__COUNT
} mtl_op;

const char *mtl_op_name(int op);
int mtl_op_arity(int op); /* number of tensor inputs; -1 for variadic */

#define MTL_NODE_MAX_SAVED 4
#define MTL_NODE_MAX_ARGS 8

typedef struct mtl_node {
  int op;
  int nin;
  mtl_tensor **in;     /* nin inputs, retained (array inline for nin <= 4) */
  mtl_tensor *in_inline[4];
  mtl_tensor *saved[MTL_NODE_MAX_SAVED]; /* retained, NULL if unused */
  double darg[MTL_NODE_MAX_ARGS];
  int64_t iarg[MTL_NODE_MAX_ARGS];
  /* An object the op needs in backward (e.g. an embedding table), with the
   * function that drops the node's reference to it. */
  void *obj;
  void (*obj_release)(void *obj);
  /* Shape of the output, so a backward can build gradients without it. */
  int out_ndim;
  int64_t out_shape[MTL_MAX_DIMS];
  mtl_dtype out_dtype;
  int refcount;  /* references from output tensors */
  bool spent;    /* backward has run through it */
  /* Used only during mtl_backward. */
  mtl_tensor *gout;
  int pending;
  struct mtl_node *next;
} mtl_node;

/* Signature of a backward function: given the gradient of the output, add
 * each input's gradient with mtl_node_accumulate(). */
typedef int (*mtl_backward_fn)(mtl_node *n, mtl_tensor *gout);

/* Gradient mode (on by default). */
bool mtl_grad_enabled(void);
void mtl_set_grad_enabled(bool on);

/* True when an op on these inputs must record a node. */
bool mtl_needs_grad(int nin, mtl_tensor *const *in);
/* Records a node for out. Returns the node (owned by out) or NULL on error. */
mtl_node *mtl_record(int op, mtl_tensor *out, int nin, mtl_tensor *const *in);
/* Saves t (retained) in slot i of the node. */
void mtl_node_save(mtl_node *n, int i, mtl_tensor *t);
/* True when input i needs a gradient. */
bool mtl_node_wants(const mtl_node *n, int i);
/* Adds g to input i's gradient. g may be broadcast-shaped: it is summed down
 * to the input's shape. Takes ownership of g (releases it). */
int mtl_node_accumulate(mtl_node *n, int i, mtl_tensor *g);
/* The buffer input i's gradient is being summed into, when a backward may add
 * its contribution there directly (a GEMM with beta = 1, a += loop) instead of
 * building a tensor for mtl_node_accumulate: the sum exists already, is
 * contiguous, shaped like the input, and nothing else holds it. NULL
 * otherwise (also when input i needs no gradient). Borrowed, not retained. */
mtl_tensor *mtl_node_grad_sum(mtl_node *n, int i);

void mtl_node_release(mtl_node *n);

/* Sets t->requires_grad on a leaf; error on a non-leaf. */
int mtl_tensor_set_requires_grad(mtl_tensor *t, bool on);
/* Backward from t. grad may be NULL when t has one element (seeded with 1). */
int mtl_backward(mtl_tensor *t, mtl_tensor *grad);
/* Drops t's gradient. */
void mtl_tensor_zero_grad(mtl_tensor *t);
/* A tensor sharing t's data with no autograd history. */
mtl_tensor *mtl_detach(mtl_tensor *t);

/* Sums g down to shape (the reverse of broadcasting). New reference. */
mtl_tensor *mtl_sum_to_shape(mtl_tensor *g, int ndim, const int64_t *shape);

#endif
