/* mtl readers: delimited text (CSV, TSV, any single-byte separator, plain or
 * gzip) streamed in chunks and turned into batches of tensors in C.
 *
 * A reader has a schema (one mtl_column_spec per column) and produces, per
 * batch of n rows, one output per column (see docs/data.md):
 *   int64 / string column   ids      int64 [n]  (strings: 64-bit XXH3 hash of the bytes)
 *   float column            values   float [n]; float columns sharing a `group`
 *                                    form one float [n, k] tensor in schema order
 *   multi column (a|b|c)    ids      int64 [total], offsets int64 [n + 1]
 *   kv column (k1:v1,k2:v2) ids      int64 [total], offsets int64 [n + 1],
 *                                    weights float [total]
 *   seq column (a;b|c)      values   int64 (or float) [total], offsets int64 [n + 1]
 *                                    (row -> steps), steps int64 [S + 1] (step -> values)
 *   field:feature_id rows   one multi output per configured field
 * Row i's values of a bag output are ids[offsets[i] .. offsets[i+1]-1].
 *
 * Errors follow core.h: NULL / -1 with mtl_error set. A bad row gives
 *   file:line:column: expected <what> for column '<name>', got "<text>"
 * where column is the 1-based field number in the file's row.
 */
#ifndef MTL_READER_H
#define MTL_READER_H

#include "mtl/core.h"

typedef enum {
  MTL_COLUMN_INT64 = 0, /* one integer id (decimal, strict) */
  MTL_COLUMN_FLOAT,     /* one number in any C format (2.94038e+06, 9, -0.5, inf) */
  MTL_COLUMN_STRING,    /* any bytes, turned into an int64 id by XXH3-64 */
  MTL_COLUMN_MULTI,     /* values joined by `separator` (default '|') */
  MTL_COLUMN_KV,        /* key:value pairs joined by `separator` (default ',') */
  MTL_COLUMN_SEQ,       /* a sequence: steps joined by `separator` (default '|'), each step
                           one value or several joined by `step_separator` */
  MTL_COLUMN_SKIP,      /* present in the file, not parsed, no output */
} mtl_column_type;

typedef enum {
  MTL_STANDARDIZE_NONE = 0,
  MTL_STANDARDIZE_FIT,   /* z-score with the mean and population std of the rows read
                            (only when the whole input is one batch: batch_size = 0) */
  MTL_STANDARDIZE_GIVEN, /* z-score with the spec's mean and std */
} mtl_standardize;

typedef struct mtl_column_spec {
  const char *name;
  mtl_column_type type;
  /* Text used when the field is empty; NULL makes an empty field an error.
   * For multi and kv columns "" means an empty bag. Checked at creation. */
  const char *default_text;
  char separator;     /* multi: between values; kv: between pairs (0: the default) */
  char kv_separator;  /* kv: between key and value (0: ':') */
  bool string_values; /* multi / seq values and kv keys are strings hashed to ids, not integers */
  bool float_values;  /* seq: the values are numbers (float32), not ids */
  char step_separator; /* seq: between the values of one step (0: one value per step) */
  const char *group;  /* float columns: name of the [n, k] output they join (NULL: own output) */
  mtl_standardize standardize; /* float columns */
  double mean, std;            /* for MTL_STANDARDIZE_GIVEN (std > 0) */
} mtl_column_spec;

typedef struct mtl_reader_options {
  const char *const *files; /* paths or glob patterns ('*', '?', '[') */
  int nfiles;
  const mtl_column_spec *columns;
  int ncolumns;
  char separator; /* between fields (0: ',') */
  char quote;     /* quote character (0: '"') */
  bool no_quoting; /* quotes are ordinary bytes */
  bool header;          /* each file starts with a header naming its fields */
  bool skip_unknown_columns; /* header fields not in the schema are skipped (else an error) */
  bool skip_errors;     /* bad rows are skipped and counted (else the read fails) */
  int64_t batch_size;   /* rows per batch; 0: the whole input as one batch */
  bool drop_last;       /* drop a last batch smaller than batch_size */
  int64_t max_rows;     /* stop after this many rows (0: no limit) */
  int64_t shuffle_buffer; /* rows held for shuffling (0: file order); draws use mtl's RNG */
  /* With has_shuffle_seed, shuffling draws from the reader's own stream,
   * seeded with shuffle_seed at the start of every pass: the order then
   * depends on nothing else (a resumed training run replays it exactly). */
  bool has_shuffle_seed;
  uint64_t shuffle_seed;
  size_t chunk_size;    /* bytes read per chunk (0: 1 MiB); memory is bounded by it */
  /* Row blocks, for readers that each read a part of the same input
   * (partition_count > 1; 0 or 1: every row). The input's rows are numbered
   * p = 0, 1, ... across all files in order (headers and blank lines are not
   * rows). With K = partition_block and n = partition_count, part i keeps the
   * rows whose p % K lies in [floor(i K / n), floor((i + 1) K / n)) and skips
   * the others without parsing their fields; so part i's rows of block k are
   * rows [k K + floor(i K / n), k K + floor((i + 1) K / n)). Without shuffling
   * (and with batch_size > 0) a batch never spans two blocks: it ends at batch_size rows or where the
   * part's rows of a block end (a batch_size of at least the part's rows per
   * block gives one batch per block). max_rows then counts the input's rows,
   * every part's: the parts together read the first max_rows rows. */
  int64_t partition_index, partition_count, partition_block;
  /* field:feature_id rows (../shared/data/ali-ccp-fieldfeat): after the schema's
   * columns, the rest of the row is `field<field_separator>feature_id` tokens. */
  const char *const *fields; /* the fields to keep; each becomes a multi output */
  int nfields;               /* 0: not this format */
  bool skip_unknown_fields;  /* tokens of other fields are skipped (else an error) */
  char field_separator;      /* 0: ':' */
  /* Rows held in memory instead of files (nfiles must be 0): text[0 ..
   * text_len), copied at creation; errors name it text_name (NULL: "<text>")
   * as they name a file. mtl_reader_set_text() gives a reader new rows. */
  const char *text;
  size_t text_len;
  const char *text_name;
} mtl_reader_options;

