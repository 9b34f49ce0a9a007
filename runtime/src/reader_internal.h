/* Private state of the readers, shared by reader.c (schema, row parsing,
 * batches) and reader_input.c (files, chunks, rows, shuffling). */
#ifndef MTL_READER_INTERNAL_H
#define MTL_READER_INTERNAL_H

#include <zlib.h>

#include "mtl/reader.h"

#define READER_MAX_MESSAGES 10

typedef struct column {
  char *name;
  mtl_column_type type;
  char *default_text; /* NULL: no default */
  size_t default_len;
  char separator, kv_separator;
  bool string_values;
  char expect[64]; /* "an integer", "integers separated by '|'", ... */
  int out, lane;   /* output index (-1: none) and lane within a dense output */
  mtl_standardize standardize;
  double mean, std;
  bool fitted;
} column;

/* One output's buffers for the batch being built (row_cap rows). */
typedef struct output {
  char *name;
  mtl_output_kind kind;
  int width;          /* dense: number of lanes */
  bool group;         /* dense: a group of float columns, [n, width] */
  int *lane_column;   /* dense: schema index of each lane */
  int64_t *ids;       /* IDS: [row_cap]; bags: values [val_cap] */
  double *dense;      /* DENSE: [row_cap * width], kept in double until the batch ends */
  float *weights;     /* WEIGHTED_BAG: [val_cap] */
  int64_t *offsets;   /* bags: [row_cap + 1] */
  size_t nvals, val_cap;
} output;

/* A row held by the shuffle buffer. */
typedef struct slot {
  char *text;
  size_t len, cap;
  int file;
  int64_t line;
} slot;

struct mtl_reader {
  /* configuration */
  column *cols;
  int ncols;
  output *outs;
  int nouts;
  char **paths;
  int npaths;
  char sep, quote; /* quote 0: no quoting */
  bool header, skip_unknown_columns, skip_errors, drop_last;
  int64_t batch_size, max_rows, shuffle_n;
  size_t chunk_size;
  /* field:feature_id tokens */
  int nfields, field_out0; /* field k's output is field_out0 + k */
  char field_sep;
  bool skip_unknown_fields;
  int *field_table; /* open addressing over field names: field index or -1 */
  int field_mask;

  /* the file being read */
  int file; /* index in paths; -1 before the first */
  gzFile gz;
  bool eof, file_start, header_pending;
  int64_t line; /* line number of the next row */
  char *buf;
  size_t cap, len, pos;
  int *field_map; /* file field -> schema column (-1: skipped) */
  int nfile_fields;

  /* shuffle buffer */
  slot *slots;
  int64_t nslots;
  int64_t pending; /* slot emitted last, to refill (-1: none) */
  bool input_done;

  /* the batch being built and the pass */
  int64_t rows, row_cap, delivered;
  bool started, pass_done;

  char *scratch; /* unquoted field text */
  size_t scratch_cap;
  const char *expect; /* set by a value parser that fails: what it expected */

  int64_t skipped;
  char *messages[READER_MAX_MESSAGES];
  int nmessages;
  size_t bytes, peak_bytes;
};

/* Resizes *p (tracked in r->bytes) to n bytes; -1 on failure with the error set. */
int reader_resize(mtl_reader *r, void **p, size_t old_n, size_t n);
/* The next row of input, as [*s, *e) without its line end, with its file and
 * line. Returns 1, 0 at the end of the input, -1 on error. Skips blank lines
 * and consumes headers (reader_parse_header). */
int reader_next_raw_row(mtl_reader *r, const char **s, const char **e, int *file, int64_t *line);
/* As reader_next_raw_row, through the shuffle buffer when there is one. */
int reader_next_row(mtl_reader *r, const char **s, const char **e, int *file, int64_t *line);
/* Closes the current file and resets input and shuffle state. */
void reader_input_reset(mtl_reader *r);
void reader_input_free(mtl_reader *r);
/* Reads a header row: maps the file's fields to schema columns. */
int reader_parse_header(mtl_reader *r, const char *s, const char *e);
/* Appends "got" text: the bytes of [s, e) escaped and cut to a readable length. */
void reader_quote_text(char *dst, size_t n, const char *s, const char *e);

#endif
