/* Readers: the schema, parsing a row's fields straight into per-output
 * buffers, and handing batches out as tensors. Input (files, chunks, rows,
 * shuffling) is in reader_input.c; value parsers in reader_parse.c. */
#include <errno.h>
#include <float.h>
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "reader_internal.h"

/* Row parsing results: a bad row can be skipped, a failure cannot. */
enum { ROW_OK = 0, ROW_BAD = -1, ROW_FAIL = -2 };

static char *dup_string(mtl_reader *r, const char *s) {
  size_t n = strlen(s) + 1;
  char *d = NULL;
  if (reader_resize(r, (void **)&d, 0, n) < 0) return NULL;
  memcpy(d, s, n);
  return d;
}

static const char *const type_names[] = {"int64", "float", "string", "multi", "kv", "seq", "skip"};

const char *mtl_column_type_name(mtl_column_type t) { return (unsigned)t <= MTL_COLUMN_SKIP ? type_names[t] : "?"; }

int mtl_column_type_of(const char *name) {
  for (int i = 0; name && i <= MTL_COLUMN_SKIP; i++)
    if (!strcmp(name, type_names[i])) return i;
  return -1;
}

/* ---- batch buffers -------------------------------------------------------- */
/* Rows are parsed straight into the batch's tensors (capacity row_cap rows,
 * val_cap values per bag); a batch hands them over as they are, or as views of
 * its first n rows, so nothing is copied. Float lanes standardized by FIT keep
 * their raw values in a double buffer until the batch ends. */

/* A new tensor of n elements holding the first `keep` elements of *old (which
 * it replaces and releases); the reader's byte count follows. */
static int regrow(mtl_reader *r, mtl_tensor **t, mtl_dtype dtype, int64_t n, int64_t keep) {
  mtl_tensor *nt = mtl_tensor_new(dtype, 1, &n);
  if (!nt) return -1;
  size_t es = mtl_dtype_size(dtype);
  if (*t) {
    if (keep) memcpy(nt->storage->data, (*t)->storage->data, (size_t)keep * es);
    r->bytes -= (size_t)(*t)->numel * es;
    mtl_tensor_release(*t);
  }
  *t = nt;
  r->bytes += (size_t)n * es;
  if (r->bytes > r->peak_bytes) r->peak_bytes = r->bytes;
  return 0;
}

static int alloc_values(mtl_reader *r, output *o, size_t cap) {
  if (!o->float_values) {
    if (regrow(r, &o->t_values, MTL_I64, (int64_t)cap, (int64_t)o->nvals) < 0) return -1;
    o->ids = mtl_i64(o->t_values);
  }
  if (o->kind == MTL_OUTPUT_WEIGHTED_BAG || o->float_values) {
    if (regrow(r, &o->t_weights, MTL_F32, (int64_t)cap, (int64_t)o->nvals) < 0) return -1;
    o->weights = mtl_f32(o->t_weights);
  }
  o->val_cap = cap;
  return 0;
}

/* A sequence's step offsets: room for cap steps (keeping those so far). */
static int grow_steps(mtl_reader *r, output *o, size_t cap) {
  if (regrow(r, &o->t_steps, MTL_I64, (int64_t)cap + 1, (int64_t)o->nsteps + 1) < 0) return -1;
  o->steps = mtl_i64(o->t_steps);
  if (o->nsteps == 0) o->steps[0] = 0;
  o->step_cap = cap;
  return 0;
}

/* At the start of a batch of cap rows: as many steps per row as seen so far. */
static int alloc_steps(mtl_reader *r, output *o, int64_t cap) {
  size_t want = o->step_hint;
  if (r->rows > 0) want = (size_t)((double)o->nsteps / (double)r->rows * (double)cap * 1.05) + 64;
  if (o->t_steps && want <= o->step_cap) return 0;
  return grow_steps(r, o, want > 256 ? want : 256);
}

static int ensure_step(mtl_reader *r, output *o) {
  if (o->nsteps < o->step_cap) return 0;
  return grow_steps(r, o, o->step_cap ? o->step_cap * 2 : 256);
}

/* When the whole input is one batch: the rows to expect, from the bytes the
 * first rows took and the size of the files (0 when unknown, e.g. gzip). */
static int64_t estimate_rows(mtl_reader *r) {
  if (r->batch_size != 0 || r->file != 0 || !r->gz || !gzdirect(r->gz) || r->rows == 0) return 0;
  z_off_t read = gztell(r->gz);
  if (read <= 0) return 0;
  double per_row = (double)(read - (z_off_t)(r->len - r->pos)) / (double)r->rows;
  double total = 0;
  for (int i = 0; i < r->npaths; i++) {
    struct stat st;
    if (stat(r->paths[i], &st) == 0) total += (double)st.st_size;
  }
  double est = total / per_row * 1.02 + 1024;
  if (r->max_rows && est > (double)r->max_rows) est = (double)r->max_rows;
  return est < 1e12 ? (int64_t)est : 0;
}

/* Makes room for one more row in every output. */
static int ensure_row(mtl_reader *r) {
  if (r->rows < r->row_cap) return 0;
  int64_t cap = r->batch_size > 0 ? r->batch_size : r->row_cap ? r->row_cap * 2 : 1024;
  int64_t est = r->row_cap ? estimate_rows(r) : 0;
  if (est > cap) cap = est;
  for (int i = 0; i < r->nouts; i++) {
    output *o = &r->outs[i];
    if (o->kind == MTL_OUTPUT_IDS) {
      if (regrow(r, &o->t_values, MTL_I64, cap, r->rows) < 0) return -1;
      o->ids = mtl_i64(o->t_values);
    } else if (o->kind == MTL_OUTPUT_DENSE) {
      if (regrow(r, &o->t_values, MTL_F32, cap * o->width, r->rows * o->width) < 0) return -1;
      o->dense = mtl_f32(o->t_values);
      size_t nfit = (size_t)(cap * o->width);
      if (o->has_fit && nfit > o->fit_cap) {
        if (reader_resize(r, (void **)&o->fit, o->fit_cap * 8, nfit * 8) < 0) return -1;
        o->fit_cap = nfit;
      }
    } else {
      if (regrow(r, &o->t_offsets, MTL_I64, cap + 1, r->rows + 1) < 0) return -1;
      o->offsets = mtl_i64(o->t_offsets);
      o->offsets[0] = 0;
      /* bag values: as many per row as seen so far (or as last batch) */
      size_t want = o->val_hint;
      if (r->rows > 0) want = (size_t)((double)o->nvals / (double)r->rows * (double)cap * 1.05) + 64;
      if (!o->val_cap || want > o->val_cap) {
        if (alloc_values(r, o, want > 256 ? want : 256) < 0) return -1;
      }
      if (o->kind == MTL_OUTPUT_SEQ && alloc_steps(r, o, cap) < 0) return -1;
    }
  }
  r->row_cap = cap;
  return 0;
}

