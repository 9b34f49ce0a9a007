/* FP32 inference for mtl.linear: every forward that records no gradient runs
 * here (docs/performance.md, "Packed FP32 inference"). Weights are packed into
 * panels of 16 output columns (once, by mtl_fp32_pack, kept with the storage;
 * or per call when the weight has no packing), and each output is
 *
 *   y = act(fma(x[in-1], w[in-1], ... fma(x[1], w[1], fma(x[0], w[0], bias))))
 *
 * one fused multiply-add per input, in input order, starting from the bias
 * (0 without one); ReLU is max(y, 0). Every variant of the kernel (AVX-512,
 * AVX2, scalar fmaf: the best this CPU has, chosen at run time) and every
 * thread count computes exactly that, so inference gives the same bits whether
 * or not the weight was packed beforehand, on any of them: training's
 * evaluation, mtl eval / predict, export and serving agree bit for bit. A
 * forward that records gradients (training) runs on BLAS instead (its sums
 * are blocked and round differently) and drops the packing, which it makes
 * stale. MTL_FP32_KERNEL=avx512|avx2|scalar forces a variant (not beyond the
 * CPU's), MTL_FP32_KERNEL=blas sends inference to BLAS as before the kernel.
 *
 * Layout: a weight [g,out,in] (g = 1 for [out,in]) is packed per group into
 * ceil(out/16) panels; panel p holds, for each input q, the 16 floats
 * W[16p+j][q], j = 0..15 (zeros past out). */
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mtl/ops.h"

struct mtl_fp32_packing {
  int64_t g, out, in; /* the shape it was packed from */
  int64_t panels;     /* per group: ceil(out / 16) */
  float *data;        /* [g][panels][in][16] */
  size_t nbytes;
};

#define PANEL 16 /* output columns per panel */
#define MC 64    /* rows per part of the work (threads take whole parts) */

/* ---- the variant in use ------------------------------------------------- */

static pthread_once_t kernel_once = PTHREAD_ONCE_INIT;
static mtl_fp32_kernel kernel_in_use;

static void kernel_pick(void) {
  __builtin_cpu_init();
  mtl_fp32_kernel best = MTL_FP32_SCALAR;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = MTL_FP32_AVX2;
  if (__builtin_cpu_supports("avx512f")) best = MTL_FP32_AVX512;
  const char *want = getenv("MTL_FP32_KERNEL");
  if (want && !strcmp(want, "blas")) best = MTL_FP32_BLAS;
  else if (want && !strcmp(want, "scalar")) best = MTL_FP32_SCALAR;
  else if (want && !strcmp(want, "avx2") && best == MTL_FP32_AVX512) best = MTL_FP32_AVX2;
  kernel_in_use = best;
}

mtl_fp32_kernel mtl_fp32_kernel_in_use(void) {
  pthread_once(&kernel_once, kernel_pick);
  return kernel_in_use;
}

const char *mtl_fp32_status(void) {
  switch (mtl_fp32_kernel_in_use()) {
    case MTL_FP32_AVX512: return "avx512";
    case MTL_FP32_AVX2: return "avx2";
    case MTL_FP32_SCALAR: return "scalar";
    default: return "blas";
  }
}

/* ---- packing -------------------------------------------------------------- */

void mtl_fp32_packing_free(mtl_fp32_packing *p) {
  if (!p) return;
  mtl_free(p->data, p->nbytes);
  free(p);
}

/* A packing of w (contiguous or not), or NULL with the error set. */
static mtl_fp32_packing *pack_new(const mtl_tensor *w, const char *op) {
  char s[128];
  if (w->dtype != MTL_F32 || (w->ndim != 2 && w->ndim != 3))
    return (void)mtl_error("%s: expected a float32 weight [out,in] or [g,out,in], got %s %s", op,
                           mtl_dtype_name(w->dtype), mtl_shape_str(w, s, sizeof s)), NULL;
  mtl_fp32_packing *p = calloc(1, sizeof *p);
  if (!p) return (void)mtl_error("%s: out of memory", op), NULL;
  int d = w->ndim;
  p->g = d == 3 ? w->shape[0] : 1;
  p->out = w->shape[d - 2];
  p->in = w->shape[d - 1];
  p->panels = (p->out + PANEL - 1) / PANEL;
  p->nbytes = (size_t)(p->g * p->panels * p->in * PANEL) * sizeof(float);
  p->data = mtl_alloc(p->nbytes ? p->nbytes : 64);
  if (!p->data) {
    free(p);
    mtl_error_prefix(op);
    return NULL;
  }
  if (!p->nbytes) p->nbytes = 64;
  const float *base = mtl_f32(w);
  int64_t sg = d == 3 ? w->stride[0] : 0, so = w->stride[d - 2], si = w->stride[d - 1];
  float *dst = p->data;
  for (int64_t k = 0; k < p->g; k++)
    for (int64_t pn = 0; pn < p->panels; pn++)
      for (int64_t q = 0; q < p->in; q++)
        for (int64_t j = 0; j < PANEL; j++) {
          int64_t o = pn * PANEL + j;
          *dst++ = o < p->out ? base[k * sg + o * so + q * si] : 0.0f;
        }
  return p;
}

