/* Typed columns -> the batch table a Scorer's reader would have produced for
 * the same rows: the same outputs (ids, dense lanes and groups, bags), the
 * same standardization of float columns, the same string hashing. Runs
 * inside a protected Lua call: input errors are raised as Lua errors. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bind.h"
#include "serve_internal.h"


/* A standardized value as float32, as the reader stores it. */
static float z_float(double z) {
  if (z > FLT_MAX) return INFINITY;
  if (z < -FLT_MAX) return -INFINITY;
  return (float)z;
}

static mtl_tensor *new_tensor(lua_State *L, mtl_dtype dtype, int ndim, const int64_t *shape) {
  mtl_tensor **slot = bind_slot(L); /* pushed first: the GC owns it even if we raise */
  if (!(*slot = mtl_tensor_new(dtype, ndim, shape))) bind_errorf(L, "%s", mtl_error_message());
  return *slot;
}

/* The value of a default text (the config's default of a column). */
static int64_t default_id(lua_State *L, const serve_column *c) {
  const char *s = c->default_text;
  size_t len = strlen(s);
  if (c->type == MTL_COLUMN_STRING) return mtl_hash_string(s, len);
  int64_t v;
  bool overflow = false;
  const char *q = mtl_parse_int64(s, s + len, &v, &overflow);
  if (!q || q != s + len || overflow) bind_errorf(L, "column '%s': its default \"%s\" is not an integer", c->name, s);
  return v;
}

static double default_number(lua_State *L, const serve_column *c) {
  const char *s = c->default_text;
  size_t len = strlen(s);
  double v;
  const char *q = mtl_parse_double(s, s + len, &v);
  if (!q || q != s + len) bind_errorf(L, "column '%s': its default \"%s\" is not a number", c->name, s);
  return v;
}

static void missing(lua_State *L, const serve_column *c, const char *needs) {
  bind_errorf(L, "column '%s' (%s) is missing: give %s (the config gives it no default)", c->name,
             mtl_column_type_name(c->type), needs);
}

/* ids [n] of an int64 or string column. */
static void push_ids(lua_State *L, const serve_column *c, const mtl_column_data *d, int n) {
  int64_t shape[1] = {n};
  int64_t *o = mtl_i64(new_tensor(L, MTL_I64, 1, shape));
  if (d && d->ids) {
    memcpy(o, d->ids, (size_t)n * sizeof *o);
  } else if (d && d->strings && c->type == MTL_COLUMN_STRING) {
    for (int i = 0; i < n; i++) {
      if (!d->strings[i]) bind_errorf(L, "column '%s': string %d is NULL", c->name, i + 1);
      o[i] = mtl_hash_string(d->strings[i], strlen(d->strings[i]));
    }
  } else if (d) {
    bind_errorf(L, "column '%s' (%s) needs ids%s", c->name, mtl_column_type_name(c->type),
               c->type == MTL_COLUMN_STRING ? " or strings" : "");
  } else {
    if (!c->default_text) missing(L, c, c->type == MTL_COLUMN_STRING ? "strings or ids" : "ids");
    int64_t v = default_id(L, c);
    for (int i = 0; i < n; i++) o[i] = v;
  }
}

/* A bag output {ids =, offsets =[, weights =]} of a multi or kv column (or a
 * field of field:feature_id rows, c NULL). */
static void push_bag(lua_State *L, const char *name, const serve_column *c, const mtl_column_data *d, int n,
                     bool weighted) {
  lua_createtable(L, 0, 3);
  int64_t shape[1] = {n + 1};
  int64_t *off = mtl_i64(new_tensor(L, MTL_I64, 1, shape));
  lua_setfield(L, -2, "offsets");
  if (!d) {
    if (c && c->default_text && c->default_text[0])
      bind_errorf(L, "column '%s' (%s) is missing: give offsets and ids (its default \"%s\" is only read from text "
                 "rows)", name, c ? mtl_column_type_name(c->type) : "multi", c->default_text);
    if (c && !c->default_text) missing(L, c, "offsets and ids");
    if (!c) bind_errorf(L, "field '%s' is missing: give offsets and ids", name);
    memset(off, 0, (size_t)(n + 1) * sizeof *off); /* empty bags */
  } else {
    if (!d->offsets) bind_errorf(L, "column '%s' needs offsets (n + 1 positions into its ids)", name);
    if (d->offsets[0] != 0) bind_errorf(L, "column '%s': offsets[0] must be 0, got %lld", name, (long long)d->offsets[0]);
    for (int i = 0; i < n; i++)
      if (d->offsets[i + 1] < d->offsets[i])
        bind_errorf(L, "column '%s': offsets must be nondecreasing, got offsets[%d] = %lld after %lld", name, i + 1,
                   (long long)d->offsets[i + 1], (long long)d->offsets[i]);
    memcpy(off, d->offsets, (size_t)(n + 1) * sizeof *off);
  }
  int64_t total = off[n];
  int64_t vshape[1] = {total};
  int64_t *ids = mtl_i64(new_tensor(L, MTL_I64, 1, vshape));
  lua_setfield(L, -2, "ids");
  if (total > 0) {
    if (d->ids) {
      memcpy(ids, d->ids, (size_t)total * sizeof *ids);
    } else if (d->strings && c && c->string_values) {
      for (int64_t k = 0; k < total; k++) {
        if (!d->strings[k]) bind_errorf(L, "column '%s': string %lld is NULL", name, (long long)k + 1);
        ids[k] = mtl_hash_string(d->strings[k], strlen(d->strings[k]));
      }
    } else {
      bind_errorf(L, "column '%s' needs ids%s", name, c && c->string_values ? " or strings" : "");
    }
  }
  if (weighted) {
    float *w = mtl_f32(new_tensor(L, MTL_F32, 1, vshape));
    lua_setfield(L, -2, "weights");
    if (total > 0) {
      if (!d->values) bind_errorf(L, "column '%s' (kv) needs values (one weight per id)", name);
      memcpy(w, d->values, (size_t)total * sizeof *w);
    }
  }
}

