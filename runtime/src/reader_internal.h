/* Private state of the readers, shared by reader.c (schema, row parsing,
 * batches) and reader_input.c (files, chunks, rows, shuffling). */
#ifndef MTL_READER_INTERNAL_H
#define MTL_READER_INTERNAL_H

#include <string.h>

#include <zlib.h>

#include "mtl/reader.h"

#define READER_MAX_MESSAGES 10

typedef struct column {
  char *name;
  mtl_column_type type;
  char *default_text; /* NULL: no default */
  size_t default_len;
  char separator, kv_separator, step_separator;
  bool string_values, float_values;
  char expect[96]; /* "an integer", "integers separated by '|'", ... */
  int out, lane;   /* output index (-1: none) and lane within a dense output */
  struct output *o; /* &outs[out], set once the outputs are made */
  mtl_standardize standardize;
  double mean, std;
  bool fitted;
} column;

/* One output and the tensors of the batch being built (row_cap rows). */
typedef struct output {
  char *name;
  mtl_output_kind kind;
  int width;          /* dense: number of lanes */
  bool group;         /* dense: a group of float columns, [n, width] */
  bool has_fit;       /* dense: a lane is standardized with fitted stats */
  int *lane_column;   /* dense: schema index of each lane */
  bool float_values;  /* SEQ: values are floats, kept in t_weights (t_values unused) */
  mtl_tensor *t_values, *t_offsets, *t_weights, *t_steps;
  int64_t *ids;       /* storage of t_values: IDS [row_cap]; bags [val_cap] */
  float *dense;       /* storage of t_values: DENSE [row_cap * width] */
  double *fit;        /* DENSE with has_fit: raw values [row_cap * width] */
  float *weights;     /* storage of t_weights [val_cap]: kv weights, float SEQ values */
  int64_t *offsets;   /* storage of t_offsets [row_cap + 1]; SEQ: into the steps */
  int64_t *steps;     /* SEQ: storage of t_steps [step_cap + 1], into the values */
  size_t nvals, val_cap, val_hint;
  size_t nsteps, step_cap, step_hint;
  size_t fit_cap;     /* elements of fit */
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
  int *bags; /* indices of the bag outputs */
  int nbags;
  char **paths;
  int npaths;
  char sep, quote; /* quote 0: no quoting */
  bool header, skip_unknown_columns, skip_errors, drop_last;
  int64_t batch_size, max_rows, shuffle_n;
  bool has_shuffle_seed;
  uint64_t shuffle_seed, shuffle_state; /* the reader's own stream (splitmix64) */
  size_t chunk_size;
  /* field:feature_id tokens */
  int nfields, field_out0; /* field k's output is field_out0 + k */
  char field_sep;
  bool skip_unknown_fields;
  int *field_table; /* open addressing over field names: field index or -1 */
  int field_mask;

  /* in-memory rows (mtl_reader_options.text): paths[0] is their name */
  bool text_input, text_open;
  char *text;
  size_t text_len, text_cap;

  /* the file being read */
  int file; /* index in paths; -1 before the first */
  gzFile gz;
  bool eof, file_start, header_pending;
  int64_t line; /* line number of the next row */
  char *buf;
  size_t cap, len, pos;
  int *field_map; /* file field -> schema column (-1: skipped) */
  int nfile_fields;

  /* row blocks (partition_count > 1): this part keeps rows p with
   * part_lo <= p % part_block < part_hi */
  int64_t part_count, part_block, part_lo, part_hi;
  int64_t stream_rows; /* rows of the input seen so far, every part's */
  int64_t row_block;   /* block of the row returned last */
  int64_t batch_block; /* block of the batch being built (-1: none yet) */
  bool stream_done;    /* max_rows rows of the input were seen */
  bool held;           /* a row read but left for the next batch (it starts a new block) */
  const char *held_s, *held_e;
  int held_file;
  int64_t held_line;

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
  bool failed;        /* a value parser ran out of memory (the row is not bad) */

  int64_t skipped;
  char *messages[READER_MAX_MESSAGES];
  int nmessages;
  size_t bytes, peak_bytes;
};

/* ---- fast paths of the common fields (inlined into the row loop) ----------
 * A plain decimal integer of at most 18 digits; a plain decimal number of at
 * most 19 digits with a power of ten within 1e±22 (then m * 10^k is one exact
 * IEEE operation). They return NULL for anything else and the row loop takes
 * the general path (reader_parse.c), which handles every case and error.
 *
 * They read digits 8 bytes at a time (SWAR: "SIMD within a register"), so
 * the text they read must be followed by READER_SLACK readable bytes: the
 * chunk buffer and the shuffle slots have them. Bytes at or past e are read
 * but never used. */
