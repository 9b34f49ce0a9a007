/* Lua binding of the metrics: core.metric_auc(pred, label[, mask]) etc.
 * (lua/mtl/metrics.lua wraps them as mtl.metrics.*). All arguments are
 * checked before anything is allocated, so an error cannot leak. */
#include <string.h>

#include "bind.h"
#include "mtl/metrics.h"

/* The tensor at idx must be a vector ([n] or [n,1]) of n values of dtype dt. */
static mtl_tensor *check_vector(lua_State *L, int idx, const char *fn, const char *what, int64_t n, mtl_dtype dt) {
  mtl_tensor *t = bind_test_tensor(L, idx);
  char s[64];
  if (!t) luaL_error(L, "%s: expected a tensor for %s (argument %d), got %s", fn, what, idx, luaL_typename(L, idx));
  if (t->dtype != dt) luaL_error(L, "%s: %s must be %s, got %s", fn, what, mtl_dtype_name(dt), mtl_dtype_name(t->dtype));
  if (t->numel != n || (t->ndim > 1 && t->numel != t->shape[0]))
    luaL_error(L, "%s: %s must be a vector of %d values like the prediction, got %s", fn, what, (int)n,
               mtl_shape_str(t, s, sizeof s));
  return t;
}

/* Contiguous copies (or references) of up to 3 tensors; NULL entries stay NULL. */
static int contiguous_all(mtl_tensor **in, mtl_tensor **out, int k) {
  int ok = 1;
  for (int i = 0; i < k; i++) {
    out[i] = in[i] ? mtl_tensor_contiguous_data(in[i]) : NULL;
    if (in[i] && !out[i]) ok = 0;
  }
  return ok;
}

typedef int (*masked_metric)(const float *, const float *, const float *, int64_t, double *);

static int masked(lua_State *L, const char *fn, masked_metric f) {
  mtl_tensor *p = bind_check_tensor(L, 1, fn);
  int64_t n = p->numel;
  mtl_tensor *in[3] = {check_vector(L, 1, fn, "the prediction", n, MTL_F32),
                       check_vector(L, 2, fn, "the label", n, MTL_F32),
                       lua_isnoneornil(L, 3) ? NULL : check_vector(L, 3, fn, "the mask", n, MTL_F32)};
  mtl_tensor *c[3];
  double v = 0;
  int rc = contiguous_all(in, c, 3) ? f(mtl_f32(c[0]), mtl_f32(c[1]), c[2] ? mtl_f32(c[2]) : NULL, n, &v) : -1;
  mtl_tensor_release_all(3, c);
  if (rc < 0) return bind_error(L);
  lua_pushnumber(L, v);
  return 1;
}

static int l_auc(lua_State *L) { return masked(L, "mtl.metrics.auc", mtl_metric_auc); }
static int l_logloss(lua_State *L) { return masked(L, "mtl.metrics.logloss", mtl_metric_logloss); }
static int l_calibration(lua_State *L) { return masked(L, "mtl.metrics.calibration", mtl_metric_calibration); }

/* gauc(pred, label, group int64[, reduction]) -> gauc, number of groups used */
static int l_gauc(lua_State *L) {
  const char *fn = "mtl.metrics.gauc";
  int64_t n = bind_check_tensor(L, 1, fn)->numel;
  mtl_tensor *in[3] = {check_vector(L, 1, fn, "the prediction", n, MTL_F32),
                       check_vector(L, 2, fn, "the label", n, MTL_F32),
                       check_vector(L, 3, fn, "the group ids", n, MTL_I64)};
  const char *red = luaL_optstring(L, 4, "mean");
  mtl_gauc_reduction r;
  if (!strcmp(red, "mean")) r = MTL_GAUC_MEAN;
  else if (!strcmp(red, "mean_by_sample_num")) r = MTL_GAUC_MEAN_BY_SAMPLES;
  else if (!strcmp(red, "mean_by_positive_num")) r = MTL_GAUC_MEAN_BY_POSITIVES;
  else
    return luaL_error(L, "%s: unknown reduction '%s' (expected mean, mean_by_sample_num or mean_by_positive_num)",
                      fn, red);
  mtl_tensor *c[3];
  double v = 0;
  int64_t used = 0;
  int rc = contiguous_all(in, c, 3) ? mtl_metric_gauc(mtl_f32(c[0]), mtl_f32(c[1]), mtl_i64(c[2]), n, r, &v, &used) : -1;
  mtl_tensor_release_all(3, c);
  if (rc < 0) return bind_error(L);
  lua_pushnumber(L, v);
  lua_pushnumber(L, (lua_Number)used);
  return 2;
}

void bind_metrics_open(lua_State *L, int mod, int methods) {
  (void)methods;
  static const luaL_Reg fns[] = {
    {"metric_auc", l_auc}, {"metric_gauc", l_gauc}, {"metric_logloss", l_logloss},
    {"metric_calibration", l_calibration}, {NULL, NULL},
  };
  bind_register_list(L, mod, 0, fns);
}