typedef enum {
  MTL_OUTPUT_IDS = 0, /* values: int64 [n] */
  MTL_OUTPUT_DENSE,   /* values: float [n] or [n, k] */
  MTL_OUTPUT_BAG,     /* values: int64 ids [total], offsets: int64 [n + 1] */
  MTL_OUTPUT_WEIGHTED_BAG, /* as BAG plus weights: float [total] */
  MTL_OUTPUT_SEQ,          /* values: int64 or float [total], offsets: int64 [n + 1] into the
                              steps, steps: int64 [S + 1] into the values */
} mtl_output_kind;

/* One output of a batch; the tensors are new references (NULL when unused). */
typedef struct mtl_batch_output {
  mtl_tensor *values;
  mtl_tensor *offsets;
  mtl_tensor *weights;
  mtl_tensor *steps;
} mtl_batch_output;

/* The name of a column type ("int64", "float", "string", "multi", "kv", "seq",
 * "skip"), or "?"; and the type of a name (-1 when it names none). */
const char *mtl_column_type_name(mtl_column_type t);
int mtl_column_type_of(const char *name);

typedef struct mtl_reader mtl_reader;

mtl_reader *mtl_reader_new(const mtl_reader_options *opt);
void mtl_reader_free(mtl_reader *r);

/* Outputs, in schema order (groups at their first column, fields last). */
int mtl_reader_num_outputs(const mtl_reader *r);
const char *mtl_reader_output_name(const mtl_reader *r, int i);
mtl_output_kind mtl_reader_output_kind(const mtl_reader *r, int i);
/* Whether a seq output's values are floats (else int64 ids). */
bool mtl_reader_output_float(const mtl_reader *r, int i);
/* For a dense output: its width k (1 for a lone float column) and, for lane j,
 * the schema index of the column. */
int mtl_reader_output_width(const mtl_reader *r, int i);
int mtl_reader_output_column(const mtl_reader *r, int i, int lane);

/* Starts a new pass over the files (the first pass starts by itself). */
int mtl_reader_rewind(mtl_reader *r);
/* A reader created with text: replaces the rows by a copy of text[0 .. len)
 * and starts a new pass over them (a server reuses one reader per request). */
int mtl_reader_set_text(mtl_reader *r, const char *text, size_t len);
/* Reads the next batch into out[0 .. num_outputs-1]. Returns its row count,
 * 0 at the end of the pass (out untouched), or -1 on error. */
int64_t mtl_reader_next(mtl_reader *r, mtl_batch_output *out);
/* Rows skipped in this pass (skip_errors), and the first few messages. */
int64_t mtl_reader_skipped(const mtl_reader *r);
int mtl_reader_num_messages(const mtl_reader *r);
const char *mtl_reader_message(const mtl_reader *r, int i);
/* Mean and std used to standardize column c (schema index); -1 if it is not
 * standardized or (FIT) not yet fitted. */
int mtl_reader_column_stats(const mtl_reader *r, int c, double *mean, double *std);
/* Peak bytes the reader itself held (chunk buffer, batch buffers, shuffle
 * slots, scratch) since it was created: the streaming memory bound. */
size_t mtl_reader_peak_bytes(const mtl_reader *r);

/* ---- field parsers (also used by feature code and the C tests) ------------ */
/* Each parses from s and stops at the first byte that cannot continue the
 * value, never reading at or past e; it returns that stop position, or NULL
 * if no value starts at s. The caller checks the stop is where the field ends. */
/* Decimal integer with optional sign; *overflow is set when it does not fit. */
const char *mtl_parse_int64(const char *s, const char *e, int64_t *out, bool *overflow);
/* A number as C's strtod reads it (decimal, exponent, hex, inf, nan), with no
 * leading spaces; correctly rounded (a fast exact path for short decimals,
 * strtod for the rest). */
const char *mtl_parse_double(const char *s, const char *e, double *out);
/* The id of a string value: XXH3-64 of its bytes, as an int64 bit pattern. */
int64_t mtl_hash_string(const char *s, size_t n);

#endif