/* Makes room for one more value in a bag output. */
static int ensure_value(mtl_reader *r, output *o) {
  if (o->nvals < o->val_cap) return 0;
  return alloc_values(r, o, o->val_cap ? o->val_cap * 2 : 256);
}


static void row_commit(mtl_reader *r) {
  r->rows++;
  for (int i = 0; i < r->nbags; i++) {
    output *o = &r->outs[r->bags[i]];
    o->offsets[r->rows] = (int64_t)(o->kind == MTL_OUTPUT_SEQ ? o->nsteps : o->nvals);
  }
}

static void row_rollback(mtl_reader *r) {
  for (int i = 0; i < r->nbags; i++) {
    output *o = &r->outs[r->bags[i]];
    if (o->kind == MTL_OUTPUT_SEQ) {
      o->nsteps = (size_t)o->offsets[r->rows];
      o->nvals = (size_t)o->steps[o->nsteps];
    } else {
      o->nvals = (size_t)o->offsets[r->rows];
    }
  }
}

static void batch_reset(mtl_reader *r) {
  r->rows = 0;
  for (int i = 0; i < r->nouts; i++) r->outs[i].nvals = r->outs[i].nsteps = 0;
}

/* The reader no longer holds t's bytes. */
static void forget(mtl_reader *r, const mtl_tensor *t) {
  if (t) r->bytes -= (size_t)t->numel * mtl_dtype_size(t->dtype);
}

/* Drops the batch's tensors (after an error, or when the reader is freed). */
static void drop_batch(mtl_reader *r) {
  for (int i = 0; i < r->nouts; i++) {
    output *o = &r->outs[i];
    forget(r, o->t_values);
    forget(r, o->t_offsets);
    forget(r, o->t_weights);
    forget(r, o->t_steps);
    mtl_tensor_release(o->t_values);
    mtl_tensor_release(o->t_offsets);
    mtl_tensor_release(o->t_weights);
    mtl_tensor_release(o->t_steps);
    o->t_values = o->t_offsets = o->t_weights = o->t_steps = NULL;
    o->ids = o->offsets = o->steps = NULL;
    o->dense = o->weights = NULL;
    o->nvals = o->val_cap = o->nsteps = o->step_cap = 0;
  }
  r->row_cap = 0;
  r->rows = 0;
}

/* A float value into its lane: raw, standardized with given stats, or kept
 * in double for fitting. */
/* A standardized value as float32: beyond its range it is an infinity (a cast
 * of such a double is undefined behaviour). Raw values were range-checked. */
static inline float z_float(double z) {
  if (z > FLT_MAX) return INFINITY;
  if (z < -FLT_MAX) return -INFINITY;
  return (float)z;
}

static inline void store_float(output *o, const column *c, int64_t row, double v) {
  int64_t k = row * o->width + c->lane;
  if (c->standardize == MTL_STANDARDIZE_NONE) o->dense[k] = (float)v;
  else if (c->standardize == MTL_STANDARDIZE_GIVEN) o->dense[k] = z_float((v - c->mean) / c->std);
  else o->fit[k] = v;
}

/* ---- values --------------------------------------------------------------- */
/* Each parser reads one field's value from s (bounded by lim) into the row
 * being built and returns where it stopped; NULL (with r->expect set) when the
 * text is not a value of the column. A stop is a legal field end when it is
 * lim, or the separator for an unquoted field. */
#define FIELD_END(q) ((q) == lim || (!quoted && *(q) == r->sep))

static const char *put_int64(mtl_reader *r, const column *c, const char *s, const char *lim, bool quoted) {
  int64_t v;
  bool overflow;
  const char *q = mtl_parse_int64(s, lim, &v, &overflow);
  if (!q || !FIELD_END(q)) return r->expect = c->expect, NULL;
  if (overflow) return r->expect = "an integer in the int64 range", NULL;
  r->outs[c->out].ids[r->rows] = v;
  return q;
}

static const char *put_float(mtl_reader *r, const column *c, const char *s, const char *lim, bool quoted) {
  double v;
  const char *q = mtl_parse_double(s, lim, &v);
  if (!q || !FIELD_END(q)) return r->expect = c->expect, NULL;
  if (fabs(v) > FLT_MAX && isfinite(v)) return r->expect = "a number in the float32 range", NULL;
  store_float(&r->outs[c->out], c, r->rows, v);
  return q;
}

static const char *put_string(mtl_reader *r, const column *c, const char *s, const char *lim, bool quoted) {
  const char *q = quoted ? lim : memchr(s, r->sep, (size_t)(lim - s));
  if (!q) q = lim;
  r->outs[c->out].ids[r->rows] = mtl_hash_string(s, (size_t)(q - s));
  return q;
}

/* One id of a bag: an integer, or a string up to `stop1` / the field end. */
static const char *put_bag_id(mtl_reader *r, output *o, bool string_values, char stop1, const char *s,
                              const char *lim, bool quoted) {
  int64_t v;
  const char *q;
  if (string_values) {
    q = s;
    while (q < lim && *q != stop1 && !(!quoted && *q == r->sep)) q++;
    if (q == s) return NULL;
    v = mtl_hash_string(s, (size_t)(q - s));
  } else {
    bool overflow;
    q = mtl_parse_int64(s, lim, &v, &overflow);
    if (!q || overflow) return NULL;
  }
  if (ensure_value(r, o) < 0) {
    r->failed = true; /* out of memory: not the row's fault */
    return NULL;
  }
  o->ids[o->nvals++] = v;
  return q;
}

static const char *put_multi(mtl_reader *r, const column *c, const char *s, const char *lim, bool quoted) {
  output *o = &r->outs[c->out];
  if (FIELD_END(s)) return s; /* only a default of "" gets here: an empty bag */
  for (;;) {
    const char *q = put_bag_id(r, o, c->string_values, c->separator, s, lim, quoted);
    if (!q) return r->expect = c->expect, NULL;
    if (FIELD_END(q)) return q; /* an unquoted field ends at the field separator, even if it is also c->separator */
    if (*q == c->separator) s = q + 1;
    else return r->expect = c->expect, NULL;
  }
}

static const char *put_kv(mtl_reader *r, const column *c, const char *s, const char *lim, bool quoted) {
  output *o = &r->outs[c->out];
  if (FIELD_END(s)) return s;
  for (;;) {
    const char *q = put_bag_id(r, o, c->string_values, c->kv_separator, s, lim, quoted);
    if (!q || q == lim || *q != c->kv_separator) return r->expect = c->expect, NULL;
    double w;
    const char *q2 = mtl_parse_double(q + 1, lim, &w);
    if (!q2) return r->expect = c->expect, NULL;
    if (fabs(w) > FLT_MAX && isfinite(w)) return r->expect = "values in the float32 range", NULL;
    o->weights[o->nvals - 1] = (float)w;
    if (FIELD_END(q2)) return q2;
    if (*q2 == c->separator) s = q2 + 1;
    else return r->expect = c->expect, NULL;
  }
}

