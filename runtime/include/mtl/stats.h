/* mtl statistics features and sample labels (docs/features_engineering.md).
 *
 * Statistics: for each sample (time, user, item, trigger) and each requested
 * statistic, a number computed from the behaviour events that happened
 * strictly before the sample, inside a window of length W:
 *
 *     an event at time e counts for a sample at time t  iff  t - W <= e < t
 *
 * (an event exactly one window length before the sample counts; an event at
 * the sample's own time does not). Nothing later than the sample can leak in.
 *
 * An object is a tuple of 1..MTL_STATS_MAX_FIELDS fields, each the user, the
 * item, the trigger (the page's main item) or a property of one of them
 * (user profile columns, item properties such as category, brand, shop). For
 * an event, "item" is the event's item and "trigger" the page it happened
 * on; for a sample, the sample's item and trigger. A count is the number of
 * events of one type whose object key equals the sample's; a rate is
 * (k + alpha) / (n + alpha + beta) for the counts k, n of two event types; a
 * rank is 1 + the number of entities of the sample's group (e.g. the items of
 * the sample item's category) with strictly more events of one type.
 *
 * Events and samples may come in any order; they are sorted by time (stably)
 * and swept once: O(events + samples) hash operations per object and window.
 * Conventions as core.h: 0-based indices, -1 and mtl_error on failure; no
 * input aborts.
 */
#ifndef MTL_STATS_H
#define MTL_STATS_H

#include "mtl/core.h"

/* A missing id: an event off any detail page has no trigger; a property of
 * an id absent from its table is missing. Objects with a missing field skip
 * the event (and give a sample zero counts). */
#define MTL_STATS_NONE INT64_MIN
/* The limits mtl_stats_compute and mtl_samples_label check (the one place
 * options are validated; the Lua binding only converts them). */
#define MTL_STATS_MAX_FIELDS 4              /* fields of an object */
#define MTL_STATS_MAX_EVENT_TYPES 16
#define MTL_STATS_MAX_WINDOWS 64
#define MTL_STATS_MAX_OBJECTS 4096
#define MTL_STATS_MAX_STATISTICS (1 << 20)  /* specs of one call */
#define MTL_STATS_MAX_PROPS 1024            /* property columns of a user or item table */
#define MTL_STATS_MAX_ROWS ((int64_t)INT32_MAX - 1) /* events, samples, impressions, table rows */
/* Times and window lengths must lie within +-2^62 (so t - W never overflows). */
#define MTL_STATS_MAX_TIME ((int64_t)1 << 62)

typedef enum {
  MTL_STATS_USER = 0,
  MTL_STATS_ITEM,
  MTL_STATS_TRIGGER,
  MTL_STATS_USER_PROP,    /* users.props[prop][row of the user] */
  MTL_STATS_ITEM_PROP,    /* items.props[prop][row of the item] */
  MTL_STATS_TRIGGER_PROP, /* items.props[prop][row of the trigger] */
} mtl_stats_field_kind;

typedef struct mtl_stats_field {
  mtl_stats_field_kind kind;
  int prop; /* *_PROP: 0-based property index */
} mtl_stats_field;

typedef struct mtl_stats_object {
  int nfields;
  mtl_stats_field fields[MTL_STATS_MAX_FIELDS];
} mtl_stats_object;

typedef enum { MTL_STATS_COUNT = 0, MTL_STATS_RATE, MTL_STATS_RANK } mtl_stats_kind;

typedef struct mtl_stats_spec {
  mtl_stats_kind kind;
  int object;      /* COUNT, RATE: the object counted; RANK: the entity ranked */
  int group;       /* RANK: the object the entity is ranked within */
  int window;      /* index into windows */
  int event;       /* COUNT, RANK: the event type; RATE: the numerator's */
  int denominator; /* RATE: the denominator's event type */
  double alpha, beta; /* RATE: (k + alpha) / (n + alpha + beta); alpha, beta >= 0 */
} mtl_stats_spec;

/* An entity table: ids (distinct) and property columns. */
typedef struct mtl_stats_table {
  int64_t n;
  const int64_t *id;
  int nprops;
  const int64_t *const *props; /* nprops columns of n values */
} mtl_stats_table;