#define READER_SLACK 16
#define READER_DIGIT(c) ((unsigned)((c) - '0') < 10)

static const double reader_pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                        1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                        1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
static const uint64_t reader_pow10_u64[9] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000};

/* How many of the 8 bytes of x (first byte lowest) are ASCII digits before
 * the first non-digit. Per byte v (high bit cleared): v + 0x46 has its high
 * bit set when v > '9', 0xAF - v when v < '0'; neither carries across bytes. */
static inline int reader_swar_digit_count(uint64_t x) {
  const uint64_t low7 = 0x7F7F7F7F7F7F7F7FULL, high = 0x8080808080808080ULL;
  uint64_t v = x & low7;
  uint64_t nondigit = ((v + 0x4646464646464646ULL) | (0xAFAFAFAFAFAFAFAFULL - v) | x) & high;
  return nondigit ? __builtin_ctzll(nondigit) >> 3 : 8;
}

/* The value of the first n (1..8) digits of x. They are moved to the top
 * bytes with '0's below, then combined pairwise: bytes -> 2-digit values ->
 * one 8-digit value through two multiplications. */
static inline uint64_t reader_swar_value(uint64_t x, int n) {
  if (n < 8) x = (x << (8 * (8 - n))) | (0x3030303030303030ULL >> (8 * n));
  x -= 0x3030303030303030ULL;
  x = x * 10 + (x >> 8); /* byte 2i: 10 d[2i] + d[2i+1] */
  return (((x & 0x000000FF000000FFULL) * (100 + (1000000ULL << 32))) +
          (((x >> 16) & 0x000000FF000000FFULL) * (1 + (10000ULL << 32)))) >> 32;
}

/* Appends the run of digits at *pp (bounded by e) to *m; returns the run's
 * length, or -1 when the digits counted in *total would pass `limit`. */
static inline int reader_digits(const char **pp, const char *e, uint64_t *m, int *total, int limit) {
  const char *p = *pp;
  int run = 0;
  for (;;) {
    uint64_t x;
    memcpy(&x, p, 8);
    long n = reader_swar_digit_count(x), avail = e - p;
    if (n > avail) n = avail > 0 ? avail : 0;
    if (n == 0) break;
    *total += (int)n;
    if (*total > limit) return -1;
    *m = *m * reader_pow10_u64[n] + reader_swar_value(x, (int)n);
    p += n;
    run += (int)n;
    if (n < 8) break;
  }
  *pp = p;
  return run;
}

static inline const char *reader_fast_int64(const char *p, const char *e, int64_t *out) {
  bool neg = p < e && *p == '-';
  p += neg;
  uint64_t v = 0;
  int total = 0;
  if (reader_digits(&p, e, &v, &total, 18) <= 0) return NULL;
  *out = neg ? -(int64_t)v : (int64_t)v;
  return p;
}

static inline const char *reader_fast_double(const char *p, const char *e, double *out) {
  bool neg = p < e && *p == '-';
  p += neg;
  uint64_t m = 0;
  int total = 0, frac = 0;
  int whole = reader_digits(&p, e, &m, &total, 19);
  if (whole < 0) return NULL;
  if (p < e && *p == '.') {
    p++;
    if ((frac = reader_digits(&p, e, &m, &total, 19)) < 0) return NULL;
  }
  if (total == 0) return NULL;
  long exp10 = -frac;
  if (p < e && (*p == 'e' || *p == 'E')) {
    p++;
    bool eneg = false;
    if (p < e && (*p == '-' || *p == '+')) eneg = *p++ == '-';
    const char *x = p;
    long ev = 0;
    while (p < e && READER_DIGIT(*p) && p - x < 4) ev = ev * 10 + (*p++ - '0');
    if (p == x || (p < e && READER_DIGIT(*p))) return NULL;
    exp10 += eneg ? -ev : ev;
  }
  if (m > ((uint64_t)1 << 53) || exp10 < -22 || exp10 > 22) return NULL;
  double v = exp10 >= 0 ? (double)m * reader_pow10[exp10] : (double)m / reader_pow10[-exp10];
  *out = neg ? -v : v;
  return p;
}

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
