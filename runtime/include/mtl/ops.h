/* Tensor ops (forward). Each returns a new reference, or NULL with the error
 * message set ("mtl.<op>: ..."). All dims are 0-based here; negative dims are
 * resolved by the binding. Every op records an autograd node when needed
 * (autograd.h); its backward lives next to it in runtime/src/ops/<family>.c
 * and its row in mtl/ops_<family>.def. */
#ifndef MTL_OPS_H
#define MTL_OPS_H

#include "mtl/core.h"

/* ---- broadcasting helper (elementwise.c) --------------------------------- */
/* Broadcast shape of a and b (numpy rules); -1 with message naming op. */
int mtl_broadcast_shape(const char *op, const mtl_tensor *a, const mtl_tensor *b,
                        int *ndim, int64_t *shape);

/* ---- elementwise (ops/elementwise.c) ------------------------------------- */
mtl_tensor *mtl_add(mtl_tensor *a, mtl_tensor *b);
mtl_tensor *mtl_sub(mtl_tensor *a, mtl_tensor *b);
mtl_tensor *mtl_mul(mtl_tensor *a, mtl_tensor *b);
mtl_tensor *mtl_div(mtl_tensor *a, mtl_tensor *b);
/* Scalar forms (the Lua operators with a number on either side); s is rounded
 * to float32 first, as the tensor operand's values are float32. */
mtl_tensor *mtl_add_scalar(mtl_tensor *a, double s);     /* a + s */
mtl_tensor *mtl_sub_scalar(mtl_tensor *a, double s);     /* a - s */
mtl_tensor *mtl_rsub_scalar(mtl_tensor *a, double s);    /* s - a */
mtl_tensor *mtl_mul_scalar(mtl_tensor *a, double s);     /* a * s */
mtl_tensor *mtl_div_scalar(mtl_tensor *a, double s);     /* a / s (a true division) */
mtl_tensor *mtl_rdiv_scalar(mtl_tensor *a, double s);    /* s / a */
mtl_tensor *mtl_neg(mtl_tensor *a);
mtl_tensor *mtl_exp(mtl_tensor *a);
mtl_tensor *mtl_log(mtl_tensor *a);
mtl_tensor *mtl_log1p(mtl_tensor *a);
mtl_tensor *mtl_sqrt(mtl_tensor *a);
mtl_tensor *mtl_pow_scalar(mtl_tensor *a, double p);     /* a ^ p */
mtl_tensor *mtl_pow(mtl_tensor *a, mtl_tensor *b);       /* a ^ b elementwise, broadcasts */
mtl_tensor *mtl_abs(mtl_tensor *a);
mtl_tensor *mtl_clamp(mtl_tensor *a, double lo, double hi); /* +-INFINITY: open */
mtl_tensor *mtl_relu(mtl_tensor *a);
mtl_tensor *mtl_leaky_relu(mtl_tensor *a, double slope);
mtl_tensor *mtl_sigmoid(mtl_tensor *a);
mtl_tensor *mtl_tanh(mtl_tensor *a);
mtl_tensor *mtl_gelu(mtl_tensor *a);                     /* exact (erf) form */
mtl_tensor *mtl_gelu_tanh(mtl_tensor *a);                /* tanh approximation (EasyRec's gelu) */
mtl_tensor *mtl_elu(mtl_tensor *a);                      /* x > 0 ? x : e^x - 1 */
mtl_tensor *mtl_selu(mtl_tensor *a);                     /* scale * elu with alpha (Klambauer et al.) */
mtl_tensor *mtl_swish(mtl_tensor *a);                    /* x sigmoid(x) (silu) */
mtl_tensor *mtl_softplus(mtl_tensor *a);                 /* log(1 + e^x) */
mtl_tensor *mtl_softsign(mtl_tensor *a);                 /* x / (1 + |x|) */
/* where(mask, a, b): mask is any dtype, nonzero = take a; broadcasts. */
mtl_tensor *mtl_where(mtl_tensor *mask, mtl_tensor *a, mtl_tensor *b);
/* Comparisons, no gradient; float 0/1 results; broadcast. op: "eq","ne","lt","le","gt","ge" */
mtl_tensor *mtl_compare(const char *op, mtl_tensor *a, mtl_tensor *b);
/* a <op> s; float tensors compare with s rounded to float, int64 ones exactly. */
mtl_tensor *mtl_compare_scalar(const char *op, mtl_tensor *a, double s);
/* dtype conversion (float<->int64). Differentiable to float only. */
mtl_tensor *mtl_to_dtype(mtl_tensor *a, mtl_dtype d);