typedef struct mtl_stats_options {
  /* behaviour events (any order) */
  int64_t nevents;
  const int64_t *event_time, *event_user, *event_item;
  const int64_t *event_trigger; /* NULL: no event has a trigger */
  const int64_t *event_type;    /* codes; type k is the code type_codes[k] */
  int ntypes;
  const int64_t *type_codes;    /* events with another code are skipped and counted */
  mtl_stats_table users, items; /* n = 0: no such table */
  /* samples (any order); the output keeps their order */
  int64_t nsamples;
  const int64_t *sample_time, *sample_user, *sample_item;
  const int64_t *sample_trigger; /* NULL: no trigger */
  int nwindows;
  const int64_t *windows; /* lengths, > 0, in the times' unit */
  int nobjects;
  const mtl_stats_object *objects;
  int nspecs;
  const mtl_stats_spec *specs;
  /* Memory for remembering each event's slots so leaving a window needs no
   * hashing (0: up to 2 GiB); when the cache would need more, keys are
   * computed again. Results are the same either way. */
  size_t cache_bytes_max;
} mtl_stats_options;

typedef struct mtl_stats_report {
  int64_t events_used;         /* events of a known type */
  int64_t events_unknown_type; /* skipped: a code not in type_codes */
} mtl_stats_report;

/* out: nsamples * nspecs floats, row-major (sample s, spec j at s * nspecs + j).
 * report may be NULL. */
int mtl_stats_compute(const mtl_stats_options *o, float *out, mtl_stats_report *report);

/* ---- labels of impressions (sample building) ------------------------------
 * A click (user, item, tc) belongs to the latest impression of the same user
 * and item at or before tc (impressions come first at equal times), if
 * tc - t_impression <= click_window and that impression has no click yet
 * (later clicks on it are repeats). A purchase (user, item, tp) belongs to the
 * latest clicked impression of the same user and item whose click is at or
 * before tp, if tp - t_click <= pay_window. is_click / is_pay are 0 or 1. */
typedef struct mtl_samples_label_options {
  int64_t nimpressions;
  const int64_t *impression_time, *impression_user, *impression_item;
  int64_t nevents;
  const int64_t *event_time, *event_user, *event_item, *event_type;
  int64_t click_code, pay_code; /* event_type values of clicks and purchases */
  int64_t click_window, pay_window; /* >= 0 */
} mtl_samples_label_options;

typedef struct mtl_samples_label_report {
  int64_t clicks, clicks_attributed;
  int64_t purchases, purchases_attributed;
} mtl_samples_label_report;

/* is_click, is_pay, click_time: nimpressions values each (click_time may be
 * NULL; it is MTL_STATS_NONE for impressions without a click). */
int mtl_samples_label(const mtl_samples_label_options *o, int64_t *is_click, int64_t *is_pay, int64_t *click_time,
                      mtl_samples_label_report *report);

/* order[i] = the 0-based position of the i-th earliest time; equal times keep
 * their input order (a stable sort). */
int mtl_stats_order(const int64_t *time, int64_t n, int64_t *order);

/* ---- CSV output --------------------------------------------------------------
 * A column: a name and a 1-D int64 or float32 tensor (any stride). Integral
 * float values print as integers, others with `digits` significant digits
 * (1..17). */
typedef struct mtl_stats_csv_column {
  const char *name;
  const mtl_tensor *values;
  /* int64 columns: value v in 1..nlabels prints as labels[v - 1] (a
   * categorical column such as the event type); other values print as numbers */
  const char *const *labels;
  int nlabels;
} mtl_stats_csv_column;

/* Writes a header line and one row per value. */
int mtl_stats_write_csv(const char *path, int ncols, const mtl_stats_csv_column *cols, int digits);
/* Copies in_path (a CSV file with a header line; no quoted field may span
 * lines) to out_path with the columns appended to each line; the file's data
 * lines must number the columns' length. out_path must be another file than
 * in_path (refused when both name one file): to replace a file, write a
 * temporary one and rename it (lua/mtl/stats.lua does, with mtl.sys.replace). */
int mtl_stats_append_csv(const char *in_path, const char *out_path, char separator, int ncols,
                         const mtl_stats_csv_column *cols, int digits);

#endif
