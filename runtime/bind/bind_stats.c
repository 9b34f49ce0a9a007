/* Lua binding of the statistics features, impression labels and CSV output
 * (runtime/src/stats.c). lua/mtl/stats.lua and lua/mtl/samples.lua build the
 * option tables. This file only converts them (tensors to arrays, 1-based
 * indices to 0-based, numbers to integers): the core checks every value and
 * limit (mtl/stats.h), once. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bind.h"
#include "mtl/stats.h"

/* The contiguous int64 [n] tensor at stack index idx, called `what` in
 * errors (*n = -1: any length, set into *n). */
static const int64_t *check_ids(lua_State *L, const char *fn, int idx, const char *what, int64_t *n) {
  mtl_tensor *x = bind_test_tensor(L, idx);
  if (!x) luaL_error(L, "%s: %s must be an int64 tensor, got %s", fn, what, luaL_typename(L, idx));
  if (x->dtype != MTL_I64 || x->ndim != 1 || !mtl_tensor_is_contiguous(x)) {
    char shape[64];
    luaL_error(L, "%s: %s must be a contiguous int64 [n] tensor, got %s %s", fn, what, mtl_dtype_name(x->dtype),
               mtl_shape_str(x, shape, sizeof shape));
  }
  if (*n < 0)
    *n = x->shape[0];
  else if (x->shape[0] != *n)
    luaL_error(L, "%s: %s has %d values, expected %d", fn, what, (int)x->shape[0], (int)*n);
  return mtl_i64(x);
}

/* check_ids for t[key] (`table.key` in errors); NULL when absent and optional. */
static const int64_t *ids_field(lua_State *L, const char *fn, int t, const char *table, const char *key, int64_t *n,
                                bool optional) {
  lua_getfield(L, t, key);
  if (optional && lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return NULL;
  }
  char what[128];
  snprintf(what, sizeof what, "%s.%s", table, key);
  const int64_t *ids = check_ids(L, fn, -1, what, n);
  lua_pop(L, 1); /* still referenced by the options table */
  return ids;
}

/* The number at stack index idx as an integer (whole, within int64's range):
 * a conversion only, the core checks the value. */
static int64_t whole_number(lua_State *L, int idx, bool *ok) {
  double v = lua_type(L, idx) == LUA_TNUMBER ? lua_tonumber(L, idx) : NAN;
  *ok = v == floor(v) && fabs(v) <= 9.2e18;
  return *ok ? (int64_t)v : 0;
}

/* As int, clamped (an out-of-range count or index stays out of range). */
static int clamp_int(int64_t v) { return v > INT_MAX ? INT_MAX : v < INT_MIN ? INT_MIN : (int)v; }

/* Keeps the value on top of the stack alive in the anchor table (at stack
 * index 2) until the call returns, and pops it. */
static void anchor(lua_State *L) { lua_rawseti(L, 2, (int)lua_objlen(L, 2) + 1); }

/* The table at t[key] (pushed), or nothing pushed and 0 when absent and optional. */
static int table_field(lua_State *L, const char *fn, int t, const char *key, bool optional) {
  lua_getfield(L, t, key);
  if (lua_istable(L, -1)) return lua_gettop(L);
  if (optional && lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  return luaL_error(L, "%s: option '%s' must be a table, got %s", fn, key, luaL_typename(L, -1));
}

static double number_field(lua_State *L, const char *fn, int t, const char *what, int i, const char *key, double def) {
  lua_getfield(L, t, key);
  double v = def;
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TNUMBER)
      luaL_error(L, "%s: %s %d: '%s' must be a number, got %s", fn, what, i, key, luaL_typename(L, -1));
    v = lua_tonumber(L, -1);
  }
  lua_pop(L, 1);
  return v;
}

