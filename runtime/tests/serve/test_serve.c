/* C test of the serving API (runtime/include/mtl/serve.h); run by ctest,
 * silent on success.
 *
 * Setup: fixture.lua runs in a LuaJIT state of this program (with its own
 * copy of mtl.core): it trains an MMoE and an ESMM on generated rows covering
 * every feature type, exports them, and returns 300 request rows with the
 * probabilities the trained Lua models give them. Then:
 * - scores from text lines, field strings and typed columns equal the Lua
 *   model's probabilities (to 1e-6);
 * - several threads scoring at once give bit-identical results to one
 *   thread, and the pool grows no larger than max_states;
 * - bad inputs (missing or corrupt model directories, wrong field counts,
 *   bad numbers, ids out of range, bad offsets, NULLs) return -1 / NULL with
 *   a clear message, and the model keeps scoring correctly afterwards. */
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "../check.h"
#include "mtl/serve.h"

int luaopen_mtl_core(lua_State *L);

static int verbose; /* MTL_TEST_VERBOSE=1 prints what was measured */
#define NOTE(...) (verbose ? (void)printf(__VA_ARGS__) : (void)0)

/* ---- the fixture, read out of the Lua table ------------------------------------ */
typedef struct {
  char *name;
  int64_t *ids;
  float *values;
  char **strings;
  int64_t *offsets;
} typed_column;

typedef struct {
  char *dir;
  int noutputs, n, nfields, ncols;
  char **outputs;
  char **lines;    /* n */
  char **fields;   /* n * nfields */
  float *expected; /* n * noutputs */
  typed_column *cols;
  mtl_column_data *data;
} fixture;

static char *dup_str(const char *s) {
  char *d = malloc(strlen(s) + 1);
  strcpy(d, s);
  return d;
}