/* One value of a sequence step: an integer, a number, or a string up to the
 * step separator, the step's end or the field's end. */
static const char *put_seq_value(mtl_reader *r, output *o, const column *c, const char *s, const char *lim,
                                 bool quoted) {
  if (ensure_value(r, o) < 0) {
    r->failed = true; /* out of memory: not the row's fault */
    return NULL;
  }
  const char *q;
  if (c->float_values) {
    double v;
    if (!(q = mtl_parse_double(s, lim, &v))) return NULL;
    if (fabs(v) > FLT_MAX && isfinite(v)) return NULL;
    o->weights[o->nvals++] = (float)v;
  } else if (c->string_values) {
    q = s;
    while (q < lim && *q != c->separator && *q != c->step_separator && !(!quoted && *q == r->sep)) q++;
    if (q == s) return NULL;
    o->ids[o->nvals++] = mtl_hash_string(s, (size_t)(q - s));
  } else {
    int64_t v;
    bool overflow;
    if (!(q = mtl_parse_int64(s, lim, &v, &overflow)) || overflow) return NULL;
    o->ids[o->nvals++] = v;
  }
  return q;
}

/* A sequence: steps joined by c->separator, the values of a step by
 * c->step_separator (when set); an empty field is an empty sequence. */
static const char *put_seq(mtl_reader *r, const column *c, const char *s, const char *lim, bool quoted) {
  output *o = &r->outs[c->out];
  if (FIELD_END(s)) return s;
  for (;;) {
    const char *q;
    for (;;) { /* the values of one step */
      if (!(q = put_seq_value(r, o, c, s, lim, quoted))) return r->expect = c->expect, NULL;
      if (!c->step_separator || FIELD_END(q) || *q != c->step_separator) break;
      s = q + 1;
    }
    if (ensure_step(r, o) < 0) {
      r->failed = true;
      return NULL;
    }
    o->steps[++o->nsteps] = (int64_t)o->nvals;
    if (FIELD_END(q)) return q;
    if (*q != c->separator) return r->expect = c->expect, NULL;
    s = q + 1;
  }
}

static const char *put_value(mtl_reader *r, const column *c, const char *s, const char *lim, bool quoted) {
  switch (c->type) {
  case MTL_COLUMN_SEQ: return put_seq(r, c, s, lim, quoted);
  case MTL_COLUMN_INT64: return put_int64(r, c, s, lim, quoted);
  case MTL_COLUMN_FLOAT: return put_float(r, c, s, lim, quoted);
  case MTL_COLUMN_STRING: return put_string(r, c, s, lim, quoted);
  case MTL_COLUMN_MULTI: return put_multi(r, c, s, lim, quoted);
  case MTL_COLUMN_KV: return put_kv(r, c, s, lim, quoted);
  default: {
    const char *q = quoted ? lim : memchr(s, r->sep, (size_t)(lim - s));
    return q ? q : lim;
  }
  }
}

/* ---- rows ------------------------------------------------------------------ */
typedef struct {
  const char *path;
  int64_t line;
  const char *row, *end; /* the row's text, for error messages */
} row_ctx;

/* The end of the raw text of the field starting at s: the next separator
 * outside quotes (a quoted field runs through its closing quote first). */
static const char *field_text_end(const mtl_reader *r, const char *s, const char *e) {
  if (r->quote && s < e && *s == r->quote) {
    const char *p = s + 1;
    for (; p < e; p++)
      if (*p == r->quote) {
        if (p + 1 < e && p[1] == r->quote) p++;
        else break;
      }
    if (p >= e) return e;
    s = p + 1;
  }
  const char *q = memchr(s, r->sep, (size_t)(e - s));
  return q ? q : e;
}

static int bad_field(mtl_reader *r, const row_ctx *x, int field, const char *what, const char *name,
                     const char *s) {
  char got[512];
  reader_quote_text(got, sizeof got, s, field_text_end(r, s, x->end));
  if (name)
    mtl_error("%s:%lld:%d: expected %s for column '%s', got \"%s\"", x->path, (long long)x->line, field,
              what, name, got);
  else
    mtl_error("%s:%lld:%d: expected %s, got \"%s\"", x->path, (long long)x->line, field, what, got);
  return ROW_BAD;
}

/* The content of the field at s: for a quoted field, its unquoted text in the
 * scratch buffer. Sets *content, *lim, *quoted and *after (the position after
 * the field in the row; for unquoted fields it is only known once parsed).
 * Returns -1 with the error set (ROW_BAD in *status, or ROW_FAIL). */
static int field_content(mtl_reader *r, const row_ctx *x, int field, const char *name, const char *s,
                         const char **content, const char **lim, const char **after, bool *quoted, int *status) {
  const char *e = x->end;
  *status = ROW_BAD;
  *quoted = false;
  *content = s;
  *lim = e;
  *after = NULL;
  if (!r->quote || s >= e || *s != r->quote) return 0;
  size_t need = (size_t)(e - s);
  if (need > r->scratch_cap) {
    if (reader_resize(r, (void **)&r->scratch, r->scratch_cap, need) < 0) return *status = ROW_FAIL, -1;
    r->scratch_cap = need;
  }
  size_t n = 0;
  const char *p = s + 1;
  for (;;) {
    if (p >= e) {
      if (name)
        mtl_error("%s:%lld:%d: expected a closing quote for column '%s', got the end of the file", x->path,
                  (long long)x->line, field, name);
      else
        mtl_error("%s:%lld:%d: expected a closing quote, got the end of the file", x->path, (long long)x->line,
                  field);
      return -1;
    }
    if (*p == r->quote) {
      if (p + 1 < e && p[1] == r->quote) {
        r->scratch[n++] = r->quote;
        p += 2;
        continue;
      }
      p++;
      break;
    }
    r->scratch[n++] = *p++;
  }
  if (p < e && *p != r->sep) {
    bad_field(r, x, field, "a separator after the closing quote", name, s);
    return -1;
  }
  *quoted = true;
  *content = r->scratch;
  *lim = r->scratch + n;
  *after = p;
  return 0;
}

/* Parses the field at s (field number `field`, 1-based) into column c.
 * Returns the position after the field (the separator or the row end), or
 * NULL with the error set and *status ROW_BAD or ROW_FAIL. */