int mtl_fp32_pack(mtl_tensor *w) {
  mtl_fp32_packing *p = pack_new(w, "mtl.fp32_pack");
  if (!p) return -1;
  mtl_fp32_unpack(w);
  w->storage->fp32 = p;
  return 0;
}

void mtl_fp32_unpack(mtl_tensor *w) {
  mtl_fp32_packing_free(w->storage->fp32);
  w->storage->fp32 = NULL;
}

size_t mtl_fp32_packed_bytes(const mtl_tensor *w) {
  return w->storage->fp32 ? w->storage->fp32->nbytes : 0;
}

/* The packing of w's storage when it was made from w as it is viewed now. */
static const mtl_fp32_packing *packing_of(const mtl_tensor *w) {
  const mtl_fp32_packing *p = w->storage->fp32;
  if (!p || w->offset != 0 || !mtl_tensor_is_contiguous(w)) return NULL;
  int d = w->ndim;
  if (p->g != (d == 3 ? w->shape[0] : 1) || p->out != w->shape[d - 2] || p->in != w->shape[d - 1]) return NULL;
  return p;
}

/* ---- kernels ----------------------------------------------------------------
 * A tile: rows [0, mr) of x (row i at x + i * xr, input q at + q * xc) times
 * np panels (panel j at wp + j * pstride), cols valid columns of the 16 np,
 * stored to out (row stride ldo). */

#define MR512 8 /* AVX-512: 8 rows x 2 panels, 16 accumulators */
#define NP512 2
#define TGT512 __attribute__((target("avx512f")))

TGT512 static inline __attribute__((always_inline)) void tile512(const float *x, int64_t xr, int64_t xc, int64_t in,
                                                                 const float *wp, int64_t pstride, int mr, int np,
                                                                 const float *bias, bool relu, float *out,
                                                                 int64_t ldo, int64_t cols) {
  __m512 acc[MR512][NP512];
  __mmask16 mask[NP512];
  for (int j = 0; j < np; j++) {
    int64_t left = cols - j * PANEL;
    mask[j] = left >= PANEL ? 0xffff : (__mmask16)((1u << left) - 1);
    __m512 b = bias ? _mm512_maskz_loadu_ps(mask[j], bias + j * PANEL) : _mm512_setzero_ps();
    for (int i = 0; i < mr; i++) acc[i][j] = b;
  }
  for (int64_t q = 0; q < in; q++) {
    __m512 w[NP512];
    for (int j = 0; j < np; j++) w[j] = _mm512_load_ps(wp + j * pstride + q * PANEL);
    for (int i = 0; i < mr; i++) {
      __m512 a = _mm512_set1_ps(x[i * xr + q * xc]);
      for (int j = 0; j < np; j++) acc[i][j] = _mm512_fmadd_ps(a, w[j], acc[i][j]);
    }
  }
  __m512 zero = _mm512_setzero_ps();
  for (int i = 0; i < mr; i++)
    for (int j = 0; j < np; j++)
      _mm512_mask_storeu_ps(out + i * ldo + j * PANEL, mask[j], relu ? _mm512_max_ps(acc[i][j], zero) : acc[i][j]);
}

#define MR256 6 /* AVX2: 6 rows x 1 panel (2 ymm), 12 accumulators */
#define TGT256 __attribute__((target("avx2,fma")))

TGT256 static inline __attribute__((always_inline)) __m256i lanes_below(int64_t n) {
  __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n < 0 ? 0 : n > 8 ? 8 : n)), idx);
}