/* ---- reductions (ops/reduce.c) ------------------------------------------- */
/* dim = -1 means over all elements (result has 0 dims, i.e. a scalar). */
mtl_tensor *mtl_sum(mtl_tensor *a, int dim, bool keepdim);
mtl_tensor *mtl_mean(mtl_tensor *a, int dim, bool keepdim);
/* max/min: over a dim, *indices (may be NULL) receives int64 positions. */
mtl_tensor *mtl_max(mtl_tensor *a, int dim, bool keepdim, mtl_tensor **indices);
mtl_tensor *mtl_min(mtl_tensor *a, int dim, bool keepdim, mtl_tensor **indices);
mtl_tensor *mtl_softmax(mtl_tensor *a, int dim);
mtl_tensor *mtl_log_softmax(mtl_tensor *a, int dim);

/* ---- matrix products (ops/matmul.c) -------------------------------------- */
/* 2-D [m,k]x[k,n] via cblas_sgemm (transposed views passed as flags, not
 * copied), or batched 3-D [b,m,k]x[b,k,n]. */
mtl_tensor *mtl_matmul(mtl_tensor *a, mtl_tensor *b);
/* y = x W^T + bias (bias may be NULL): x [n,in], W [out,in]. */
mtl_tensor *mtl_linear(mtl_tensor *x, mtl_tensor *w, mtl_tensor *bias);
/* An activation fused into linear's output pass (and its derivative into the
 * backward's pass over the gradient). */
typedef enum { MTL_ACT_NONE = 0, MTL_ACT_RELU = 1 } mtl_activation;
/* y = act(x W^T + bias). Grouped forms (mixtures of experts), g groups:
 *   x [n,in],   W [g,out,in], bias [g,out] -> [n,g,out]  (every group reads x;
 *                                              one GEMM when W is contiguous)
 *   x [n,g,in], W [g,out,in], bias [g,out] -> [n,g,out]  (group k reads x[:,k,:])
 * Strided x and W go to BLAS as transpose flags and leading dimensions. */
mtl_tensor *mtl_linear_act(mtl_tensor *x, mtl_tensor *w, mtl_tensor *bias, mtl_activation act);

/* ---- bf16 inference (ops/linear_bf16.c) ----------------------------------
 * mtl_bf16_pack stores a bf16 copy of a weight [out,in] or [g,out,in] in its
 * storage, packed for the kernel (a snapshot: pack again after changing the
 * weight). mtl_linear_act then computes with it, accumulating in FP32, when
 * it records no gradient, x's columns are contiguous and mtl_bf16_available()
 * (the CPU has AVX512-BF16 and MTL_NO_BF16 is not set); otherwise in FP32. A
 * call that records a gradient (training) drops the packing. */
bool mtl_bf16_available(void);
/* "bf16 (...)" or "fp32 (why not bf16)": what packed weights will run in. */
const char *mtl_bf16_status(void);
int mtl_bf16_pack(mtl_tensor *w);
void mtl_bf16_unpack(mtl_tensor *w);
size_t mtl_bf16_packed_bytes(const mtl_tensor *w); /* 0: not packed */
/* Whether mtl_linear_act would use w's packing (available, same shape). */
bool mtl_bf16_usable(const mtl_tensor *w);
/* out [m, g*out] = act(x W^T + bias) with w's packing (for mtl_linear_act). */
int mtl_linear_bf16(const mtl_tensor *x, const mtl_tensor *w, const float *bias, mtl_activation act, float *out);