static const char *parse_field(mtl_reader *r, const row_ctx *x, int field, const column *c, const char *s,
                               int *status) {
  const char *start = s, *lim, *after;
  bool quoted;
  if (field_content(r, x, field, c->name[0] ? c->name : NULL, start, &s, &lim, &after, &quoted, status) < 0)
    return NULL;
  bool empty = quoted ? s == lim : (s == lim || *s == r->sep);
  if (empty && c->type != MTL_COLUMN_SKIP) {
    if (!c->default_text) {
      mtl_error("%s:%lld:%d: expected a value for column '%s', got an empty field (the column has no default)",
                x->path, (long long)x->line, field, c->name);
      return NULL;
    }
    r->expect = NULL;
    if (!put_value(r, c, c->default_text, c->default_text + c->default_len, true)) {
      *status = ROW_FAIL; /* defaults were checked at creation: only memory can fail */
      return NULL;
    }
    return quoted ? after : s;
  }
  r->expect = NULL;
  const char *q = put_value(r, c, s, lim, quoted);
  if (!q) {
    if (!r->expect || r->failed) return *status = ROW_FAIL, NULL;
    bad_field(r, x, field, r->expect, c->name, start);
    return NULL;
  }
  return quoted ? after : q;
}

/* Looks a field name up in the field table; -1 if it is not configured. */
static int find_field(const mtl_reader *r, const char *s, size_t n) {
  uint64_t h = (uint64_t)mtl_hash_string(s, n);
  for (int i = (int)(h & (uint64_t)r->field_mask);; i = (i + 1) & r->field_mask) {
    int k = r->field_table[i];
    if (k < 0) return -1;
    const char *name = r->outs[r->field_out0 + k].name;
    if (strlen(name) == n && !memcmp(name, s, n)) return k;
  }
}

/* A `field:feature_id` token at s. */
static const char *parse_token(mtl_reader *r, const row_ctx *x, int field, const char *s, int *status) {
  const char *start = s, *lim, *after;
  bool quoted;
  if (field_content(r, x, field, NULL, start, &s, &lim, &after, &quoted, status) < 0) return NULL;
  const char *colon = s;
  while (colon < lim && *colon != r->field_sep && !(!quoted && *colon == r->sep)) colon++;
  if (colon == s || colon == lim || *colon != r->field_sep) {
    bad_field(r, x, field, "a field:feature_id token", NULL, start);
    return NULL;
  }
  int k = find_field(r, s, (size_t)(colon - s));
  if (k < 0) {
    if (r->skip_unknown_fields) {
      if (quoted) return after;
      const char *q = memchr(colon, r->sep, (size_t)(lim - colon));
      return q ? q : lim;
    }
    bad_field(r, x, field, "a token of one of the configured fields", NULL, start);
    return NULL;
  }
  int64_t v;
  bool overflow;
  const char *q = mtl_parse_int64(colon + 1, lim, &v, &overflow);
  if (!q || overflow || !FIELD_END(q)) {
    bad_field(r, x, field, "a field:feature_id token", NULL, start);
    return NULL;
  }
  output *o = &r->outs[r->field_out0 + k];
  if (ensure_value(r, o) < 0) return *status = ROW_FAIL, NULL;
  o->ids[o->nvals++] = v;
  return quoted ? after : q;
}

/* The number of fields of a row from field position s on (quote-aware). */
static int count_fields(const mtl_reader *r, const char *s, const char *e) {
  int n = 1;
  for (;;) {
    s = field_text_end(r, s, e);
    if (s >= e) return n;
    s++;
    n++;
  }
}

static const column skip_column = {.type = MTL_COLUMN_SKIP, .name = "", .out = -1};

/* The missing-field error of a row that ends before field f (0-based). */
static int missing_field(const mtl_reader *r, const row_ctx *x, int f) {
  int ci = r->field_map[f];
  if (ci >= 0)
    mtl_error("%s:%lld:%d: expected %d fields, got %d: column '%s' is missing", x->path, (long long)x->line, f + 1,
              r->nfile_fields, f, r->cols[ci].name);
  else
    mtl_error("%s:%lld:%d: expected %d fields, got %d", x->path, (long long)x->line, f + 1, r->nfile_fields, f);
  return ROW_BAD;
}

static int parse_row(mtl_reader *r, const char *s, const char *e, int file, int64_t line) {
  row_ctx x = {r->paths[file], line, s, e};
  int st;
  const char *p = s;
  const char sep = r->sep;
  const int64_t row = r->rows;
  const int nf = r->nfile_fields;
  const int *map = r->field_map;
  r->expect = NULL;
  r->failed = false;
  for (int f = 0; f < nf; f++) {
    if (f > 0) {
      if (p == e) return missing_field(r, &x, f);
      p++; /* the separator */
    }
    int ci = map[f];
    const column *c = ci >= 0 ? &r->cols[ci] : &skip_column;
    /* fast paths: plain integers, numbers and integer bags; anything else
     * (quotes, empty fields, long numbers, errors) takes parse_field */
    if (c->type == MTL_COLUMN_INT64) {
      int64_t v;
      const char *q = reader_fast_int64(p, e, &v);
      if (q && (q == e || *q == sep)) {
        c->o->ids[row] = v;
        p = q;
        continue;
      }
    } else if (c->type == MTL_COLUMN_FLOAT) {
      double v;
      const char *q = reader_fast_double(p, e, &v);
      if (q && (q == e || *q == sep) && fabs(v) <= FLT_MAX) {
        store_float(c->o, c, row, v);
        p = q;
        continue;
      }
    } else if (c->type == MTL_COLUMN_MULTI && !c->string_values) {
      output *o = c->o;
      size_t n0 = o->nvals;
      const char *q = p;
      bool done = false;
      for (;;) {
        int64_t v;
        q = reader_fast_int64(q, e, &v);
        if (!q) break;
        if (o->nvals == o->val_cap && ensure_value(r, o) < 0) return ROW_FAIL;
        o->ids[o->nvals++] = v;
        if (q == e || *q == sep) {
          done = true;
          break;
        }
        if (*q++ != c->separator) break;
      }
      if (done) {
        p = q;
        continue;
      }
      o->nvals = n0;
    }
    p = parse_field(r, &x, f + 1, c, p, &st);
    if (!p) return st;
  }
  if (r->nfields > 0) { /* the rest of the row: field:feature_id tokens */
    int f = r->nfile_fields;
    while (p < e) {
      if (f > 0) p++;
      p = parse_token(r, &x, ++f, p, &st);
      if (!p) return st;
    }
  } else if (p != e) {
    int total = r->nfile_fields + count_fields(r, p + 1, e);
    bool trailing = p + 1 == e;
    mtl_error("%s:%lld:%d: expected %d fields, got %d%s", x.path, (long long)line, r->nfile_fields + 1,
              r->nfile_fields, total, trailing ? " (a trailing separator)" : "");
    return ROW_BAD;
  }
  return ROW_OK;
}