/* A dense output: width lanes of float columns, [n] or [n, width]. */
static void push_dense(lua_State *L, const mtl_model *m, mtl_reader *r, int out,
                       const mtl_column_data *const *given, int n) {
  int w = mtl_reader_output_width(r, out);
  bool grouped = false;
  for (int j = 0; j < w; j++) {
    int ci = mtl_reader_output_column(r, out, j);
    if (ci < 0 || ci >= m->ncolumns) bind_errorf(L, "dense output '%s': lane %d has no column", mtl_reader_output_name(r, out), j + 1);
    grouped |= m->columns[ci].grouped;
  }
  int64_t shape[2] = {n, w};
  float *o = mtl_f32(new_tensor(L, MTL_F32, grouped ? 2 : 1, shape));
  for (int j = 0; j < w; j++) {
    int ci = mtl_reader_output_column(r, out, j);
    const serve_column *c = &m->columns[ci];
    const mtl_column_data *d = given[ci];
    if (d && !d->values) bind_errorf(L, "column '%s' (float) needs values", c->name);
    double def = 0;
    if (!d) {
      if (!c->default_text) missing(L, c, "values");
      def = default_number(L, c);
    }
    for (int i = 0; i < n; i++) {
      double v = d ? (double)d->values[i] : def;
      o[(size_t)i * (size_t)w + (size_t)j] = c->standardized ? z_float((v - c->mean) / c->std) : (float)v;
    }
  }
}

void serve_push_column_batch(lua_State *L, const mtl_model *m, mtl_reader *r, const mtl_column_data *cols,
                             int ncols, int n) {
  /* each schema column's data (NULL: not given); fields of field:feature_id
   * rows are matched by output name below */
  const mtl_column_data **given = lua_newuserdata(L, sizeof *given * (size_t)(m->ncolumns ? m->ncolumns : 1));
  for (int i = 0; i < m->ncolumns; i++) given[i] = NULL;
  int nouts = mtl_reader_num_outputs(r);
  for (int k = 0; k < ncols; k++) {
    const char *name = cols[k].name;
    if (!name) bind_errorf(L, "column %d has no name", k + 1);
    int ci = mtl_model_column_index(m, name);
    if (ci < 0) {
      bool field = false;
      for (int i = 0; i < nouts && !field; i++) field = !strcmp(mtl_reader_output_name(r, i), name);
      if (!field) bind_errorf(L, "unknown column '%s' (not in the model's training schema)", name);
      for (int j = 0; j < k; j++)
        if (cols[j].name && !strcmp(cols[j].name, name)) bind_errorf(L, "column '%s' is given twice", name);
      continue;
    }
    if (given[ci]) bind_errorf(L, "column '%s' is given twice", name);
    given[ci] = &cols[k];
  }
  lua_createtable(L, 0, 2);
  lua_pushinteger(L, n);
  lua_setfield(L, -2, "size");
  lua_createtable(L, 0, nouts);
  for (int i = 0; i < nouts; i++) {
    const char *name = mtl_reader_output_name(r, i);
    mtl_output_kind kind = mtl_reader_output_kind(r, i);
    int ci = mtl_model_column_index(m, name);
    const serve_column *c = ci >= 0 ? &m->columns[ci] : NULL;
    const mtl_column_data *d = ci >= 0 ? given[ci] : NULL;
    if (!c)
      for (int k = 0; k < ncols; k++)
        if (!strcmp(cols[k].name, name)) d = &cols[k];
    switch (kind) {
      case MTL_OUTPUT_IDS:
        if (!c) bind_errorf(L, "output '%s' has no column", name);
        push_ids(L, c, d, n);
        break;
      case MTL_OUTPUT_DENSE:
        push_dense(L, m, r, i, given, n);
        break;
      case MTL_OUTPUT_SEQ:
        bind_errorf(L, "column '%s' is a sequence (seq): score text rows (mtl_model_score_csv) for it", name);
        break;
      default:
        push_bag(L, name, c, d, n, kind == MTL_OUTPUT_WEIGHTED_BAG);
        break;
    }
    lua_setfield(L, -2, name);
  }
  lua_setfield(L, -2, "columns");
  lua_remove(L, -2); /* the scratch userdata */
}

void serve_push_rank_values(lua_State *L, const mtl_model *m, const mtl_column_data *cols, int ncols, int n) {
  lua_createtable(L, 0, m->nrank_columns);
  for (int r = 0; r < m->nrank_columns; r++) {
    const serve_column *c = &m->columns[m->rank_columns[r]];
    const mtl_column_data *d = NULL;
    for (int k = 0; k < ncols; k++)
      if (cols[k].name && !strcmp(cols[k].name, c->name)) d = &cols[k];
    int64_t shape[1] = {n};
    float *o = mtl_f32(new_tensor(L, MTL_F32, 1, shape));
    for (int i = 0; i < n; i++)
      o[i] = d && d->values ? d->values[i] : d && d->ids && !d->offsets ? (float)d->ids[i] : NAN;
    lua_setfield(L, -2, c->name);
  }
}