/* ---- packed FP32 inference (ops/linear_fp32.c) ---------------------------
 * mtl_linear_act computes every call that records no gradient (and is not
 * bf16's) with this kernel: each output is the bias (0 without one) plus
 * x_q * w_q for q = 0, 1, ... in order, one fmaf each, then the activation; the
 * same bits on every variant, thread count, and whether or not w was packed
 * beforehand with mtl_fp32_pack (a snapshot kept with the storage, used while
 * w is viewed with the shape it was packed from; otherwise w is packed for the
 * call). A call that records a gradient runs on BLAS and drops the packing.
 * MTL_FP32_KERNEL=avx512|avx2|scalar forces a variant (at most the CPU's best),
 * =blas sends inference to BLAS too (read once per process). */
typedef enum { MTL_FP32_BLAS = 0, MTL_FP32_SCALAR, MTL_FP32_AVX2, MTL_FP32_AVX512 } mtl_fp32_kernel;
mtl_fp32_kernel mtl_fp32_kernel_in_use(void);
/* "avx512", "avx2", "scalar" or "blas": the kernel FP32 inference runs on. */
const char *mtl_fp32_status(void);
int mtl_fp32_pack(mtl_tensor *w);
void mtl_fp32_unpack(mtl_tensor *w);
size_t mtl_fp32_packed_bytes(const mtl_tensor *w); /* 0: not packed */
/* out [m, g*out] = act(x W^T + bias), x [m,in] or [m,g,in] with any strides. */
int mtl_linear_fp32(const mtl_tensor *x, const mtl_tensor *w, const float *bias, mtl_activation act, float *out);

/* ---- shape and indexing (ops/shape.c) ------------------------------------ */
/* Views share a's storage (writes show through) and are differentiable. Error
 * messages print dims and positions 1-based, as Lua users see them. */
/* A view where the strides allow it, a copy otherwise. A shape entry of -1 is
 * inferred. */
mtl_tensor *mtl_reshape(mtl_tensor *a, int ndim, const int64_t *shape);
mtl_tensor *mtl_transpose(mtl_tensor *a, int d0, int d1);
/* perm: a->ndim entries, a permutation of 0..ndim-1; out dim i = a dim perm[i]. */
mtl_tensor *mtl_permute(mtl_tensor *a, const int *perm);
/* Drops dim if its size is 1 (else a plain view); dim = -1 drops all size-1 dims. */
mtl_tensor *mtl_squeeze(mtl_tensor *a, int dim);
/* Inserts a size-1 dim at position dim (0..ndim). */
mtl_tensor *mtl_unsqueeze(mtl_tensor *a, int dim);
/* Positions start..start+length-1 of dim (0 <= start <= size, length >= 0). */
mtl_tensor *mtl_narrow(mtl_tensor *a, int dim, int64_t start, int64_t length);
/* A differentiable copy when a is not contiguous; otherwise a new reference
 * to a itself. */
mtl_tensor *mtl_contiguous(mtl_tensor *a);
/* Same dtype; concat: same sizes except in dim; stack: same shapes, new dim
 * inserted at dim (0..ndim). float32 or int64. */
mtl_tensor *mtl_concat(int n, mtl_tensor *const *ts, int dim);
mtl_tensor *mtl_stack(int n, mtl_tensor *const *ts, int dim);
/* Cuts a along dim into n consecutive narrow views of the given sizes (which
 * must add up to a->shape[dim]). out receives n new references (all or none). */
int mtl_split(mtl_tensor *a, int dim, int n, const int64_t *sizes, mtl_tensor **out);
/* index: int64 1-D tensor of 0-based positions; repeats allowed (their
 * gradients add up). */
mtl_tensor *mtl_index_select(mtl_tensor *a, int dim, mtl_tensor *index);
/* out[i][j] = a[i][index[i][j]] (dim = 1), index int64 of 0-based positions,
 * same ndim as a, index->shape[d] <= a->shape[d] for d != dim. The result has
 * index's shape. */