/* A 1-based index at t[key], returned 0-based (the core checks its range). */
static int index_field(lua_State *L, const char *fn, int t, const char *what, int i, const char *key) {
  lua_getfield(L, t, key);
  bool ok;
  int64_t v = whole_number(L, -1, &ok);
  if (!ok) {
    if (lua_type(L, -1) == LUA_TNUMBER)
      luaL_error(L, "%s: %s %d: '%s' must be a whole number, got %g", fn, what, i, key, lua_tonumber(L, -1));
    luaL_error(L, "%s: %s %d: '%s' must be a number, got %s", fn, what, i, key, luaL_typename(L, -1));
  }
  lua_pop(L, 1);
  return clamp_int(v - 1);
}

static void entity_table(lua_State *L, const char *fn, int opts, const char *key, mtl_stats_table *out) {
  memset(out, 0, sizeof *out);
  int t = table_field(L, fn, opts, key, true);
  if (!t) return;
  out->n = -1;
  out->id = ids_field(L, fn, t, key, "id", &out->n, false);
  int props = table_field(L, fn, t, "props", true);
  if (props) {
    int np = (int)lua_objlen(L, props);
    const int64_t **cols = lua_newuserdata(L, sizeof *cols * (size_t)(np > 0 ? np : 1));
    anchor(L);
    for (int p = 0; p < np; p++) {
      char what[128];
      snprintf(what, sizeof what, "%s.props[%d]", key, p + 1);
      lua_rawgeti(L, props, p + 1);
      cols[p] = check_ids(L, fn, -1, what, &out->n);
      lua_pop(L, 1); /* still referenced by the props table */
    }
    out->nprops = np;
    out->props = cols;
  }
  lua_settop(L, t - 1);
}

static mtl_stats_field parse_field(lua_State *L, const char *fn, int obj, int f, int idx) {
  static const char *names[] = {"user", "item", "trigger", "user_prop", "item_prop", "trigger_prop"};
  mtl_stats_field fd = {MTL_STATS_USER, 0};
  const char *kind = NULL;
  if (lua_type(L, idx) == LUA_TSTRING) {
    kind = lua_tostring(L, idx);
  } else if (lua_istable(L, idx)) {
    lua_rawgeti(L, idx, 1);
    kind = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    lua_pop(L, 1); /* the string stays in the field table */
    lua_rawgeti(L, idx, 2);
    bool ok;
    int64_t p = whole_number(L, -1, &ok);
    lua_pop(L, 1);
    if (!ok) luaL_error(L, "%s: object %d, field %d: expected {kind, property number}", fn, obj, f);
    fd.prop = clamp_int(p - 1);
  }
  for (int k = 0; k < 6; k++)
    if (kind && !strcmp(kind, names[k])) {
      fd.kind = (mtl_stats_field_kind)k;
      if ((k >= MTL_STATS_USER_PROP) != lua_istable(L, idx))
        luaL_error(L, "%s: object %d, field %d: %s", fn, obj, f,
                   k >= MTL_STATS_USER_PROP ? "a property field is {kind, property number}" : "expected a string");
      return fd;
    }
  luaL_error(L, "%s: object %d, field %d: expected user, item, trigger or {user_prop|item_prop|trigger_prop, n}", fn,
             obj, f);
  return fd;
}

