/* mtl serving: score rows with an exported model from C (docs/serving.md).
 *
 *   char err[512];
 *   mtl_model *m = mtl_model_load("model_dir", err, sizeof err);
 *   if (!m) { fprintf(stderr, "%s\n", err); return 1; }
 *   int k = mtl_model_num_outputs(m);              // e.g. 2: "click", "pay"
 *   float *p = malloc(sizeof(float) * n * k);
 *   if (mtl_model_score_csv(m, lines, n, p, k, err, sizeof err) < 0) ...
 *   // p[i * k + j]: probability of output j for row i
 *   mtl_model_free(m);
 *
 * A model directory is written by `mtl export` / mtl.serve_export (config,
 * fitted feature transforms, weights and embedding tables). Rows are in the
 * training schema (the config's data.columns, in order); columns that no
 * feature reads, labels included, are not parsed and may be left empty.
 *
 * Threads: every mtl_model_score_* function may be called on one model from
 * several threads at once. Inside, the model keeps a pool of embedded LuaJIT
 * states (created as concurrent callers need them, up to max_states); each
 * runs the model's Lua forward in eval mode with gradient recording off, and
 * all of them share one copy of the weights and embedding tables, which
 * scoring only reads. mtl_model_load and mtl_model_free must not run while the
 * same model is scoring.
 *
 * Errors: functions return NULL / -1 and write a message (truncated to errlen,
 * always NUL-terminated when errlen > 0) naming the function and the cause,
 * e.g. "mtl_model_score_csv: request:3:10: expected a number for column
 * 'price', got \"abc\"" (line 3 = the third row of the request). Nothing
 * aborts or exits. The caller never touches Lua.
 */
#ifndef MTL_SERVE_H
#define MTL_SERVE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mtl_model mtl_model;

typedef struct mtl_model_options {
  /* The mtl tree whose lua/ and models/ hold the Lua code (NULL: $MTL_HOME,
   * else the source tree the library was built from). */
  const char *lua_root;
  /* Most embedded states, i.e. calls scoring at the same time; more callers
   * wait for a free state (0: the number of online CPUs). */
  int max_states;
  /* States created by mtl_model_load (0: 1); the rest start on demand. */
  int initial_states;
  /* The dense layers' inference precision: "fp32", "bf16" (weights packed to
   * bf16 once at load, products on AVX512-BF16 with FP32 accumulation; FP32
   * where the CPU lacks it), or NULL: the one `mtl export --precision`
   * recorded, else fp32. mtl_model_precision says which one runs. */
  const char *precision;
} mtl_model_options;

/* Loads an exported model directory; NULL on error (message in err). */
mtl_model *mtl_model_load(const char *dir, char *err, size_t errlen);
/* As mtl_model_load, with options (NULL: the defaults). */
mtl_model *mtl_model_load_opts(const char *dir, const mtl_model_options *opts, char *err, size_t errlen);
void mtl_model_free(mtl_model *m);

/* ---- what the model returns ---------------------------------------------- */
/* Outputs, in the order of each row's scores: the tasks (their probabilities),
 * then further outputs the model defines (ESMM: "ctcvr"). */
int mtl_model_num_outputs(const mtl_model *m);
/* "bf16" or "fp32": the precision the model's dense layers run in. */
const char *mtl_model_precision(const mtl_model *m);
const char *mtl_model_output_name(const mtl_model *m, int i); /* NULL if out of range */
int mtl_model_output_index(const mtl_model *m, const char *name); /* -1 if none */
/* The tasks are outputs 0 .. num_tasks-1. */
int mtl_model_num_tasks(const mtl_model *m);
const char *mtl_model_task_name(const mtl_model *m, int i);

/* ---- what the model reads ------------------------------------------------- */
/* The training schema: column i's name and how it is read: "int64", "float",
 * "string", "multi", "kv", "seq" (a sequence), or "skip" (not read by any feature). */
int mtl_model_num_columns(const mtl_model *m);
const char *mtl_model_column_name(const mtl_model *m, int i);
const char *mtl_model_column_type(const mtl_model *m, int i);
int mtl_model_column_index(const mtl_model *m, const char *name); /* -1 if none */

/* ---- scoring ----------------------------------------------------------------
 * Each writes out[i * out_stride + j] = output j of row i, for n rows;
 * out_stride >= mtl_model_num_outputs(m). Returns 0, or -1 with err set
 * (out is then undefined). n = 0 is allowed and does nothing. */

/* Rows as text lines of the training file format (its separator and quoting,
 * no header, no line breaks inside a line). */
int mtl_model_score_csv(mtl_model *m, const char *const *lines, int n, float *out, int out_stride, char *err,
                        size_t errlen);

/* Rows as field strings: fields[i * nfields + k] is column k of row i
 * (nfields = mtl_model_num_columns(m)); any bytes, quoting is done here. */
int mtl_model_score_fields(mtl_model *m, const char *const *fields, int n, int nfields, float *out, int out_stride,
                           char *err, size_t errlen);

/* Rows as typed columns, given by name (order free). For a column of type
 *   int64        ids[n]
 *   string       strings[n] (hashed as the reader hashes them), or ids[n]
 *                already hashed (mtl_model_hash_string)
 *   float        values[n] (standardized here as in training)
 *   multi        offsets[n + 1] (offsets[0] = 0, nondecreasing) and
 *                ids[offsets[n]]; values given as strings are hashed ids
 *   kv           as multi, plus values[offsets[n]] (the weights)
 * A column the model reads but the request omits takes the column's default
 * from the config (an error when it has none); "skip" columns are ignored. */
typedef struct mtl_column_data {
  const char *name;
  const int64_t *ids;
  const float *values;
  const char *const *strings;
  const int64_t *offsets;
} mtl_column_data;

int mtl_model_score_columns(mtl_model *m, const mtl_column_data *columns, int ncolumns, int n, float *out,
                            int out_stride, char *err, size_t errlen);

/* The id a string value has in a string column or a multi/kv column of
 * strings (XXH3-64 of its bytes). */
int64_t mtl_model_hash_string(const char *s, size_t len);

/* Embedded states the model has now (grows up to max_states). */
int mtl_model_num_states(const mtl_model *m);

#ifdef __cplusplus
}
#endif

#endif
