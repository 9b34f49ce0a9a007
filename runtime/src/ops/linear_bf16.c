/* bf16 inference for mtl.linear: weights packed once into bf16 panels, products
 * on AVX512-BF16 (vdpbf16ps: pairs of bf16 products summed into FP32 lanes),
 * bias and activation applied to the accumulators before the one store of the
 * output. Used by mtl_linear_act when the weight's storage holds a packing
 * (mtl_bf16_pack), no gradient is recorded, and the CPU has the instructions
 * (checked at run time; MTL_NO_BF16=1 in the environment turns it off): every
 * other call takes the FP32 path (docs/performance.md, "bf16 inference").
 *
 * Layouts. A weight [g,out,in] (g = 1 for a 2-D weight) is packed per group
 * into panels of 16 output columns; panel p holds, for each pair q of inputs,
 * 32 bf16: W[16p+j][2q], W[16p+j][2q+1] for j = 0..15 (zeros past out / in).
 * Activations are converted per call into rows of kp = in rounded up to even
 * bf16 (zero padded), so one 32-bit broadcast of row i's pair q times a panel's
 * pair q adds x_i . W_j over those two inputs into lane j. */
#include <immintrin.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mtl/ops.h"

struct mtl_bf16_packing {
  int64_t g, out, in; /* the shape it was packed from */
  int64_t kp;         /* in rounded up to even */
  int64_t panels;     /* per group: ceil(out / 16) */
  uint16_t *data;     /* [g][panels][kp/2][16][2] */
  size_t nbytes;
};

#define PANEL 16 /* output columns per panel: one zmm of FP32 */
#define MR 8     /* rows per tile */
#define NP 2     /* panels per tile: MR x NP accumulators */
#define MC 64    /* rows converted to bf16 at a time (one chunk) */

/* Round to nearest even, as vcvtne2ps2bf16 does; NaN stays NaN. */
static uint16_t to_bf16(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}

static bool turned_off(void) {
  const char *off = getenv("MTL_NO_BF16");
  return off && *off && strcmp(off, "0") != 0;
}

static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;
static bool cpu_ok;

static void cpu_check(void) {
  __builtin_cpu_init();
  cpu_ok = !turned_off() && __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
}

bool mtl_bf16_available(void) {
  pthread_once(&cpu_once, cpu_check);
  return cpu_ok;
}

const char *mtl_bf16_status(void) {
  if (mtl_bf16_available()) return "bf16 (AVX512-BF16 products, FP32 accumulation)";
  if (turned_off()) return "fp32 (bf16 turned off by MTL_NO_BF16)";
  return "fp32 (this CPU lacks AVX512-BF16)";
}

void mtl_bf16_packing_free(mtl_bf16_packing *p) {
  if (!p) return;
  mtl_free(p->data, p->nbytes);
  free(p);
}

int mtl_bf16_pack(mtl_tensor *w) {
  char s[128];
  if (w->dtype != MTL_F32 || (w->ndim != 2 && w->ndim != 3))
    return mtl_error("mtl.bf16_pack: expected a float32 weight [out,in] or [g,out,in], got %s %s",
                     mtl_dtype_name(w->dtype), mtl_shape_str(w, s, sizeof s));
  mtl_bf16_packing *p = calloc(1, sizeof *p);
  if (!p) return mtl_error("mtl.bf16_pack: out of memory");
  int d = w->ndim;
  p->g = d == 3 ? w->shape[0] : 1;
  p->out = w->shape[d - 2];
  p->in = w->shape[d - 1];
  p->kp = (p->in + 1) & ~(int64_t)1;
  p->panels = (p->out + PANEL - 1) / PANEL;
  p->nbytes = (size_t)(p->g * p->panels * p->kp * PANEL) * sizeof(uint16_t);
  p->data = mtl_alloc(p->nbytes);
  if (!p->data) {
    free(p);
    mtl_error_prefix("mtl.bf16_pack");
    return -1;
  }
  const float *base = mtl_f32(w);
  int64_t sg = d == 3 ? w->stride[0] : 0, so = w->stride[d - 2], si = w->stride[d - 1];
  uint16_t *dst = p->data;
  for (int64_t k = 0; k < p->g; k++)
    for (int64_t pn = 0; pn < p->panels; pn++)
      for (int64_t q = 0; q < p->kp / 2; q++)
        for (int64_t j = 0; j < PANEL; j++)
          for (int64_t h = 0; h < 2; h++) {
            int64_t o = pn * PANEL + j, i = 2 * q + h;
            *dst++ = o < p->out && i < p->in ? to_bf16(base[k * sg + o * so + i * si]) : 0;
          }
  mtl_bf16_unpack(w);
  w->storage->bf16 = p;
  return 0;
}