TGT256 static inline __attribute__((always_inline)) void tile256(const float *x, int64_t xr, int64_t xc, int64_t in,
                                                                 const float *wp, int mr, const float *bias,
                                                                 bool relu, float *out, int64_t ldo, int64_t cols) {
  __m256 acc[MR256][2];
  __m256i mask[2] = {lanes_below(cols), lanes_below(cols - 8)};
  for (int h = 0; h < 2; h++) {
    __m256 b = bias ? _mm256_maskload_ps(bias + 8 * h, mask[h]) : _mm256_setzero_ps();
    for (int i = 0; i < mr; i++) acc[i][h] = b;
  }
  for (int64_t q = 0; q < in; q++) {
    __m256 w0 = _mm256_load_ps(wp + q * PANEL), w1 = _mm256_load_ps(wp + q * PANEL + 8);
    for (int i = 0; i < mr; i++) {
      __m256 a = _mm256_broadcast_ss(x + i * xr + q * xc);
      acc[i][0] = _mm256_fmadd_ps(a, w0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(a, w1, acc[i][1]);
    }
  }
  __m256 zero = _mm256_setzero_ps();
  for (int i = 0; i < mr; i++)
    for (int h = 0; h < 2; h++)
      _mm256_maskstore_ps(out + i * ldo + 8 * h, mask[h], relu ? _mm256_max_ps(acc[i][h], zero) : acc[i][h]);
}

/* The cases of a switch over a tile's row count mr that call T(mr) for 1..5. */
#define ROWS_1_TO_5(T)                                                                                                 \
  case 1: T(1); break;                                                                                                 \
  case 2: T(2); break;                                                                                                 \
  case 3: T(3); break;                                                                                                 \
  case 4: T(4); break;                                                                                                 \
  case 5: T(5); break;

#define MRN 12 /* a panel's first 8 columns only (narrow outputs: gates, logits): 12 rows, one ymm each */

TGT256 static inline __attribute__((always_inline)) void tile_narrow(const float *x, int64_t xr, int64_t xc,
                                                                     int64_t in, const float *wp, int mr,
                                                                     const float *bias, bool relu, float *out,
                                                                     int64_t ldo, int64_t cols) {
  __m256 acc[MRN];
  __m256i mask = lanes_below(cols);
  __m256 b = bias ? _mm256_maskload_ps(bias, mask) : _mm256_setzero_ps();
  for (int i = 0; i < mr; i++) acc[i] = b;
  for (int64_t q = 0; q < in; q++) {
    __m256 w = _mm256_load_ps(wp + q * PANEL);
    for (int i = 0; i < mr; i++) acc[i] = _mm256_fmadd_ps(_mm256_broadcast_ss(x + i * xr + q * xc), w, acc[i]);
  }
  __m256 zero = _mm256_setzero_ps();
  for (int i = 0; i < mr; i++) _mm256_maskstore_ps(out + i * ldo, mask, relu ? _mm256_max_ps(acc[i], zero) : acc[i]);
}

/* rows rows of one panel with at most 8 columns. */
TGT256 static void narrow_rows(const float *x, int64_t xr, int64_t xc, int64_t in, const float *wp, int64_t rows,
                               const float *bias, bool relu, float *out, int64_t ldo, int64_t cols) {
  for (int64_t i = 0; i < rows; i += MRN) {
    int mr = rows - i < MRN ? (int)(rows - i) : MRN;
    const float *xi = x + i * xr;
    float *o = out + i * ldo;
#define T(R) tile_narrow(xi, xr, xc, in, wp, R, bias, relu, o, ldo, cols)
    switch (mr) {
      ROWS_1_TO_5(T)
      case 6: T(6); break;
      case 7: T(7); break;
      case 8: T(8); break;
      case 9: T(9); break;
      case 10: T(10); break;
      case 11: T(11); break;
      default: T(MRN); break;
    }
#undef T
  }
}

/* The same sums one output at a time (vmaxps(y, 0) is 0 for NaN y, as here). */
static void tile_scalar(const float *x, int64_t xr, int64_t xc, int64_t in, const float *wp, int64_t rows,
                        const float *bias, bool relu, float *out, int64_t ldo, int64_t cols) {
  for (int64_t i = 0; i < rows; i++)
    for (int64_t j = 0; j < cols; j++) {
      float acc = bias ? bias[j] : 0.0f;
      for (int64_t q = 0; q < in; q++) acc = fmaf(x[i * xr + q * xc], wp[q * PANEL + j], acc);
      out[i * ldo + j] = relu ? (acc > 0.0f ? acc : 0.0f) : acc;
    }
}

typedef struct {
  const mtl_fp32_packing *p;
  const float *x;                 /* x's first element */
  int64_t xs_row, xs_col, xs_grp; /* x strides (xs_grp 0: every group reads the same x) */
  const float *bias;              /* [g,out] contiguous, or NULL */
  bool relu;
  float *out; /* [m, g*out] */
  mtl_fp32_kernel kernel;
} fp32_job;

/* rows rows of x (from x) times np panels (from wp), into out: the tiles of
 * each variant. */
TGT512 static void rows512(const fp32_job *j, const float *x, const float *wp, int64_t pstride, int np, int64_t rows,
                           const float *bias, float *out, int64_t ldo, int64_t cols) {
  for (int64_t i = 0; i < rows; i += MR512) {
    int mr = rows - i < MR512 ? (int)(rows - i) : MR512;
    const float *xi = x + i * j->xs_row;
    float *o = out + i * ldo;
#define T(R, P) tile512(xi, j->xs_row, j->xs_col, j->p->in, wp, pstride, R, P, bias, j->relu, o, ldo, cols)
#define ROWS(P)                                                                                                        \
  switch (mr) {                                                                                                        \
    case 1: T(1, P); break;                                                                                            \
    case 2: T(2, P); break;                                                                                            \
    case 3: T(3, P); break;                                                                                            \
    case 4: T(4, P); break;                                                                                            \
    case 5: T(5, P); break;                                                                                            \
    case 6: T(6, P); break;                                                                                            \
    case 7: T(7, P); break;                                                                                            \
    default: T(MR512, P); break;                                                                                       \
  }
    if (np == NP512) {
      ROWS(NP512)
    } else {
      ROWS(1)
    }
#undef ROWS
#undef T
  }
}

TGT256 static void rows256(const fp32_job *j, const float *x, const float *wp, int64_t rows, const float *bias,
                           float *out, int64_t ldo, int64_t cols) {
  for (int64_t i = 0; i < rows; i += MR256) {
    int mr = rows - i < MR256 ? (int)(rows - i) : MR256;
    const float *xi = x + i * j->xs_row;
    float *o = out + i * ldo;
#define T(R) tile256(xi, j->xs_row, j->xs_col, j->p->in, wp, R, bias, j->relu, o, ldo, cols)
    switch (mr) {
      ROWS_1_TO_5(T)
      default: T(MR256); break;
    }
#undef T
  }
}

/* Rows [r0, r1) of the output: per group, per panel (AVX-512: per pair of
 * panels; their weights stay in cache), every tile of rows. */
static void fp32_rows(const fp32_job *j, int64_t r0, int64_t r1) {
  const mtl_fp32_packing *p = j->p;
  int64_t in = p->in, width = p->g * p->out, pstride = in * PANEL, rows = r1 - r0;
  int step = j->kernel == MTL_FP32_AVX512 ? NP512 : 1;
  for (int64_t k = 0; k < p->g; k++) {
    const float *x = j->x + k * j->xs_grp + r0 * j->xs_row;
    for (int64_t pn = 0; pn < p->panels; pn += step) {
      int np = p->panels - pn >= step ? step : 1;
      int64_t col = pn * PANEL, cols = p->out - col < np * PANEL ? p->out - col : np * PANEL;
      const float *bias = j->bias ? j->bias + k * p->out + col : NULL;
      const float *wp = p->data + (k * p->panels + pn) * pstride;
      float *out = j->out + r0 * width + k * p->out + col;
      if (j->kernel == MTL_FP32_SCALAR)
        tile_scalar(x, j->xs_row, j->xs_col, in, wp, rows, bias, j->relu, out, width, cols);
      else if (cols <= 8)
        narrow_rows(x, j->xs_row, j->xs_col, in, wp, rows, bias, j->relu, out, width, cols);
      else if (j->kernel == MTL_FP32_AVX512)
        rows512(j, x, wp, pstride, np, rows, bias, out, width, cols);
      else
        rows256(j, x, wp, rows, bias, out, width, cols);
    }
  }
}

static void fp32_part(void *ctx, int64_t r0, int64_t r1) {
  const fp32_job *j = ctx;
  for (int64_t c0 = r0; c0 < r1; c0 += MC) { /* a chunk of rows: its x stays in cache across the panels */
    int64_t c1 = r1 - c0 < MC ? r1 : c0 + MC;
    fp32_rows(j, c0, c1);
  }
}

int mtl_linear_fp32(const mtl_tensor *x, const mtl_tensor *w, const float *bias, mtl_activation act, float *out) {
  const mtl_fp32_packing *p = packing_of(w);
  mtl_fp32_packing *own = NULL;
  if (!p) { /* packed for this call only: the same sums as with a kept packing */
    own = pack_new(w, "mtl.linear");
    if (!own) return -1;
    p = own;
  }
  int64_t m = x->shape[0];
  fp32_job job = {p, mtl_f32(x), x->stride[0], x->stride[x->ndim - 1], x->ndim == 3 ? x->stride[1] : 0,
                  bias, act == MTL_ACT_RELU, out, mtl_fp32_kernel_in_use()};
  if (job.kernel == MTL_FP32_BLAS) job.kernel = MTL_FP32_SCALAR; /* not reached: mtl_linear_act asks first */
  if (mtl_get_num_threads() > 1 && m >= 2 * MC)
    mtl_parallel_for(m, MC, fp32_part, &job);
  else
    fp32_part(&job, 0, m);
  mtl_fp32_packing_free(own);
  return 0;
}