/* ---- headers ---------------------------------------------------------------- */
int reader_parse_header(mtl_reader *r, const char *s, const char *e) {
  const char *path = r->paths[r->file];
  row_ctx x = {path, 1, s, e};
  int nf = count_fields(r, s, e);
  if (reader_resize(r, (void **)&r->field_map, (size_t)r->nfile_fields * sizeof(int), (size_t)nf * sizeof(int)) < 0)
    return -1;
  r->nfile_fields = nf;
  const char *p = s;
  int st;
  for (int f = 0; f < nf; f++) {
    if (f > 0) p++;
    const char *name, *lim, *after;
    bool quoted;
    if (field_content(r, &x, f + 1, NULL, p, &name, &lim, &after, &quoted, &st) < 0) return -1;
    const char *end = quoted ? after : field_text_end(r, p, e);
    if (!quoted) lim = end;
    size_t n = (size_t)(lim - name);
    int found = -1;
    for (int c = 0; c < r->ncols; c++)
      if (strlen(r->cols[c].name) == n && !memcmp(r->cols[c].name, name, n)) found = c;
    if (found < 0 && !r->skip_unknown_columns) {
      char got[512];
      reader_quote_text(got, sizeof got, name, name + n);
      return mtl_error("%s:1:%d: expected a column named in the schema, got \"%s\"", path, f + 1, got);
    }
    for (int g = 0; g < f; g++)
      if (found >= 0 && r->field_map[g] == found)
        return mtl_error("%s:1:%d: expected each column once in the header, got '%s' again", path, f + 1,
                         r->cols[found].name);
    r->field_map[f] = found;
    p = end;
  }
  for (int c = 0; c < r->ncols; c++) {
    bool seen = false;
    for (int f = 0; f < nf; f++) seen |= r->field_map[f] == c;
    if (!seen) return mtl_error("%s:1: expected a column named '%s' in the header, got none", path, r->cols[c].name);
  }
  return 0;
}

/* ---- creation ----------------------------------------------------------------- */
static int add_output(mtl_reader *r, const char *name, mtl_output_kind kind) {
  for (int i = 0; i < r->nouts; i++)
    if (!strcmp(r->outs[i].name, name)) return mtl_error("mtl.data: two outputs are named '%s'", name);
  if (reader_resize(r, (void **)&r->outs, (size_t)r->nouts * sizeof(output), (size_t)(r->nouts + 1) * sizeof(output)) < 0)
    return -1;
  output *o = &r->outs[r->nouts];
  memset(o, 0, sizeof *o);
  o->kind = kind;
  o->width = 1;
  if (!(o->name = dup_string(r, name))) return -1;
  return r->nouts++;
}

static int add_glob(mtl_reader *r, const char *pattern) {
  bool is_glob = strpbrk(pattern, "*?[") != NULL;
  glob_t g;
  size_t n = 1;
  if (is_glob) {
    int st = glob(pattern, 0, NULL, &g);
    if (st == GLOB_NOMATCH) return mtl_error("mtl.data: no file matches '%s'", pattern);
    if (st != 0) return mtl_error("mtl.data: cannot expand '%s'", pattern);
    n = g.gl_pathc;
  } else if (access(pattern, R_OK) != 0) {
    return mtl_error("mtl.data: cannot open '%s': %s", pattern, strerror(errno));
  }
  int st = reader_resize(r, (void **)&r->paths, (size_t)r->npaths * sizeof(char *),
                         (size_t)(r->npaths + (int)n) * sizeof(char *));
  for (size_t i = 0; st == 0 && i < n; i++) {
    char *p = dup_string(r, is_glob ? g.gl_pathv[i] : pattern);
    if (!p) st = -1;
    else r->paths[r->npaths++] = p;
  }
  if (is_glob) globfree(&g);
  return st;
}

/* A sequence column's value kind, step separator and expected text. */
static int set_seq(mtl_reader *r, column *c, const mtl_column_spec *spec) {
  c->float_values = spec->float_values;
  c->step_separator = spec->step_separator;
  if (c->float_values && c->string_values)
    return mtl_error("mtl.data: column '%s': sequence values are numbers or strings, not both", c->name);
  char st = c->step_separator;
  if (st && (st == c->separator || st == r->sep || st == '\n' || st == '\r' || (r->quote && st == r->quote)))
    return mtl_error("mtl.data: column '%s': the step separator '%c' must differ from the other separators, "
                     "the quote and line ends", c->name, st);
  const char *what = c->float_values ? "numbers" : c->string_values ? "non-empty values" : "integers";
  if (st)
    snprintf(c->expect, sizeof c->expect, "%s joined by '%c' in steps separated by '%c'", what, st, c->separator);
  else
    snprintf(c->expect, sizeof c->expect, "%s separated by '%c'", what, c->separator);
  return 0;
}

