/* Optimizers (see docs/optim.md for each update rule).
 *
 * An optimizer holds parameter groups (each with its own config) and, per
 * parameter, its state. Dense parameters are tensors updated from p->grad;
 * their state tensors are allocated at their first update. Embedding tables
 * are updated row-wise from their sparse gradient: only the touched rows and
 * their state change (lazy semantics), in increasing id order; their state
 * lives in the table's slots (embedding.h), claimed when the table is added.
 * mtl_optimizer_step makes one pass over all parameters: one C call per
 * training step.
 */
#ifndef MTL_OPTIM_H
#define MTL_OPTIM_H

#include "mtl/core.h"
#include "mtl/embedding.h"

typedef enum {
  MTL_OPTIM_SGD = 0,
  MTL_OPTIM_ADAM,
  MTL_OPTIM_ADAMW,
  MTL_OPTIM_ADAGRAD,
  MTL_OPTIM_FTRL,
  MTL_OPTIM_RMSPROP,
  MTL_OPTIM__COUNT
} mtl_optim_kind;

typedef struct {
  double lr;
  double weight_decay;        /* L2 added to the gradient; adamw: decoupled */
  double momentum;            /* sgd, rmsprop */
  bool nesterov;              /* sgd */
  double beta1, beta2;        /* adam, adamw */
  double eps;                 /* adam, adamw, adagrad, rmsprop */
  double alpha;               /* rmsprop: smoothing of the squared gradient */
  bool centered;              /* rmsprop */
  double lr_decay;            /* adagrad */
  double initial_accumulator; /* adagrad, ftrl */
  double lr_power, l1, l2;    /* ftrl */
} mtl_optim_config;

#define MTL_OPTIM_MAX_STATE 3

const char *mtl_optim_kind_name(mtl_optim_kind k);
/* The kind named s ("sgd", "adam", ...), or -1. */
int mtl_optim_kind_from_name(const char *s);
/* PyTorch's defaults (FTRL: TensorFlow's); lr as PyTorch (adagrad 1e-2, ...). */
void mtl_optim_defaults(mtl_optim_kind k, mtl_optim_config *c);
/* Option names a kind accepts, NULL-terminated. */
const char *const *mtl_optim_options(mtl_optim_kind k);
/* Checks the ranges of c; the message starts with fname. */
int mtl_optim_check(mtl_optim_kind k, const mtl_optim_config *c, const char *fname);
/* The state a kind keeps per parameter under config c: names[i] (NULL when
 * position i is unused) and the initial value of each entry. */
void mtl_optim_state_layout(mtl_optim_kind k, const mtl_optim_config *c,
                            const char *names[MTL_OPTIM_MAX_STATE], float init[MTL_OPTIM_MAX_STATE]);

/* ---- kernels: one parameter; step counts this update (1 for the first) ---- */
int mtl_optim_dense_update(mtl_optim_kind k, const mtl_optim_config *c, mtl_tensor *param,
                           const mtl_tensor *grad, mtl_tensor *const *state, int64_t step);
int mtl_optim_sparse_update(mtl_optim_kind k, const mtl_optim_config *c, mtl_embedding *t, int64_t step);

/* ---- the optimizer ------------------------------------------------------- */
typedef struct {
  mtl_tensor *param;     /* retained; or NULL for a table */
  mtl_embedding *table;  /* retained; or NULL */
  int group;
  int64_t step;          /* updates applied (tables: optimizer steps taken) */
  mtl_tensor *state[MTL_OPTIM_MAX_STATE]; /* dense only */
} mtl_optim_param;

typedef struct mtl_optimizer {
  mtl_optim_kind kind;
  int ngroups;
  mtl_optim_config *groups;
  int nparams, cap;
  mtl_optim_param *params;
  int64_t steps;         /* mtl_optimizer_step calls */
} mtl_optimizer;

mtl_optimizer *mtl_optimizer_new(mtl_optim_kind kind, int ngroups, const mtl_optim_config *groups);
void mtl_optimizer_free(mtl_optimizer *o);
/* Adds a float32 contiguous tensor / a table (claiming its slots, which
 * resets the table's optimizer state) to a group. */
int mtl_optimizer_add_tensor(mtl_optimizer *o, int group, mtl_tensor *p);
int mtl_optimizer_add_table(mtl_optimizer *o, int group, mtl_embedding *t);
/* One update of every parameter (tensors without a gradient are skipped;
 * tables always count the step and advance their clock, mtl_embedding_tick). */
int mtl_optimizer_step(mtl_optimizer *o);
void mtl_optimizer_zero_grad(mtl_optimizer *o);

/* ---- gradient norms ------------------------------------------------------ */
/* Sum of squares of the gradients (dense p->grad, tables' sparse gradients). */
double mtl_grad_sqnorm(int nt, mtl_tensor *const *ts, int ne, mtl_embedding *const *es);
void mtl_grad_scale(int nt, mtl_tensor *const *ts, int ne, mtl_embedding *const *es, double coef);
/* Scales all gradients so their global L2 norm is at most max_norm (as
 * torch.nn.utils.clip_grad_norm_: coef = max_norm / (norm + 1e-6) when < 1).
 * Returns the norm before clipping; a non-finite norm leaves gradients as they are. */
double mtl_clip_grad_norm(int nt, mtl_tensor *const *ts, int ne, mtl_embedding *const *es, double max_norm);

#endif