void mtl_bf16_unpack(mtl_tensor *w) {
  mtl_bf16_packing_free(w->storage->bf16);
  w->storage->bf16 = NULL;
}

size_t mtl_bf16_packed_bytes(const mtl_tensor *w) {
  return w->storage->bf16 ? w->storage->bf16->nbytes : 0;
}

/* The packing of w's storage when it was made from w as it is viewed now. */
static const mtl_bf16_packing *packing_of(const mtl_tensor *w) {
  const mtl_bf16_packing *p = w->storage->bf16;
  if (!p || w->offset != 0 || !mtl_tensor_is_contiguous(w)) return NULL;
  int d = w->ndim;
  if (p->g != (d == 3 ? w->shape[0] : 1) || p->out != w->shape[d - 2] || p->in != w->shape[d - 1]) return NULL;
  return p;
}

bool mtl_bf16_usable(const mtl_tensor *w) {
  return mtl_bf16_available() && packing_of(w) != NULL;
}

#define TGT __attribute__((target("avx512bf16,avx512f,avx512bw,avx512vl")))

/* Rows [0, rows) of x (row stride ldx floats, contiguous columns) into bf16
 * rows of kp elements, zero padded. */
TGT static void convert_rows(const float *x, int64_t ldx, int64_t rows, int64_t in, int64_t kp, uint16_t *dst) {
  for (int64_t r = 0; r < rows; r++) {
    const float *src = x + r * ldx;
    uint16_t *d = dst + r * kp;
    for (int64_t c = 0; c < kp; c += 32) {
      int64_t n0 = in - c, n1 = in - c - 16;
      __mmask16 m0 = n0 >= 16 ? 0xffff : n0 > 0 ? (__mmask16)((1u << n0) - 1) : 0;
      __mmask16 m1 = n1 >= 16 ? 0xffff : n1 > 0 ? (__mmask16)((1u << n1) - 1) : 0;
      __m512 lo = _mm512_maskz_loadu_ps(m0, src + c), hi = _mm512_maskz_loadu_ps(m1, src + c + 16);
      __m512bh v = _mm512_cvtne2ps_pbh(hi, lo);
      int64_t left = kp - c;
      __mmask32 ms = left >= 32 ? 0xffffffffu : (__mmask32)((1u << left) - 1);
      _mm512_mask_storeu_epi16(d + c, ms, (__m512i)v);
    }
  }
}

/* One tile: rows [0, mr) of xb times panels [0, np) of wp, plus bias, then the
 * activation, stored to out (cols valid columns of the tile's 16 np). */
TGT static inline __attribute__((always_inline)) void tile(const uint16_t *xb, int64_t kp, const uint16_t *wp,
                                                           int64_t pstride, int mr, int np, const float *bias,
                                                           bool relu, float *out, int64_t ldo, int64_t cols) {
  __m512 acc[MR][NP];
  __mmask16 mask[NP];
  for (int j = 0; j < np; j++) {
    int64_t left = cols - j * PANEL;
    mask[j] = left >= PANEL ? 0xffff : (__mmask16)((1u << left) - 1);
    __m512 b = bias ? _mm512_maskz_loadu_ps(mask[j], bias + j * PANEL) : _mm512_setzero_ps();
    for (int i = 0; i < mr; i++) acc[i][j] = b;
  }
  int64_t pairs = kp / 2;
  for (int64_t q = 0; q < pairs; q++) {
    __m512bh w[NP];
    for (int j = 0; j < np; j++) w[j] = (__m512bh)_mm512_loadu_si512(wp + j * pstride + q * 2 * PANEL);
    for (int i = 0; i < mr; i++) {
      int32_t pair;
      memcpy(&pair, xb + i * kp + 2 * q, sizeof pair);
      __m512bh a = (__m512bh)_mm512_set1_epi32(pair);
      for (int j = 0; j < np; j++) acc[i][j] = _mm512_dpbf16_ps(acc[i][j], a, w[j]);
    }
  }
  __m512 zero = _mm512_setzero_ps();
  for (int i = 0; i < mr; i++)
    for (int j = 0; j < np; j++) {
      __m512 v = relu ? _mm512_max_ps(acc[i][j], zero) : acc[i][j];
      _mm512_mask_storeu_ps(out + i * ldo + j * PANEL, mask[j], v);
    }
}