static int add_column(mtl_reader *r, const mtl_column_spec *spec) {
  column *c = &r->cols[r->ncols++];
  memset(c, 0, sizeof *c);
  c->out = -1;
  if (!spec->name || !spec->name[0]) return mtl_error("mtl.data: column %d has no name", r->ncols);
  if (!(c->name = dup_string(r, spec->name))) return -1;
  if ((unsigned)spec->type > MTL_COLUMN_SKIP)
    return mtl_error("mtl.data: column '%s' has an unknown type (%d)", c->name, (int)spec->type);
  c->type = spec->type;
  for (int i = 0; i < r->ncols - 1; i++)
    if (!strcmp(r->cols[i].name, c->name)) return mtl_error("mtl.data: two columns are named '%s'", c->name);
  c->separator = spec->separator ? spec->separator : c->type == MTL_COLUMN_KV ? ',' : '|';
  c->kv_separator = spec->kv_separator ? spec->kv_separator : ':';
  c->string_values = spec->string_values;
  if (c->type == MTL_COLUMN_SEQ && set_seq(r, c, spec) < 0) return -1;
  if (c->type == MTL_COLUMN_MULTI || c->type == MTL_COLUMN_KV || c->type == MTL_COLUMN_SEQ) {
    /* it may equal the field separator: such fields are quoted ("1:0.5,2:1") */
    if (c->separator == '\n' || c->separator == '\r' || (r->quote && c->separator == r->quote))
      return mtl_error("mtl.data: column '%s': the value separator must not be a line end or the quote", c->name);
    if (c->type == MTL_COLUMN_KV && (c->kv_separator == c->separator || c->kv_separator == r->sep))
      return mtl_error("mtl.data: column '%s': the key:value separator '%c' must differ from the other separators",
                       c->name, c->kv_separator);
  }
  switch (c->type) {
  case MTL_COLUMN_INT64: snprintf(c->expect, sizeof c->expect, "an integer"); break;
  case MTL_COLUMN_FLOAT: snprintf(c->expect, sizeof c->expect, "a number"); break;
  case MTL_COLUMN_MULTI:
    snprintf(c->expect, sizeof c->expect, "%s separated by '%c'", c->string_values ? "non-empty values" : "integers",
             c->separator);
    break;
  case MTL_COLUMN_KV:
    snprintf(c->expect, sizeof c->expect, "%s%cnumber pairs separated by '%c'",
             c->string_values ? "key" : "integer", c->kv_separator, c->separator);
    break;
  default: break;
  }
  if (spec->default_text) {
    c->default_len = strlen(spec->default_text);
    if (!(c->default_text = dup_string(r, spec->default_text))) return -1;
  }
  if (spec->group && c->type != MTL_COLUMN_FLOAT)
    return mtl_error("mtl.data: column '%s' is %s; only float columns can form a group", c->name, mtl_column_type_name(c->type));
  c->standardize = spec->standardize;
  if (c->standardize != MTL_STANDARDIZE_NONE && c->type != MTL_COLUMN_FLOAT)
    return mtl_error("mtl.data: column '%s' is %s; only float columns can be standardized", c->name, mtl_column_type_name(c->type));
  if (c->standardize == MTL_STANDARDIZE_GIVEN) {
    if (!(spec->std > 0) || !isfinite(spec->std) || !isfinite(spec->mean))
      return mtl_error("mtl.data: column '%s': expected a finite mean and a std > 0, got %g and %g", c->name,
                       spec->mean, spec->std);
    c->mean = spec->mean;
    c->std = spec->std;
    c->fitted = true;
  } else if (c->standardize == MTL_STANDARDIZE_FIT && r->batch_size != 0) {
    return mtl_error("mtl.data: column '%s': fitting the standardization needs the whole input in one batch (read_all)",
                     c->name);
  }
  /* outputs */
  if (c->type == MTL_COLUMN_SKIP) return 0;
  if (c->type == MTL_COLUMN_FLOAT && spec->group) {
    for (int i = 0; i < r->nouts; i++)
      if (r->outs[i].group && !strcmp(r->outs[i].name, spec->group)) {
        output *o = &r->outs[i];
        if (reader_resize(r, (void **)&o->lane_column, (size_t)o->width * sizeof(int),
                          (size_t)(o->width + 1) * sizeof(int)) < 0)
          return -1;
        c->out = i;
        c->lane = o->width;
        o->has_fit |= c->standardize == MTL_STANDARDIZE_FIT;
        o->lane_column[o->width++] = r->ncols - 1;
        return 0;
      }
  }
  mtl_output_kind kind = c->type == MTL_COLUMN_FLOAT ? MTL_OUTPUT_DENSE
                         : c->type == MTL_COLUMN_MULTI ? MTL_OUTPUT_BAG
                         : c->type == MTL_COLUMN_KV    ? MTL_OUTPUT_WEIGHTED_BAG
                         : c->type == MTL_COLUMN_SEQ   ? MTL_OUTPUT_SEQ
                                                       : MTL_OUTPUT_IDS;
  int i = add_output(r, c->type == MTL_COLUMN_FLOAT && spec->group ? spec->group : c->name, kind);
  if (i < 0) return -1;
  c->out = i;
  c->lane = 0;
  r->outs[i].float_values = c->float_values;
  if (kind == MTL_OUTPUT_DENSE) {
    output *o = &r->outs[i];
    o->group = spec->group != NULL;
    o->has_fit = c->standardize == MTL_STANDARDIZE_FIT;
    if (reader_resize(r, (void **)&o->lane_column, 0, sizeof(int)) < 0) return -1;
    o->lane_column[0] = r->ncols - 1;
  }
  return 0;
}

static int add_fields(mtl_reader *r, const mtl_reader_options *opt) {
  r->nfields = opt->nfields;
  r->field_out0 = r->nouts;
  r->field_sep = opt->field_separator ? opt->field_separator : ':';
  r->skip_unknown_fields = opt->skip_unknown_fields;
  if (r->field_sep == r->sep) return mtl_error("mtl.data: the field separator must differ from the separator");
  if (opt->header) return mtl_error("mtl.data: field:feature_id rows have no header");
  int size = 16;
  while (size < 2 * opt->nfields) size *= 2;
  if (reader_resize(r, (void **)&r->field_table, 0, (size_t)size * sizeof(int)) < 0) return -1;
  r->field_mask = size - 1;
  for (int i = 0; i < size; i++) r->field_table[i] = -1;
  for (int k = 0; k < opt->nfields; k++) {
    const char *name = opt->fields[k];
    if (!name || !name[0]) return mtl_error("mtl.data: field %d has no name", k + 1);
    if (strchr(name, r->field_sep) || strchr(name, r->sep))
      return mtl_error("mtl.data: field name '%s' contains a separator", name);
    if (add_output(r, name, MTL_OUTPUT_BAG) < 0) return -1;
    uint64_t h = (uint64_t)mtl_hash_string(name, strlen(name));
    int i = (int)(h & (uint64_t)r->field_mask);
    while (r->field_table[i] >= 0) i = (i + 1) & r->field_mask;
    r->field_table[i] = k;
  }
  return 0;
}

/* Checks every default by parsing it into row 0 of the buffers. */
static int check_defaults(mtl_reader *r) {
  if (ensure_row(r) < 0) return -1;
  for (int i = 0; i < r->ncols; i++) {
    column *c = &r->cols[i];
    if (!c->default_text || c->type == MTL_COLUMN_SKIP) continue;
    r->expect = NULL;
    r->failed = false;
    const char *q = put_value(r, c, c->default_text, c->default_text + c->default_len, true);
    row_rollback(r);
    if (!q) {
      if (!r->expect || r->failed) return -1;
      char got[512];
      reader_quote_text(got, sizeof got, c->default_text, c->default_text + c->default_len);
      return mtl_error("mtl.data: the default of column '%s': expected %s, got \"%s\"", c->name, r->expect, got);
    }
  }
  return 0;
}