mtl_tensor *mtl_gather(mtl_tensor *a, int dim, mtl_tensor *index);
/* Broadcast view to shape (stride 0 on expanded dims); -1 keeps a size; new
 * dims may be added on the left. */
mtl_tensor *mtl_expand(mtl_tensor *a, int ndim, const int64_t *shape);

/* ---- layers' building blocks (ops/nn.c) ---------------------------------- */
/* Inverted dropout, p in [0, 1): in training each element is kept with
 * probability 1-p (one draw of mtl's seeded stream per element, row-major)
 * and scaled by 1/(1-p). In eval, or with p = 0, returns a itself (a new
 * reference). */
mtl_tensor *mtl_dropout(mtl_tensor *a, double p, bool training);
/* Normalizes over the last dim (biased variance); weight/bias [last] or NULL. */
mtl_tensor *mtl_layer_norm(mtl_tensor *a, mtl_tensor *weight, mtl_tensor *bias, double eps);
/* a [n, c]; normalizes each column. In training uses batch stats (n > 1) and
 * updates running_mean/var in place when given (unbiased var; running =
 * (1-momentum) running + momentum batch, as in PyTorch); in eval uses them
 * (then they are required). Weight, bias, running stats: [c] or NULL. */
mtl_tensor *mtl_batch_norm(mtl_tensor *a, mtl_tensor *weight, mtl_tensor *bias,
                           mtl_tensor *running_mean, mtl_tensor *running_var,
                           bool training, double momentum, double eps);
/* The same followed by ReLU (relu = true) in the same pass over the output:
 * max(batch_norm(a, ...), 0), whose backward recomputes the mask from the
 * input (EasyRec's dense -> BN -> activation layers; nothing extra is kept). */
mtl_tensor *mtl_batch_norm_act(mtl_tensor *a, mtl_tensor *weight, mtl_tensor *bias,
                               mtl_tensor *running_mean, mtl_tensor *running_var,
                               bool training, double momentum, double eps, bool relu);

/* Mixture of experts: out [B,d] = sum_k gate[b,k] * E[b,k,:], the experts
 * given as nblocks blocks [B,n_i,d] (any strides) taken in order, so the gate
 * [B, sum n_i] weighs them as if they were concatenated along dim 1. */
mtl_tensor *mtl_mix(int nblocks, mtl_tensor *const *experts, mtl_tensor *gate);

/* ---- losses (ops/loss.c) ------------------------------------------------- */
typedef enum { MTL_REDUCE_MEAN = 0, MTL_REDUCE_SUM = 1, MTL_REDUCE_NONE = 2 } mtl_reduction;
/* weight and mask may be NULL; both shaped like logits (no broadcasting).
 * The mask holds 0/1 (float32 or int64); masked elements add exactly 0 to the
 * loss and get exactly 0 gradient. "mean" divides by the number of unmasked
 * elements (0 when none). Gradients for logits, target and weight. */
mtl_tensor *mtl_bce_with_logits(mtl_tensor *logits, mtl_tensor *target, mtl_tensor *weight,
                                mtl_tensor *mask, mtl_reduction red);
/* On probabilities in [0, 1] (checked); each log clamped at -100 (PyTorch
 * semantics). Same options as above. */
mtl_tensor *mtl_bce(mtl_tensor *p, mtl_tensor *target, mtl_tensor *weight,
                    mtl_tensor *mask, mtl_reduction red);
/* (a - target)^2, same shapes; gradients for both. */
mtl_tensor *mtl_mse(mtl_tensor *a, mtl_tensor *target, mtl_reduction red);
/* logits [n, c], target int64 [n] of 0-based classes (the binding converts
 * Lua's 1-based ones). "none" gives [n]. */
mtl_tensor *mtl_cross_entropy(mtl_tensor *logits, mtl_tensor *target, mtl_reduction red);

#endif