/* core.stats_compute(opts) -> float [samples, specs], report */
static int l_stats_compute(lua_State *L) {
  const char *fn = "mtl.stats.compute";
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_newtable(L); /* the anchor of temporary arrays */
  mtl_stats_options o;
  memset(&o, 0, sizeof o);
  int ev = table_field(L, fn, 1, "events", false);
  o.nevents = -1;
  o.event_time = ids_field(L, fn, ev, "events", "time", &o.nevents, false);
  o.event_user = ids_field(L, fn, ev, "events", "user", &o.nevents, false);
  o.event_item = ids_field(L, fn, ev, "events", "item", &o.nevents, false);
  o.event_trigger = ids_field(L, fn, ev, "events", "trigger", &o.nevents, true);
  o.event_type = ids_field(L, fn, ev, "events", "type", &o.nevents, false);
  lua_settop(L, 2);
  int64_t ntypes = -1;
  lua_getfield(L, 1, "type_codes");
  o.type_codes = check_ids(L, fn, -1, "type_codes", &ntypes);
  lua_pop(L, 1);
  o.ntypes = clamp_int(ntypes);
  entity_table(L, fn, 1, "users", &o.users);
  entity_table(L, fn, 1, "items", &o.items);
  int sm = table_field(L, fn, 1, "samples", false);
  o.nsamples = -1;
  o.sample_time = ids_field(L, fn, sm, "samples", "time", &o.nsamples, false);
  o.sample_user = ids_field(L, fn, sm, "samples", "user", &o.nsamples, false);
  o.sample_item = ids_field(L, fn, sm, "samples", "item", &o.nsamples, false);
  o.sample_trigger = ids_field(L, fn, sm, "samples", "trigger", &o.nsamples, true);
  lua_settop(L, 2);

  int wt = table_field(L, fn, 1, "windows", false);
  int nw = (int)lua_objlen(L, wt);
  int64_t *windows = lua_newuserdata(L, sizeof *windows * (size_t)(nw > 0 ? nw : 1));
  anchor(L);
  for (int w = 0; w < nw; w++) {
    lua_rawgeti(L, wt, w + 1);
    bool ok;
    windows[w] = whole_number(L, -1, &ok);
    if (!ok) return luaL_error(L, "%s: window %d must be a whole number of time units", fn, w + 1);
    lua_pop(L, 1);
  }
  o.nwindows = nw;
  o.windows = windows;
  lua_settop(L, 2);

  int ot = table_field(L, fn, 1, "objects", false);
  int nobj = (int)lua_objlen(L, ot);
  mtl_stats_object *objects = lua_newuserdata(L, sizeof *objects * (size_t)(nobj > 0 ? nobj : 1));
  anchor(L);
  for (int i = 0; i < nobj; i++) {
    lua_rawgeti(L, ot, i + 1);
    int ob = lua_gettop(L);
    if (!lua_istable(L, ob)) return luaL_error(L, "%s: object %d must be a list of fields", fn, i + 1);
    int nf = (int)lua_objlen(L, ob);
    objects[i].nfields = nf; /* the core checks the count; only the fields that fit are read */
    for (int f = 0; f < nf && f < MTL_STATS_MAX_FIELDS; f++) {
      lua_rawgeti(L, ob, f + 1);
      objects[i].fields[f] = parse_field(L, fn, i + 1, f + 1, lua_gettop(L));
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  o.nobjects = nobj;
  o.objects = objects;
  lua_settop(L, 2);

  int st = table_field(L, fn, 1, "specs", false);
  int ns = (int)lua_objlen(L, st);
  mtl_stats_spec *specs = lua_newuserdata(L, sizeof *specs * (size_t)(ns > 0 ? ns : 1));
  anchor(L);
  for (int j = 0; j < ns; j++) {
    lua_rawgeti(L, st, j + 1);
    int sp = lua_gettop(L);
    if (!lua_istable(L, sp)) return luaL_error(L, "%s: statistic %d must be a table", fn, j + 1);
    lua_getfield(L, sp, "kind");
    const char *kind = lua_tostring(L, -1);
    mtl_stats_spec *s = &specs[j];
    memset(s, 0, sizeof *s);
    if (kind && !strcmp(kind, "count"))
      s->kind = MTL_STATS_COUNT;
    else if (kind && !strcmp(kind, "rate"))
      s->kind = MTL_STATS_RATE;
    else if (kind && !strcmp(kind, "rank"))
      s->kind = MTL_STATS_RANK;
    else
      return luaL_error(L, "%s: statistic %d: kind must be count, rate or rank", fn, j + 1);
    lua_pop(L, 1);
    s->object = index_field(L, fn, sp, "statistic", j + 1, "object");
    s->window = index_field(L, fn, sp, "statistic", j + 1, "window");
    s->event = index_field(L, fn, sp, "statistic", j + 1, "event");
    if (s->kind == MTL_STATS_RATE) {
      s->denominator = index_field(L, fn, sp, "statistic", j + 1, "denominator");
      s->alpha = number_field(L, fn, sp, "statistic", j + 1, "alpha", 0);
      s->beta = number_field(L, fn, sp, "statistic", j + 1, "beta", 0);
    }
    if (s->kind == MTL_STATS_RANK) s->group = index_field(L, fn, sp, "statistic", j + 1, "group");
    lua_pop(L, 1);
  }
  o.nspecs = ns;
  o.specs = specs;
  lua_settop(L, 2);

  lua_getfield(L, 1, "cache_bytes_max");
  if (!lua_isnil(L, -1)) {
    double v = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : -1;
    if (!(v >= 1 && v <= 1e18) || v != floor(v))
      return luaL_error(L, "%s: option 'cache_bytes_max' must be a whole number >= 1", fn);
    o.cache_bytes_max = (size_t)v;
  }
  lua_pop(L, 1);
  int64_t shape[2] = {o.nsamples, ns};
  mtl_tensor **slot = bind_slot(L);
  mtl_tensor *out = mtl_tensor_zeros(MTL_F32, 2, shape);
  if (!out) return bind_error(L);
  *slot = out;
  mtl_stats_report rep;
  if (mtl_stats_compute(&o, mtl_f32(out), &rep) < 0) return bind_error(L);
  lua_createtable(L, 0, 2);
  lua_pushnumber(L, (lua_Number)rep.events_used);
  lua_setfield(L, -2, "events_used");
  lua_pushnumber(L, (lua_Number)rep.events_unknown_type);
  lua_setfield(L, -2, "events_unknown_type");
  return 2;
}

/* An int64 code: a number, or a 0-dim / one-element int64 tensor (string hashes). */
static int64_t code_field(lua_State *L, const char *fn, int t, const char *key) {
  lua_getfield(L, t, key);
  mtl_tensor *x = bind_test_tensor(L, -1);
  int64_t v = 0;
  if (x && x->dtype == MTL_I64 && x->numel == 1) {
    v = mtl_i64(x)[0];
  } else if (lua_type(L, -1) == LUA_TNUMBER) {
    double d = lua_tonumber(L, -1);
    if (!(fabs(d) <= 9007199254740992.0) || d != floor(d))
      luaL_error(L, "%s: option '%s' must be a whole number or an int64 tensor", fn, key);
    v = (int64_t)d;
  } else {
    luaL_error(L, "%s: option '%s' must be a whole number or an int64 tensor, got %s", fn, key, luaL_typename(L, -1));
  }
  lua_pop(L, 1);
  return v;
}

static int64_t window_field(lua_State *L, const char *fn, int t, const char *key) {
  lua_getfield(L, t, key);
  bool ok;
  int64_t v = whole_number(L, -1, &ok);
  if (!ok) luaL_error(L, "%s: option '%s' must be a whole number of time units", fn, key);
  lua_pop(L, 1);
  return v;
}

/* core.samples_label(opts) -> is_click, is_pay, click_time (int64 [n]), report */
static int l_samples_label(lua_State *L) {
  const char *fn = "mtl.samples.label";
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  mtl_samples_label_options o;
  memset(&o, 0, sizeof o);
  int im = table_field(L, fn, 1, "impressions", false);
  o.nimpressions = -1;
  o.impression_time = ids_field(L, fn, im, "impressions", "time", &o.nimpressions, false);
  o.impression_user = ids_field(L, fn, im, "impressions", "user", &o.nimpressions, false);
  o.impression_item = ids_field(L, fn, im, "impressions", "item", &o.nimpressions, false);
  int ev = table_field(L, fn, 1, "events", false);
  o.nevents = -1;
  o.event_time = ids_field(L, fn, ev, "events", "time", &o.nevents, false);
  o.event_user = ids_field(L, fn, ev, "events", "user", &o.nevents, false);
  o.event_item = ids_field(L, fn, ev, "events", "item", &o.nevents, false);
  o.event_type = ids_field(L, fn, ev, "events", "type", &o.nevents, false);
  lua_settop(L, 1);
  o.click_code = code_field(L, fn, 1, "click_code");
  o.pay_code = code_field(L, fn, 1, "pay_code");
  o.click_window = window_field(L, fn, 1, "click_window");
  o.pay_window = window_field(L, fn, 1, "pay_window");
  int64_t shape[1] = {o.nimpressions};
  mtl_tensor **s1 = bind_slot(L), **s2 = bind_slot(L), **s3 = bind_slot(L);
  if (!(*s1 = mtl_tensor_new(MTL_I64, 1, shape)) || !(*s2 = mtl_tensor_new(MTL_I64, 1, shape)) ||
      !(*s3 = mtl_tensor_new(MTL_I64, 1, shape)))
    return bind_error(L);
  mtl_samples_label_report rep;
  if (mtl_samples_label(&o, mtl_i64(*s1), mtl_i64(*s2), mtl_i64(*s3), &rep) < 0) return bind_error(L);
  lua_createtable(L, 0, 4);
  lua_pushnumber(L, (lua_Number)rep.clicks);
  lua_setfield(L, -2, "clicks");
  lua_pushnumber(L, (lua_Number)rep.clicks_attributed);
  lua_setfield(L, -2, "clicks_attributed");
  lua_pushnumber(L, (lua_Number)rep.purchases);
  lua_setfield(L, -2, "purchases");
  lua_pushnumber(L, (lua_Number)rep.purchases_attributed);
  lua_setfield(L, -2, "purchases_attributed");
  return 4;
}

/* The {{name, tensor[, k]}, ...} list at idx (k: column k of a [n, m]
 * tensor), in a userdata array; pushes an anchor table (holding the array and
 * any views) and leaves it on the stack. */
static mtl_stats_csv_column *csv_columns(lua_State *L, const char *fn, int idx, int *n) {
  luaL_checktype(L, idx, LUA_TTABLE);
  int nc = (int)lua_objlen(L, idx);
  if (nc < 1 || nc > 100000) luaL_error(L, "%s: expected 1 to 100000 columns, got %d", fn, nc);
  lua_newtable(L);
  int anchor_at = lua_gettop(L);
  mtl_stats_csv_column *cols = lua_newuserdata(L, sizeof *cols * (size_t)nc);
  lua_rawseti(L, anchor_at, 0);
  for (int c = 0; c < nc; c++) {
    lua_rawgeti(L, idx, c + 1);
    int ct = lua_gettop(L);
    if (!lua_istable(L, ct)) luaL_error(L, "%s: column %d must be {name, tensor}", fn, c + 1);
    lua_rawgeti(L, ct, 1);
    lua_rawgeti(L, ct, 2);
    mtl_tensor *t = bind_test_tensor(L, -1);
    if (lua_type(L, -2) != LUA_TSTRING || !t)
      luaL_error(L, "%s: column %d must be {name, tensor[, column of a 2-D tensor]}", fn, c + 1);
    cols[c].name = lua_tostring(L, -2); /* kept alive by the column table */
    lua_rawgeti(L, ct, 3);
    if (!lua_isnil(L, -1)) { /* column k of a [n, m] tensor: a strided 1-D view */
      double k = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : 0;
      if (t->ndim != 2 || !(k >= 1 && k <= (double)t->shape[1]) || k != floor(k))
        luaL_error(L, "%s: column %d: expected a 2-D tensor and a column number in 1..its width", fn, c + 1);
      mtl_tensor **slot = bind_slot(L);
      int64_t shape[1] = {t->shape[0]}, stride[1] = {t->stride[0]};
      *slot = mtl_tensor_view(t, 1, shape, stride, t->offset + ((int64_t)k - 1) * t->stride[1]);
      if (!*slot) bind_error(L);
      t = *slot;
      lua_rawseti(L, anchor_at, c + 1);
    }
    cols[c].values = t;
    cols[c].labels = NULL;
    cols[c].nlabels = 0;
    lua_getfield(L, ct, "labels"); /* {"impression", "click", ...} for codes 1, 2, ... */
    if (lua_istable(L, -1)) {
      int nl = (int)lua_objlen(L, -1);
      const char **labels = lua_newuserdata(L, sizeof *labels * (size_t)(nl > 0 ? nl : 1));
      lua_rawseti(L, anchor_at, -c - 1);
      for (int k = 0; k < nl; k++) {
        lua_rawgeti(L, -1, k + 1);
        if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "%s: column %d: label %d must be a string", fn, c + 1, k + 1);
        labels[k] = lua_tostring(L, -1); /* kept alive by the labels table */
        lua_pop(L, 1);
      }
      cols[c].labels = labels;
      cols[c].nlabels = nl;
    } else if (!lua_isnil(L, -1)) {
      luaL_error(L, "%s: column %d: labels must be a list of strings", fn, c + 1);
    }
    lua_settop(L, ct - 1);
  }
  *n = nc;
  return cols;
}

/* core.stats_write_csv(path, {{name, tensor}, ...}[, digits]) */
static int l_stats_write_csv(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  int digits = (int)luaL_optinteger(L, 3, 6), n;
  lua_settop(L, 3);
  mtl_stats_csv_column *cols = csv_columns(L, "mtl.stats.write_csv", 2, &n);
  if (mtl_stats_write_csv(path, n, cols, digits) < 0) return bind_error(L);
  return 0;
}

/* core.stats_append_csv(in, out, {{name, tensor}, ...}[, digits[, separator]]) */
static int l_stats_append_csv(lua_State *L) {
  const char *in = luaL_checkstring(L, 1), *out = luaL_checkstring(L, 2);
  int digits = (int)luaL_optinteger(L, 4, 6), n;
  const char *sep = luaL_optstring(L, 5, ",");
  if (strlen(sep) != 1) return luaL_error(L, "mtl.stats.append_csv: the separator must be one byte, got \"%s\"", sep);
  lua_settop(L, 5);
  mtl_stats_csv_column *cols = csv_columns(L, "mtl.stats.append_csv", 3, &n);
  if (mtl_stats_append_csv(in, out, sep[0], n, cols, digits) < 0) return bind_error(L);
  return 0;
}

/* core.stats_order(time int64 [n]) -> int64 [n]: 1-based positions by time (stable) */
static int l_stats_order(lua_State *L) {
  mtl_tensor *t = bind_check_tensor(L, 1, "mtl.stats.order");
  if (t->dtype != MTL_I64 || t->ndim != 1 || !mtl_tensor_is_contiguous(t))
    return luaL_error(L, "mtl.stats.order: expected a contiguous int64 [n] tensor");
  mtl_tensor **slot = bind_slot(L);
  if (!(*slot = mtl_tensor_new(MTL_I64, 1, t->shape))) return bind_error(L);
  int64_t *o = mtl_i64(*slot);
  if (mtl_stats_order(mtl_i64(t), t->shape[0], o) < 0) return bind_error(L);
  for (int64_t i = 0; i < t->shape[0]; i++) o[i] += 1;
  return 1;
}

void bind_stats_open(lua_State *L, int mod, int methods) {
  (void)methods;
  static const luaL_Reg fns[] = {
    {"stats_compute", l_stats_compute}, {"samples_label", l_samples_label},
    {"stats_write_csv", l_stats_write_csv}, {"stats_append_csv", l_stats_append_csv},
    {"stats_order", l_stats_order}, {NULL, NULL},
  };
  bind_register_list(L, mod, 0, fns);
}