mtl_reader *mtl_reader_new(const mtl_reader_options *opt) {
  mtl_reader *r = calloc(1, sizeof *r);
  if (!r) {
    mtl_error("mtl.data: out of memory");
    return NULL;
  }
  r->file = -1;
  r->pending = -1;
  r->sep = opt->separator ? opt->separator : ',';
  r->quote = opt->no_quoting ? 0 : opt->quote ? opt->quote : '"';
  r->header = opt->header;
  r->skip_unknown_columns = opt->skip_unknown_columns;
  r->skip_errors = opt->skip_errors;
  r->drop_last = opt->drop_last;
  r->batch_size = opt->batch_size;
  r->max_rows = opt->max_rows;
  r->shuffle_n = opt->shuffle_buffer;
  r->has_shuffle_seed = opt->has_shuffle_seed;
  r->shuffle_seed = r->shuffle_state = opt->shuffle_seed;
  r->chunk_size = opt->chunk_size ? opt->chunk_size : (size_t)1 << 20;
  r->batch_block = -1;
  r->part_count = opt->partition_count;
  if (opt->partition_count > 1) {
    if (opt->partition_index < 0 || opt->partition_index >= opt->partition_count || opt->partition_block < 1 ||
        opt->partition_block > INT64_MAX / opt->partition_count) {
      mtl_error("mtl.data: partition: expected 0 <= index < count and 1 <= block <= 2^63 / count, got index %lld, count %lld, block %lld",
                (long long)opt->partition_index, (long long)opt->partition_count, (long long)opt->partition_block);
      goto fail;
    }
    int64_t k = opt->partition_block, n = opt->partition_count, i = opt->partition_index;
    r->part_block = k;
    r->part_lo = i * k / n;
    r->part_hi = (i + 1) * k / n;
  } else if (opt->partition_count < 0) {
    mtl_error("mtl.data: partition: count must be >= 1, got %lld", (long long)opt->partition_count);
    goto fail;
  }
  if (r->sep == '\n' || r->sep == '\r' || r->sep == r->quote) {
    mtl_error("mtl.data: the separator must not be a line end or the quote");
    goto fail;
  }
  if (opt->batch_size < 0 || opt->max_rows < 0 || opt->shuffle_buffer < 0) {
    mtl_error("mtl.data: batch_size, max_rows and shuffle_buffer must be >= 0");
    goto fail;
  }
  if (r->chunk_size < 64 || r->chunk_size > ((size_t)1 << 30)) {
    mtl_error("mtl.data: chunk_size must be between 64 bytes and 1 GiB, got %zu", r->chunk_size);
    goto fail;
  }
  if (opt->text && opt->nfiles > 0) {
    mtl_error("mtl.data: give files or text, not both");
    goto fail;
  }
  if (opt->text) { /* in-memory rows: one input, named like a file */
    r->text_input = true;
    if (reader_resize(r, (void **)&r->paths, 0, sizeof(char *)) < 0) goto fail;
    if (!(r->paths[0] = dup_string(r, opt->text_name ? opt->text_name : "<text>"))) goto fail;
    r->npaths = 1;
    if (mtl_reader_set_text(r, opt->text, opt->text_len) < 0) goto fail;
  } else if (opt->nfiles <= 0) {
    mtl_error("mtl.data: no files given");
    goto fail;
  }
  for (int i = 0; i < opt->nfiles; i++)
    if (!opt->files[i] || add_glob(r, opt->files[i]) < 0) goto fail;
  if (opt->ncolumns < 0 || (opt->ncolumns == 0 && opt->nfields == 0)) {
    mtl_error("mtl.data: no columns given");
    goto fail;
  }
  if (reader_resize(r, (void **)&r->cols, 0, (size_t)opt->ncolumns * sizeof(column)) < 0) goto fail;
  for (int i = 0; i < opt->ncolumns; i++)
    if (add_column(r, &opt->columns[i]) < 0) goto fail;
  if (opt->nfields > 0 && add_fields(r, opt) < 0) goto fail;
  /* without a header, the file's fields are the schema's columns in order */
  if (reader_resize(r, (void **)&r->field_map, 0, (size_t)r->ncols * sizeof(int)) < 0) goto fail;
  r->nfile_fields = r->ncols;
  for (int i = 0; i < r->ncols; i++) r->field_map[i] = i;
  for (int i = 0; i < r->ncols; i++) /* the outputs array is final now */
    r->cols[i].o = r->cols[i].out >= 0 ? &r->outs[r->cols[i].out] : NULL;
  for (int i = 0; i < r->nouts; i++) /* the bag outputs, for row commits */
    if (r->outs[i].kind >= MTL_OUTPUT_BAG) {
      if (reader_resize(r, (void **)&r->bags, (size_t)r->nbags * sizeof(int), (size_t)(r->nbags + 1) * sizeof(int)) < 0)
        goto fail;
      r->bags[r->nbags++] = i;
    }
  if (check_defaults(r) < 0) goto fail;
  return r;
fail:
  mtl_reader_free(r);
  return NULL;
}

void mtl_reader_free(mtl_reader *r) {
  if (!r) return;
  reader_input_free(r);
  for (int i = 0; i < r->ncols; i++) {
    free(r->cols[i].name);
    free(r->cols[i].default_text);
  }
  free(r->cols);
  drop_batch(r);
  for (int i = 0; i < r->nouts; i++) {
    output *o = &r->outs[i];
    free(o->name);
    free(o->lane_column);
    free(o->fit);
  }
  free(r->outs);
  free(r->bags);
  for (int i = 0; i < r->npaths; i++) free(r->paths[i]);
  free(r->paths);
  free(r->field_table);
  free(r->field_map);
  free(r->scratch);
  for (int i = 0; i < r->nmessages; i++) free(r->messages[i]);
  free(r);
}

/* ---- batches ---------------------------------------------------------------- */
int mtl_reader_num_outputs(const mtl_reader *r) { return r->nouts; }
const char *mtl_reader_output_name(const mtl_reader *r, int i) {
  return i >= 0 && i < r->nouts ? r->outs[i].name : NULL;
}
mtl_output_kind mtl_reader_output_kind(const mtl_reader *r, int i) {
  return i >= 0 && i < r->nouts ? r->outs[i].kind : MTL_OUTPUT_IDS;
}
bool mtl_reader_output_float(const mtl_reader *r, int i) { return i >= 0 && i < r->nouts && r->outs[i].float_values; }
int mtl_reader_output_width(const mtl_reader *r, int i) { return i >= 0 && i < r->nouts ? r->outs[i].width : 0; }
int mtl_reader_output_column(const mtl_reader *r, int i, int lane) {
  if (i < 0 || i >= r->nouts) return -1;
  const output *o = &r->outs[i];
  return o->lane_column && lane >= 0 && lane < o->width ? o->lane_column[lane] : -1;
}
int64_t mtl_reader_skipped(const mtl_reader *r) { return r->skipped; }
int mtl_reader_num_messages(const mtl_reader *r) { return r->nmessages; }
const char *mtl_reader_message(const mtl_reader *r, int i) {
  return i >= 0 && i < r->nmessages ? r->messages[i] : NULL;
}
size_t mtl_reader_peak_bytes(const mtl_reader *r) { return r->peak_bytes; }

int mtl_reader_column_stats(const mtl_reader *r, int c, double *mean, double *std) {
  if (c < 0 || c >= r->ncols || r->cols[c].standardize == MTL_STANDARDIZE_NONE || !r->cols[c].fitted) return -1;
  *mean = r->cols[c].mean;
  *std = r->cols[c].std;
  return 0;
}

int mtl_reader_rewind(mtl_reader *r) {
  reader_input_reset(r);
  r->shuffle_state = r->shuffle_seed; /* every pass replays the same order */
  batch_reset(r);
  r->started = true;
  r->pass_done = false;
  r->delivered = 0;
  r->skipped = 0;
  for (int i = 0; i < r->nmessages; i++) free(r->messages[i]);
  r->nmessages = 0;
  return 0;
}

/* Mean and population std (ddof = 0) of a lane's raw values, two passes in
 * double; a std of 0 becomes 1. */