/* The tile for mr rows and np panels, with both known to the compiler. */
TGT static void tile_any(const uint16_t *xb, int64_t kp, const uint16_t *wp, int64_t pstride, int mr, int np,
                         const float *bias, bool relu, float *out, int64_t ldo, int64_t cols) {
#define TILE(R, P) tile(xb, kp, wp, pstride, R, P, bias, relu, out, ldo, cols)
#define ROWS(P)                                                                                                        \
  switch (mr) {                                                                                                        \
    case 1: TILE(1, P); break;                                                                                         \
    case 2: TILE(2, P); break;                                                                                         \
    case 3: TILE(3, P); break;                                                                                         \
    case 4: TILE(4, P); break;                                                                                         \
    case 5: TILE(5, P); break;                                                                                         \
    case 6: TILE(6, P); break;                                                                                         \
    case 7: TILE(7, P); break;                                                                                         \
    default: TILE(MR, P); break;                                                                                       \
  }
  if (np == NP) {
    ROWS(NP)
  } else {
    ROWS(1)
  }
#undef ROWS
#undef TILE
}

typedef struct {
  const mtl_bf16_packing *p;
  const float *x;         /* x's first element */
  int64_t xs_row, xs_grp; /* x strides (xs_grp 0: every group reads the same x) */
  const float *bias;      /* [g,out] contiguous, or NULL */
  bool relu;
  float *out; /* [m, g*out] */
  int failed; /* a part could not get its buffer */
} bf16_job;

/* Rows [r0, r1) of the output. */
TGT static void bf16_part(void *ctx, int64_t r0, int64_t r1) {
  bf16_job *j = ctx;
  const mtl_bf16_packing *p = j->p;
  int64_t kp = p->kp, width = p->g * p->out, pstride = kp * PANEL;
  size_t bytes = (size_t)(MC * kp + 32) * sizeof(uint16_t);
  uint16_t *xb = mtl_alloc(bytes);
  if (!xb) { j->failed = 1; return; }
  for (int64_t c0 = r0; c0 < r1; c0 += MC) {
    int64_t rows = r1 - c0 < MC ? r1 - c0 : MC;
    for (int64_t k = 0; k < p->g; k++) {
      if (k == 0 || j->xs_grp != 0)
        convert_rows(j->x + c0 * j->xs_row + k * j->xs_grp, j->xs_row, rows, p->in, kp, xb);
      const uint16_t *wg = p->data + k * p->panels * pstride;
      for (int64_t pn = 0; pn < p->panels; pn += NP) {
        int np = p->panels - pn >= NP ? NP : 1;
        int64_t col = pn * PANEL, cols = p->out - col < np * PANEL ? p->out - col : np * PANEL;
        const float *bias = j->bias ? j->bias + k * p->out + col : NULL;
        for (int64_t i = 0; i < rows; i += MR) {
          int mr = rows - i < MR ? (int)(rows - i) : MR;
          tile_any(xb + i * kp, kp, wg + pn * pstride, pstride, mr, np, bias, j->relu,
                   j->out + (c0 + i) * width + k * p->out + col, width, cols);
        }
      }
    }
  }
  mtl_free(xb, bytes);
}

int mtl_linear_bf16(const mtl_tensor *x, const mtl_tensor *w, const float *bias, mtl_activation act, float *out) {
  const mtl_bf16_packing *p = packing_of(w);
  if (!p) return mtl_error("mtl.linear: bf16: the weight has no packing of its current shape");
  int64_t m = x->shape[0];
  bf16_job job = {p, mtl_f32(x), x->stride[0], x->ndim == 3 ? x->stride[1] : 0,
                  bias, act == MTL_ACT_RELU, out, 0};
  if (mtl_get_num_threads() > 1 && m >= 2 * MC)
    mtl_parallel_for(m, MC, bf16_part, &job);
  else
    bf16_part(&job, 0, m);
  if (job.failed) return mtl_error("mtl.linear: bf16: out of memory for the converted rows");
  return 0;
}