static char **string_list(lua_State *L, int idx, int *n) {
  *n = (int)lua_objlen(L, idx);
  char **out = calloc((size_t)*n + 1, sizeof *out);
  for (int i = 0; i < *n; i++) {
    lua_rawgeti(L, idx, i + 1);
    out[i] = dup_str(lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  return out;
}

static double *number_list(lua_State *L, int idx, const char *key, int *n) {
  lua_getfield(L, idx, key);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    *n = 0;
    return NULL;
  }
  *n = (int)lua_objlen(L, -1);
  double *out = calloc((size_t)*n + 1, sizeof *out);
  for (int i = 0; i < *n; i++) {
    lua_rawgeti(L, -1, i + 1);
    out[i] = lua_tonumber(L, -1);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  return out;
}

static void read_case(lua_State *L, int idx, fixture *f) {
  int n;
  lua_getfield(L, idx, "dir");
  f->dir = dup_str(lua_tostring(L, -1));
  lua_pop(L, 1);
  lua_getfield(L, idx, "outputs");
  f->outputs = string_list(L, lua_gettop(L), &f->noutputs);
  lua_pop(L, 1);
  lua_getfield(L, idx, "lines");
  f->lines = string_list(L, lua_gettop(L), &f->n);
  lua_pop(L, 1);
  lua_getfield(L, idx, "ncolumns");
  f->nfields = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);
  f->fields = calloc((size_t)f->n * (size_t)f->nfields, sizeof *f->fields);
  lua_getfield(L, idx, "fields");
  for (int i = 0; i < f->n; i++) {
    lua_rawgeti(L, -1, i + 1);
    for (int k = 0; k < f->nfields; k++) {
      lua_rawgeti(L, -1, k + 1);
      f->fields[(size_t)i * (size_t)f->nfields + (size_t)k] = dup_str(lua_tostring(L, -1));
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  f->expected = calloc((size_t)f->n * (size_t)f->noutputs, sizeof *f->expected);
  lua_getfield(L, idx, "expected");
  for (int j = 0; j < f->noutputs; j++) {
    lua_rawgeti(L, -1, j + 1);
    for (int i = 0; i < f->n; i++) {
      lua_rawgeti(L, -1, i + 1);
      f->expected[(size_t)i * (size_t)f->noutputs + (size_t)j] = (float)lua_tonumber(L, -1);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  /* typed columns */
  lua_getfield(L, idx, "columns");
  int t = lua_gettop(L);
  f->cols = calloc(32, sizeof *f->cols);
  f->data = calloc(32, sizeof *f->data);
  lua_pushnil(L);
  while (lua_next(L, t) && f->ncols < 32) {
    typed_column *c = &f->cols[f->ncols];
    c->name = dup_str(lua_tostring(L, -2));
    int v = lua_gettop(L);
    double *ids = number_list(L, v, "ids", &n);
    if (ids) {
      c->ids = calloc((size_t)n + 1, sizeof *c->ids);
      for (int i = 0; i < n; i++) c->ids[i] = (int64_t)ids[i];
      free(ids);
    }
    double *vals = number_list(L, v, "values", &n);
    if (vals) {
      c->values = calloc((size_t)n + 1, sizeof *c->values);
      for (int i = 0; i < n; i++) c->values[i] = (float)vals[i];
      free(vals);
    }
    double *offs = number_list(L, v, "offsets", &n);
    if (offs) {
      c->offsets = calloc((size_t)n + 1, sizeof *c->offsets);
      for (int i = 0; i < n; i++) c->offsets[i] = (int64_t)offs[i];
      free(offs);
    }
    lua_getfield(L, v, "strings");
    if (!lua_isnil(L, -1)) c->strings = string_list(L, lua_gettop(L), &n);
    lua_pop(L, 2);
    f->data[f->ncols] = (mtl_column_data){c->name, c->ids, c->values, (const char *const *)c->strings, c->offsets};
    f->ncols++;
  }
  lua_pop(L, 1);
}

static void free_list(char **l, size_t n) {
  for (size_t i = 0; l && i < n; i++) free(l[i]);
  free(l);
}

static void free_case(fixture *f) {
  free(f->dir);
  free_list(f->outputs, (size_t)f->noutputs);
  free_list(f->lines, (size_t)f->n);
  free_list(f->fields, (size_t)f->n * (size_t)f->nfields);
  free(f->expected);
  for (int k = 0; k < f->ncols; k++) {
    typed_column *c = &f->cols[k];
    free(c->name);
    free(c->ids);
    free(c->values);
    free(c->offsets);
    if (c->strings) free_list(c->strings, (size_t)f->n);
  }
  free(f->cols);
  free(f->data);
}

/* Runs fixture.lua in a state of this program; fills cases[0..1]. */
static int make_fixture(const char *tmp, fixture *cases, int ncases) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, luaopen_mtl_core);
  lua_setfield(L, -2, "mtl.core");
  lua_pop(L, 1);
  lua_pushstring(L, MTL_SOURCE_DIR "/lua/?.lua;" MTL_SOURCE_DIR "/lua/?/init.lua;" MTL_SOURCE_DIR "/?.lua;");
  lua_getfield(L, -2, "path");
  lua_concat(L, 2);
  lua_setfield(L, -2, "path");
  lua_settop(L, 0);
  int rc = luaL_dofile(L, MTL_SOURCE_DIR "/runtime/tests/serve/fixture.lua");
  if (rc == 0) {
    lua_pushstring(L, tmp);
    rc = lua_pcall(L, 1, 1, 0);
  }
  if (rc != 0) {
    fprintf(stderr, "fixture: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return -1;
  }
  for (int k = 0; k < ncases; k++) {
    lua_rawgeti(L, -1, k + 1);
    read_case(L, lua_gettop(L), &cases[k]);
    lua_pop(L, 1);
  }
  lua_close(L);
  return 0;
}

/* ---- helpers ---------------------------------------------------------------------- */
/* The largest difference, relative to max(1, |b|) (scores such as the
 * expression's may exceed 1); NaN counts as a difference. */
static float max_diff(const float *a, const float *b, size_t n) {
  float d = 0;
  for (size_t i = 0; i < n; i++) {
    float e = fabsf(a[i] - b[i]) / fmaxf(1.0f, fabsf(b[i]));
    if (!(e <= d)) d = e;
  }
  return d;
}

static bool contains(const char *s, const char *part) { return s && strstr(s, part) != NULL; }

static long file_size(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static void write_text(const char *path, const char *text) {
  FILE *fp = fopen(path, "wb");
  CHECK(fp != NULL, "cannot write %s", path);
  if (!fp) return;
  fputs(text, fp);
  fclose(fp);
}

/* Rewrites uid's table size in a copy's config.lua ("num_buckets = 100,"). */
static void set_uid_buckets(const char *path, const char *to) {
  long size = file_size(path);
  FILE *fp = fopen(path, "rb");
  char *text = calloc((size_t)size + strlen(to) + 1, 1);
  size_t got = fp ? fread(text, 1, (size_t)size, fp) : 0;
  if (fp) fclose(fp);
  char *at = strstr(text, "num_buckets = 100,");
  CHECK(at != NULL && got == (size_t)size, "config.lua has uid's num_buckets = 100");
  if (at) {
    memmove(at + strlen(to), at + 18, strlen(at + 18) + 1);
    memcpy(at, to, strlen(to));
    write_text(path, text);
  }
  free(text);
}

/* ---- correctness: the C API against the Lua model ------------------------------------ */
static void check_scores(mtl_model *m, const fixture *f) {
  char err[1024];
  int k = f->noutputs, n = f->n;
  CHECK(mtl_model_num_outputs(m) == k, "outputs: %d, expected %d", mtl_model_num_outputs(m), k);
  for (int j = 0; j < k && j < mtl_model_num_outputs(m); j++)
    CHECK(!strcmp(mtl_model_output_name(m, j), f->outputs[j]), "output %d is '%s', expected '%s'", j,
          mtl_model_output_name(m, j), f->outputs[j]);
  CHECK(mtl_model_output_index(m, f->outputs[k - 1]) == k - 1, "output_index");
  CHECK(mtl_model_output_index(m, "nope") == -1 && mtl_model_output_name(m, k) == NULL, "output bounds");
  CHECK(mtl_model_num_tasks(m) == 2, "tasks: %d", mtl_model_num_tasks(m));
  CHECK(mtl_model_num_columns(m) == f->nfields, "columns: %d", mtl_model_num_columns(m));
  CHECK(!strcmp(mtl_model_column_type(m, 0), "skip") && !strcmp(mtl_model_column_type(m, 2), "int64") &&
            !strcmp(mtl_model_column_type(m, 3), "string") && !strcmp(mtl_model_column_type(m, 5), "multi") &&
            !strcmp(mtl_model_column_type(m, 6), "kv") && !strcmp(mtl_model_column_type(m, 10), "float") &&
            !strcmp(mtl_model_column_type(m, 15), "skip"),
        "column types");
  CHECK(mtl_model_column_index(m, "price") == 11, "column_index");

  float *out = malloc(sizeof(float) * (size_t)n * (size_t)(k + 3));
  CHECK(mtl_model_score_csv(m, (const char *const *)f->lines, n, out, k, err, sizeof err) == 0, "score_csv: %s", err);
  float d = max_diff(out, f->expected, (size_t)n * (size_t)k);
  CHECK(d <= 1e-6f, "%s: csv scores differ from the Lua model's by %g", f->dir, (double)d);
  NOTE("%s: %d rows x %d outputs; csv: max difference from Lua %g (first: %.6f vs %.6f)\n", f->dir, n, k, (double)d,
       (double)out[0], (double)f->expected[0]);
  int hits = 0, nt = mtl_model_num_tasks(m);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < nt; j++) hits += out[i * k + j] > 0 && out[i * k + j] < 1;
  CHECK(hits == n * nt, "task probabilities in (0, 1): %d of %d", hits, n * nt);
  int rs = mtl_model_output_index(m, "rank_score");
  CHECK(rs >= nt && rs < k, "rank_score is output %d", rs);

  memset(out, 0, sizeof(float) * (size_t)n * (size_t)k);
  CHECK(mtl_model_score_fields(m, (const char *const *)f->fields, n, f->nfields, out, k, err, sizeof err) == 0,
        "score_fields: %s", err);
  d = max_diff(out, f->expected, (size_t)n * (size_t)k);
  CHECK(d <= 1e-6f, "%s: field scores differ by %g", f->dir, (double)d);
  NOTE("  fields: max difference %g\n", (double)d);

  /* typed columns, with a wider stride: the padding is left alone */
  int stride = k + 3;
  for (int i = 0; i < n * stride; i++) out[i] = -7.0f;
  CHECK(mtl_model_score_columns(m, f->data, f->ncols, n, out, stride, err, sizeof err) == 0, "score_columns: %s",
        err);
  float worst = 0;
  int pad_ok = 1;
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < k; j++) {
      float e = max_diff(&out[i * stride + j], &f->expected[i * k + j], 1);
      if (!(e <= worst)) worst = e;
    }
    for (int j = k; j < stride; j++) pad_ok &= out[i * stride + j] == -7.0f;
  }
  /* typed floats are float32 where text is parsed as double: z-scores may
   * differ in the last bits, so a little more room */
  CHECK(worst <= 1e-5f, "%s: typed-column scores differ by %g", f->dir, (double)worst);
  NOTE("  typed columns: max difference %g\n", (double)worst);
  CHECK(pad_ok, "score_columns wrote past the outputs of a row");

  /* a subset of rows scores as in the full request; zero rows do nothing */
  CHECK(mtl_model_score_csv(m, (const char *const *)f->lines + 7, 5, out, k, err, sizeof err) == 0, "subset: %s",
        err);
  d = max_diff(out, f->expected + 7 * k, 5 * (size_t)k);
  CHECK(d <= 1e-6f, "subset scores differ by %g", (double)d);
  CHECK(mtl_model_score_csv(m, NULL, 0, NULL, k, err, sizeof err) == 0, "n = 0: %s", err);
  free(out);
}

/* ---- threads ---------------------------------------------------------------------------- */
typedef struct {
  mtl_model *m;
  const fixture *f;
  const float *reference; /* sequential scores of every row, csv */
  int id, iterations, mismatches, errors;
  char err[512];
} thread_job;

/* Request it of thread id: rows [*start, *start + *count) of the fixture,
 * every third one as fields, the others as CSV lines; scores into out. */
static int score_request(mtl_model *m, const fixture *f, int id, int it, float *out, int *start, int *count,
                         char *err, size_t errsize) {
  int k = f->noutputs;
  *start = (id * 37 + it * 11) % 100;
  *count = 50 + (id * 13 + it * 29) % 150;
  if ((it + id) % 3 == 2)
    return mtl_model_score_fields(m, (const char *const *)f->fields + (size_t)*start * (size_t)f->nfields, *count,
                                  f->nfields, out, k, err, errsize);
  return mtl_model_score_csv(m, (const char *const *)f->lines + *start, *count, out, k, err, errsize);
}

static void *score_thread(void *arg) {
  thread_job *j = arg;
  int k = j->f->noutputs;
  float *out = malloc(sizeof(float) * (size_t)j->f->n * (size_t)k);
  for (int it = 0; it < j->iterations; it++) {
    int start, count;
    int rc = score_request(j->m, j->f, j->id, it, out, &start, &count, j->err, sizeof j->err);
    if (rc != 0) {
      j->errors++;
      continue;
    }
    /* the same rows give the same bits whatever runs beside them: compare
     * with the sequential scores of this very request */
    const float *ref = j->reference + (size_t)(j->id * j->iterations + it) * (size_t)j->f->n * (size_t)k;
    if (memcmp(out, ref, sizeof(float) * (size_t)count * (size_t)k) != 0) j->mismatches++;
  }
  free(out);
  return NULL;
}

/* Each thread's requests scored one after the other: the reference the
 * threads compare with (with check_lua, also checked against Lua's scores).
 * The caller frees it. */
static float *sequential_scores(mtl_model *m, const fixture *f, int threads, int iterations, bool check_lua) {
  char err[512];
  int k = f->noutputs;
  size_t per = (size_t)f->n * (size_t)k;
  float *ref = calloc((size_t)threads * (size_t)iterations * per, sizeof *ref);
  for (int t = 0; t < threads; t++)
    for (int it = 0; it < iterations; it++) {
      int start, count;
      float *r = ref + (size_t)(t * iterations + it) * per;
      int rc = score_request(m, f, t, it, r, &start, &count, err, sizeof err);
      CHECK(rc == 0, "sequential: %s", err);
      if (!check_lua || rc != 0) continue;
      float d = max_diff(r, f->expected + (size_t)start * (size_t)k, (size_t)count * (size_t)k);
      CHECK(d <= 1e-6f, "sequential request differs from Lua by %g", (double)d);
    }
  return ref;
}

/* Runs the threads at once: every request must give the bits of its
 * sequential run (ref) and none may fail. */
static void score_in_threads(mtl_model *m, const fixture *f, const float *ref, int threads, int iterations) {
  enum { MAX_THREADS = 8 };
  pthread_t th[MAX_THREADS];
  thread_job jobs[MAX_THREADS];
  for (int t = 0; t < threads && t < MAX_THREADS; t++) {
    jobs[t] = (thread_job){m, f, ref, t, iterations, 0, 0, {0}};
    pthread_create(&th[t], NULL, score_thread, &jobs[t]);
  }
  for (int t = 0; t < threads && t < MAX_THREADS; t++) {
    pthread_join(th[t], NULL);
    CHECK(jobs[t].errors == 0, "thread %d: %d errors (%s)", t, jobs[t].errors, jobs[t].err);
    CHECK(jobs[t].mismatches == 0, "thread %d: %d requests differ from sequential scoring", t, jobs[t].mismatches);
  }
}

static void check_threads(const fixture *f) {
  char err[512];
  enum { THREADS = 4, ITER = 12 };
  mtl_model_options o = {NULL, 3, 1, NULL};
  mtl_model *m = mtl_model_load_opts(f->dir, &o, err, sizeof err);
  CHECK(m != NULL, "load: %s", err);
  if (!m) return;
  float *ref = sequential_scores(m, f, THREADS, ITER, true);
  CHECK(mtl_model_num_states(m) == 1, "one caller, one state: %d", mtl_model_num_states(m));
  score_in_threads(m, f, ref, THREADS, ITER);
  int states = mtl_model_num_states(m);
  CHECK(states >= 1 && states <= 3, "states: %d (max 3)", states);
  if (states == 1) fprintf(stderr, "note: the threads never overlapped (a very busy machine?)\n");
  NOTE("threads: %d x %d requests, all equal to sequential scoring; %d states in the pool\n", THREADS, ITER, states);
  free(ref);
  mtl_model_free(m);
}

/* precision "bf16": the dense weights packed once at load and shared by the
 * states; scores within bf16's rounding of the FP32 model's (and not equal to
 * them where the CPU has AVX512-BF16), FP32's where it lacks it. */
static void check_precision(const fixture *f) {
  char err[512];
  int k = f->noutputs, n = f->n;
  bool has_bf16 = __builtin_cpu_supports("avx512bf16") && !getenv("MTL_NO_BF16");
  mtl_model_options o = {NULL, 2, 2, "bf16"};
  mtl_model *m = mtl_model_load_opts(f->dir, &o, err, sizeof err);
  CHECK(m != NULL, "load bf16: %s", err);
  if (!m) return;
  CHECK(!strcmp(mtl_model_precision(m), has_bf16 ? "bf16" : "fp32"), "precision %s", mtl_model_precision(m));
  float *out = malloc(sizeof(float) * (size_t)n * (size_t)k);
  CHECK(mtl_model_score_csv(m, (const char *const *)f->lines, n, out, k, err, sizeof err) == 0, "bf16 score: %s", err);
  int differ = 0, far = 0;
  float tol = has_bf16 ? 0.02f : 1e-6f; /* the fallback: as check_scores, FP32 */
  for (int i = 0; i < n * k; i++) {
    float a = out[i], b = f->expected[i];
    differ += fabsf(a - b) > 1e-6f;
    far += fabsf(a - b) > tol * (1.0f + fabsf(b));
  }
  CHECK(far == 0, "%s: %d of %d scores further than %g from FP32's", mtl_model_precision(m), far, n * k, (double)tol);
  CHECK(has_bf16 ? differ > 0 : differ == 0, "bf16: %d of %d scores differ from FP32's", differ, n * k);
  NOTE("%s: %d of %d scores differ from FP32's by more than 1e-6, all within %g\n", mtl_model_precision(m), differ,
       n * k, (double)tol);
  free(out);
  mtl_model_free(m);
  mtl_model_options bad = {NULL, 1, 1, "fp16"};
  m = mtl_model_load_opts(f->dir, &bad, err, sizeof err);
  CHECK(!m && strstr(err, "precision must be 'fp32' or 'bf16', got 'fp16'"), "%s", err);
  mtl_model_free(m);
  mtl_model_options fp = {NULL, 1, 1, "fp32"};
  m = mtl_model_load_opts(f->dir, &fp, err, sizeof err);
  CHECK(m && !strcmp(mtl_model_precision(m), "fp32"), "fp32: %s", m ? mtl_model_precision(m) : err);
  mtl_model_free(m);
}

/* When new states cannot be made (here: their Lua code is gone), the pool
 * stops growing and every caller is served by the states there are. */
static void check_pool_cannot_grow(const char *tmp, const fixture *f) {
  char err[512], root[1024], cmd[4096];
  snprintf(root, sizeof root, "%s/lua-copy", tmp);
  snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp -r '%s/lua' '%s/models' '%s/'", root, MTL_SOURCE_DIR, MTL_SOURCE_DIR,
           root);
  CHECK(system(cmd) == 0, "%s", cmd);
  mtl_model_options o = {root, 4, 1, NULL};
  mtl_model *m = mtl_model_load_opts(f->dir, &o, err, sizeof err);
  CHECK(m != NULL, "load with a copy of the Lua code: %s", err);
  if (!m) return;
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
  CHECK(system(cmd) == 0, "%s", cmd);
  enum { THREADS = 3, ITER = 6 };
  float *ref = sequential_scores(m, f, THREADS, ITER, false);
  score_in_threads(m, f, ref, THREADS, ITER);
  CHECK(mtl_model_num_states(m) == 1, "the pool grew to %d states without its Lua code", mtl_model_num_states(m));
  NOTE("pool that cannot grow: %d threads served by %d state\n", THREADS, mtl_model_num_states(m));
  free(ref);
  mtl_model_free(m);
}

/* ---- errors ------------------------------------------------------------------------------ */
#define EXPECT_FAIL(call, part)                                                            \
  do {                                                                                     \
    err[0] = 0;                                                                            \
    int rc_ = (call);                                                                      \
    CHECK(rc_ == -1, "%s: expected a failure, got %d", #call, rc_);                        \
    CHECK(contains(err, part), "%s: message \"%s\" does not say \"%s\"", #call, err, part); \
    NOTE("  error: %s\n", err);                                                          \
  } while (0)

static void check_load_errors(const char *tmp, const fixture *f) {
  char err[1024], path[2048], bad[512];
  mtl_model *m = mtl_model_load("/nonexistent/model", err, sizeof err);
  CHECK(!m && contains(err, "mtl_model_load: cannot open the model directory '/nonexistent/model'"), "%s", err);
  m = mtl_model_load(NULL, err, sizeof err);
  CHECK(!m && contains(err, "no model directory"), "%s", err);
  NOTE("load errors, e.g.: %s\n", err);
  snprintf(path, sizeof path, "%s/manifest.json", f->dir);
  m = mtl_model_load(path, err, sizeof err);
  CHECK(!m && contains(err, "is not a directory"), "%s", err);
  m = mtl_model_load(tmp, err, sizeof err); /* a directory, but not a model */
  CHECK(!m && contains(err, "is not an mtl model directory") && contains(err, "manifest.json"), "%s", err);
  mtl_model_options o = {"/nonexistent/mtl", 0, 0, NULL};
  m = mtl_model_load_opts(f->dir, &o, err, sizeof err);
  CHECK(!m && contains(err, "cannot find mtl's Lua code in '/nonexistent/mtl'"), "%s", err);
  /* a tiny error buffer is cut, never overrun; none at all is fine */
  char small[8];
  memset(small, 'x', sizeof small);
  m = mtl_model_load("/nonexistent/model", small, 6);
  CHECK(!m && small[5] == 0 && small[6] == 'x', "small buffer");
  CHECK(!mtl_model_load("/nonexistent/model", NULL, 0), "no buffer");
  mtl_model_free(NULL);

  /* corrupt copies of the directory: the weights truncated, bytes of the
   * weights overwritten, the config not Lua, the manifest not JSON, the
   * config's table sizes not the weights' */
  static const struct {
    const char *file, *says;
  } bad_cases[] = {
      {"model.ckpt", "model.ckpt"},    {"model.ckpt", "model.ckpt"},    {"config.lua", "config.lua"},
      {"manifest.json", "is not an mtl model directory"}, {"config.lua", "model.ckpt"},
      {"vocab_gender.txt", "cannot open vocab_file"},
  };
  for (int c = 0; c < 6; c++) {
    char cmd[4096];
    snprintf(bad, sizeof bad, "%s/bad%d", tmp, c);
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", f->dir, bad);
    CHECK(system(cmd) == 0, "%s", cmd);
    snprintf(path, sizeof path, "%s/%s", bad, bad_cases[c].file);
    long size = file_size(path);
    if (c == 0) {
      CHECK(truncate(path, size / 2) == 0, "truncate");
    } else if (c == 1 || c == 2 || c == 3) {
      FILE *fp = fopen(path, "r+b");
      fseek(fp, c == 1 ? size / 2 : 0, SEEK_SET);
      fputs(c == 1 ? "garbage!" : "{{ garbage", fp);
      fclose(fp);
    } else if (c == 5) { /* the vocabulary file `mtl export` copied in is gone */
      CHECK(unlink(path) == 0, "unlink %s", path);
    } else { /* uid's table: 101 rows in the config, 100 in the weights */
      set_uid_buckets(path, "num_buckets = 101,");
    }
    m = mtl_model_load(bad, err, sizeof err);
    CHECK(!m, "corrupt copy %d loaded", c);
    CHECK(contains(err, "mtl_model_load: ") && contains(err, bad_cases[c].says), "corrupt copy %d: %s", c, err);
    NOTE("  corrupt %s: %s\n", bad_cases[c].file, err);
    if (m) mtl_model_free(m);
  }

  /* untrusted directories: config.lua is data, never run. Precompiled Lua,
   * an endless loop and a table far larger than model.ckpt holds are refused
   * (a hang here is a failure: ctest's timeout) */
  static const struct {
    const char *config, *says;
  } untrusted[] = {
      {"\033LJ\002\n precompiled", "is precompiled Lua (bytecode), not a table literal"},
      {"while true do end\n", "config.lua:1:1: expected a table literal (return { ... }), got \"while\""},
      {NULL, "building the model would allocate more than"}, /* uid: 10^9 rows */
  };
  for (int c = 0; c < 3; c++) {
    char cmd[4096];
    snprintf(bad, sizeof bad, "%s/untrusted%d", tmp, c);
    snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", f->dir, bad);
    CHECK(system(cmd) == 0, "%s", cmd);
    snprintf(path, sizeof path, "%s/config.lua", bad);
    if (untrusted[c].config) write_text(path, untrusted[c].config);
    else set_uid_buckets(path, "num_buckets = 1000000000,");
    m = mtl_model_load(bad, err, sizeof err);
    CHECK(!m, "untrusted copy %d loaded", c);
    CHECK(contains(err, "mtl_model_load: ") && contains(err, untrusted[c].says), "untrusted copy %d: %s", c, err);
    NOTE("  untrusted config.lua: %s\n", err);
    if (m) mtl_model_free(m);
  }
}

static void check_score_errors(mtl_model *m, const fixture *f) {
  char err[1024];
  int k = f->noutputs, n = f->n;
  float *out = malloc(sizeof(float) * (size_t)n * (size_t)k);
  const char *const *lines = (const char *const *)f->lines;
  char line[4096];
  const char *one[1] = {line};

  EXPECT_FAIL(mtl_model_score_csv(NULL, lines, 1, out, k, err, sizeof err), "mtl_model_score_csv: no model");
  EXPECT_FAIL(mtl_model_score_csv(m, lines, -1, out, k, err, sizeof err), "number of rows must be >= 0, got -1");
  EXPECT_FAIL(mtl_model_score_csv(m, lines, 1, NULL, k, err, sizeof err), "no output buffer");
  EXPECT_FAIL(mtl_model_score_csv(m, NULL, 1, out, k, err, sizeof err), "no lines");
  EXPECT_FAIL(mtl_model_score_csv(m, lines, 1, out, k - 1, err, sizeof err), "out_stride must be at least");
  const char *with_null[2] = {f->lines[0], NULL};
  EXPECT_FAIL(mtl_model_score_csv(m, with_null, 2, out, k, err, sizeof err), "line 2 is NULL");
  const char *empty[2] = {f->lines[0], ""};
  EXPECT_FAIL(mtl_model_score_csv(m, empty, 2, out, k, err, sizeof err), "line 2 is empty");
  snprintf(line, sizeof line, "%s\n%s", f->lines[0], f->lines[1]);
  EXPECT_FAIL(mtl_model_score_csv(m, one, 1, out, k, err, sizeof err), "line 1 contains a line break");

  /* wrong field counts: one field short, one too many */
  snprintf(line, sizeof line, "%s", f->lines[3]);
  *strrchr(line, ',') = 0;
  EXPECT_FAIL(mtl_model_score_csv(m, one, 1, out, k, err, sizeof err), "request:1:16: expected 16 fields, got 15");
  snprintf(line, sizeof line, "%s,extra", f->lines[3]);
  EXPECT_FAIL(mtl_model_score_csv(m, one, 1, out, k, err, sizeof err), "request:1");
  CHECK(contains(err, "16 fields"), "%s", err);
  /* bad values: a number, an integer, an id out of a fixed table's range; the
   * error names the row of the request */
  const char *rows3[3] = {f->lines[0], f->lines[1], line};
  snprintf(line, sizeof line, ",,12,paris,m,1|2,3:1.5,7,2,1:0.5,abc,3.5,1,0.1,2,x");
  EXPECT_FAIL(mtl_model_score_csv(m, rows3, 3, out, k, err, sizeof err),
              "request:3:11: expected a number for column 'age', got \"abc\"");
  snprintf(line, sizeof line, ",,1.5,paris,m,1|2,3:1.5,7,2,1:0.5,30,3.5,1,0.1,2,x");
  EXPECT_FAIL(mtl_model_score_csv(m, rows3, 3, out, k, err, sizeof err), "column 'uid'");
  snprintf(line, sizeof line, ",,1000,paris,m,1|2,3:1.5,7,2,1:0.5,30,3.5,1,0.1,2,x");
  EXPECT_FAIL(mtl_model_score_csv(m, rows3, 3, out, k, err, sizeof err), "out of range");
  snprintf(line, sizeof line, ",,12,paris,m,1|zz,3:1.5,7,2,1:0.5,30,3.5,1,0.1,2,x");
  EXPECT_FAIL(mtl_model_score_csv(m, rows3, 3, out, k, err, sizeof err), "column 'tags'");
  /* the label and unused columns are not read: anything goes there */
  snprintf(line, sizeof line, "yes,no,12,paris,m,1|2,3:1.5,7,2,1:0.5,30,3.5,1,0.1,2,\"x,y\"");
  CHECK(mtl_model_score_csv(m, one, 1, out, k, err, sizeof err) == 0, "labels are not read: %s", err);

  /* fields */
  EXPECT_FAIL(mtl_model_score_fields(m, (const char *const *)f->fields, 1, f->nfields - 1, out, k, err, sizeof err),
              "expected 16 fields per row (the training schema's columns), got 15");
  const char *row[16];
  for (int c = 0; c < 16; c++) row[c] = f->fields[c];
  row[12] = "1e";
  EXPECT_FAIL(mtl_model_score_fields(m, row, 1, 16, out, k, err, sizeof err), "column 'score'");
  row[12] = NULL;
  EXPECT_FAIL(mtl_model_score_fields(m, row, 1, 16, out, k, err, sizeof err), "row 1: field 13 ('score') is NULL");
  row[12] = f->fields[12];
  row[15] = "quote \" and, comma\nand a line break";
  CHECK(mtl_model_score_fields(m, row, 1, 16, out, k, err, sizeof err) == 0, "quoted field: %s", err);
  CHECK(fabsf(out[0] - f->expected[0]) <= 1e-6f, "quoted field changed the score");

  /* typed columns */
  mtl_column_data cols[32];
  int nc = f->ncols;
  memcpy(cols, f->data, sizeof(mtl_column_data) * (size_t)nc);
  cols[nc] = (mtl_column_data){"colour", NULL, NULL, NULL, NULL};
  EXPECT_FAIL(mtl_model_score_columns(m, cols, nc + 1, 4, out, k, err, sizeof err), "unknown column 'colour'");
  cols[nc] = cols[0];
  EXPECT_FAIL(mtl_model_score_columns(m, cols, nc + 1, 4, out, k, err, sizeof err), "is given twice");
  int uid = -1, tags = -1, age = -1, city = -1;
  for (int c = 0; c < nc; c++) {
    if (!strcmp(cols[c].name, "uid")) uid = c;
    if (!strcmp(cols[c].name, "tags")) tags = c;
    if (!strcmp(cols[c].name, "age")) age = c;
    if (!strcmp(cols[c].name, "city")) city = c;
  }
  mtl_column_data saved = cols[uid];
  cols[uid] = cols[nc - 1];
  EXPECT_FAIL(mtl_model_score_columns(m, cols, nc - 1, 4, out, k, err, sizeof err),
              "column 'uid' (int64) is missing: give ids");
  cols[uid] = saved;
  saved = cols[tags];
  int64_t bad_offsets[5] = {0, 2, 1, 3, 3};
  cols[tags].offsets = bad_offsets;
  EXPECT_FAIL(mtl_model_score_columns(m, cols, nc, 4, out, k, err, sizeof err),
              "column 'tags': offsets must be nondecreasing, got offsets[2] = 1 after 2");
  bad_offsets[0] = 1;
  EXPECT_FAIL(mtl_model_score_columns(m, cols, nc, 4, out, k, err, sizeof err), "offsets[0] must be 0, got 1");
  cols[tags].offsets = NULL;
  EXPECT_FAIL(mtl_model_score_columns(m, cols, nc, 4, out, k, err, sizeof err), "column 'tags' needs offsets");
  cols[tags] = saved;
  saved = cols[age];
  cols[age].values = NULL;
  EXPECT_FAIL(mtl_model_score_columns(m, cols, nc, 4, out, k, err, sizeof err), "column 'age' (float) needs values");
  cols[age] = saved;
  saved = cols[city];
  cols[city].strings = NULL;
  EXPECT_FAIL(mtl_model_score_columns(m, cols, nc, 4, out, k, err, sizeof err), "column 'city' (string) needs ids or strings");
  cols[city] = saved;
  int64_t big[4] = {1, 2, 100, 3};
  saved = cols[uid];
  cols[uid].ids = big;
  EXPECT_FAIL(mtl_model_score_columns(m, cols, nc, 4, out, k, err, sizeof err), "out of range");
  cols[uid] = saved;
  /* d2 has a default (0) in the config: it may be left out */
  int d2 = -1;
  for (int c = 0; c < nc; c++)
    if (!strcmp(cols[c].name, "d2")) d2 = c;
  cols[d2] = cols[nc - 1];
  CHECK(mtl_model_score_columns(m, cols, nc - 1, 4, out, k, err, sizeof err) == 0, "default of d2: %s", err);

  /* after all that, the model still scores as before */
  CHECK(mtl_model_score_csv(m, lines, n, out, k, err, sizeof err) == 0, "after errors: %s", err);
  float d = max_diff(out, f->expected, (size_t)n * (size_t)k);
  CHECK(d <= 1e-6f, "after errors the scores differ by %g", (double)d);
  free(out);
}

int main(void) {
  verbose = getenv("MTL_TEST_VERBOSE") != NULL;
  char tmp[] = "/tmp/mtl-serve-test-XXXXXX";
  if (!mkdtemp(tmp)) {
    perror("mkdtemp");
    return 1;
  }
  fixture cases[2];
  memset(cases, 0, sizeof cases);
  if (make_fixture(tmp, cases, 2) < 0) return 1;
  char err[1024];
  for (int c = 0; c < 2; c++) {
    mtl_model *m = mtl_model_load(cases[c].dir, err, sizeof err);
    CHECK(m != NULL, "load %s: %s", cases[c].dir, err);
    if (!m) continue;
    check_scores(m, &cases[c]);
    if (c == 0) check_score_errors(m, &cases[c]);
    mtl_model_free(m);
  }
  check_threads(&cases[0]);
  check_precision(&cases[0]);
  check_pool_cannot_grow(tmp, &cases[0]);
  check_load_errors(tmp, &cases[0]);
  for (int c = 0; c < 2; c++) free_case(&cases[c]);
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
  if (failures == 0 && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp);
  if (failures) fprintf(stderr, "%d check(s) failed (files kept in %s)\n", failures, tmp);
  return failures ? 1 : 0;
}