static void fit_lane(const output *o, int lane, int64_t n, column *c) {
  double sum = 0, ss = 0;
  for (int64_t i = 0; i < n; i++) sum += o->fit[i * o->width + lane];
  double mean = n ? sum / (double)n : 0.0;
  for (int64_t i = 0; i < n; i++) {
    double d = o->fit[i * o->width + lane] - mean;
    ss += d * d;
  }
  double std = n ? sqrt(ss / (double)n) : 0.0;
  c->mean = mean;
  c->std = std > 0 ? std : 1.0;
  c->fitted = true;
}

/* Hands t over as a tensor of the given shape: t itself when it has exactly
 * that many elements, else a view of its first elements — or, when `compact`
 * and most of t would be unused (read_all over-estimated), a copy of them.
 * Consumes t. */
static mtl_tensor *take(mtl_tensor *t, int ndim, const int64_t *shape, bool compact) {
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= shape[i];
  if (n == t->numel && ndim == 1) return t;
  mtl_tensor *v;
  if (compact && n < t->numel - t->numel / 8) {
    v = mtl_tensor_new(t->dtype, ndim, shape);
    if (v) memcpy(v->storage->data, t->storage->data, (size_t)n * mtl_dtype_size(t->dtype));
  } else {
    v = mtl_tensor_view(t, ndim, shape, NULL, 0);
  }
  mtl_tensor_release(t);
  return v;
}

static void release_outputs(mtl_batch_output *out, int n) {
  for (int i = 0; i < n; i++) {
    mtl_tensor_release(out[i].values);
    mtl_tensor_release(out[i].offsets);
    mtl_tensor_release(out[i].weights);
    mtl_tensor_release(out[i].steps);
    out[i].values = out[i].offsets = out[i].weights = out[i].steps = NULL;
  }
}

/* Hands the batch's tensors over (n rows); the next batch starts new ones. */
static int finish_batch(mtl_reader *r, mtl_batch_output *out) {
  int64_t n = r->rows;
  int st = 0;
  for (int i = 0; i < r->nouts; i++) out[i].values = out[i].offsets = out[i].weights = out[i].steps = NULL;
  for (int i = 0; i < r->nouts; i++) {
    output *o = &r->outs[i];
    mtl_batch_output *b = &out[i];
    if (o->kind == MTL_OUTPUT_DENSE && o->has_fit) {
      for (int j = 0; j < o->width; j++) {
        column *c = &r->cols[o->lane_column[j]];
        if (c->standardize != MTL_STANDARDIZE_FIT) continue;
        fit_lane(o, j, n, c);
        for (int64_t k = 0; k < n; k++)
          o->dense[k * o->width + j] = z_float((o->fit[k * o->width + j] - c->mean) / c->std);
      }
    }
    int64_t shape[2] = {n, o->width}, nv = (int64_t)o->nvals, n1 = n + 1, ns1 = (int64_t)o->nsteps + 1;
    forget(r, o->t_values);
    forget(r, o->t_offsets);
    forget(r, o->t_weights);
    forget(r, o->t_steps);
    bool compact = r->batch_size == 0;
    if (o->kind == MTL_OUTPUT_IDS || o->kind == MTL_OUTPUT_DENSE) {
      b->values = take(o->t_values, o->group ? 2 : 1, shape, compact);
    } else if (o->kind == MTL_OUTPUT_SEQ) {
      b->values = take(o->float_values ? o->t_weights : o->t_values, 1, &nv, compact);
      b->offsets = take(o->t_offsets, 1, &n1, compact);
      b->steps = take(o->t_steps, 1, &ns1, compact);
      if (!b->offsets || !b->steps) st = -1;
      o->val_hint = o->val_cap;
      o->step_hint = o->step_cap;
    } else {
      b->values = take(o->t_values, 1, &nv, compact);
      b->offsets = take(o->t_offsets, 1, &n1, compact);
      if (o->kind == MTL_OUTPUT_WEIGHTED_BAG) b->weights = take(o->t_weights, 1, &nv, compact);
      if (!b->offsets || (o->kind == MTL_OUTPUT_WEIGHTED_BAG && !b->weights)) st = -1;
      o->val_hint = o->val_cap; /* start the next batch with as much room */
    }
    if (!b->values) st = -1;
    o->t_values = o->t_offsets = o->t_weights = o->t_steps = NULL;
  }
  for (int i = 0; i < r->nouts; i++) {
    output *o = &r->outs[i];
    o->nvals = o->val_cap = o->nsteps = o->step_cap = 0;
  }
  r->row_cap = 0;
  r->rows = 0;
  if (st < 0) release_outputs(out, r->nouts);
  return st;
}

static int record_skip(mtl_reader *r) {
  r->skipped++;
  if (r->nmessages < READER_MAX_MESSAGES) {
    const char *m = mtl_error_message();
    char *d = NULL;
    if (reader_resize(r, (void **)&d, 0, strlen(m) + 1) < 0) return -1;
    memcpy(d, m, strlen(m) + 1);
    r->messages[r->nmessages++] = d;
  }
  return 0;
}

int64_t mtl_reader_next(mtl_reader *r, mtl_batch_output *out) {
  if (!r->started) mtl_reader_rewind(r);
  if (r->pass_done) return 0;
  batch_reset(r);
  int64_t target = r->batch_size > 0 ? r->batch_size : INT64_MAX;
  bool blocks = r->part_count > 1 && r->shuffle_n <= 0 && r->batch_size > 0; /* batches end at block ends */
  r->batch_block = -1;
  while (r->rows < target) {
    if (r->part_count <= 1 && r->max_rows && r->delivered + r->rows >= r->max_rows) {
      r->pass_done = true;
      break;
    }
    const char *s, *e;
    int file;
    int64_t line;
    int k = reader_next_row(r, &s, &e, &file, &line);
    if (k == 0) {
      r->pass_done = true;
      break;
    }
    if (k > 0 && blocks) {
      if (r->rows > 0 && r->row_block != r->batch_block) { /* the next batch's first row */
        r->held = true;
        r->held_s = s;
        r->held_e = e;
        r->held_file = file;
        r->held_line = line;
        break;
      }
      r->batch_block = r->row_block;
    }
    if (k < 0 || ensure_row(r) < 0) goto fail;
    int st = parse_row(r, s, e, file, line);
    if (st == ROW_OK) {
      row_commit(r);
    } else {
      row_rollback(r);
      if (st == ROW_FAIL || !r->skip_errors) goto fail;
      if (record_skip(r) < 0) goto fail;
    }
  }
  int64_t n = r->rows;
  if (n == 0 || (r->drop_last && r->batch_size > 0 && n < r->batch_size)) {
    r->pass_done = true;
    return 0;
  }
  if (finish_batch(r, out) < 0) goto fail;
  r->delivered += n;
  return n;
fail:
  drop_batch(r);
  r->pass_done = true; /* the pass ends at an error; rewind to read again */
  return -1;
}
