/* Scores a request of candidates with an exported model through the C
 * serving API (docs/serving.md) and prints the latency distribution.
 *
 *   build/mtl examples/serve/train_and_export.lua /tmp/mtl-serve-example   # setup
 *   build/score_request /tmp/mtl-serve-example/model /tmp/mtl-serve-example/request.csv
 *
 * options: --requests N (default 1000 per thread), --threads "1,2" (the
 * thread counts to measure), --warmup N (default 50), --states N (most
 * embedded Lua states in the model's pool; default: one per CPU), --precision
 * fp32|bf16 (default: the one the export recorded)
 *
 * Each request scores every line of the request file (300 candidates, in the
 * training schema, labels empty), given to the model two ways: as the text
 * lines (mtl_model_score_csv) and as typed columns (mtl_model_score_columns,
 * converted from the lines once, before timing). For each thread count T, T
 * threads score requests at once on the one model; every request's latency
 * is recorded and the percentiles are over all of them. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mtl/serve.h"

static double clock_us(clockid_t c) {
  struct timespec ts;
  clock_gettime(c, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec * 1e-3;
}
static double now_us(void) { return clock_us(CLOCK_MONOTONIC); }
/* CPU time of the calling thread: on a busy machine the wall-clock latency
 * includes waiting for a core, this does not. */
static double cpu_us(void) { return clock_us(CLOCK_THREAD_CPUTIME_ID); }

/* The lines of a file (without line ends, blank lines dropped). */
static char **read_lines(const char *path, int *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  int cap = 512;
  char **lines = malloc(sizeof *lines * (size_t)cap);
  char buf[65536];
  *n = 0;
  while (fgets(buf, sizeof buf, f)) {
    size_t len = strcspn(buf, "\r\n");
    if (len == 0) continue;
    buf[len] = 0;
    if (*n == cap) lines = realloc(lines, sizeof *lines * (size_t)(cap *= 2));
    lines[*n] = malloc(len + 1);
    memcpy(lines[*n], buf, len + 1);
    (*n)++;
  }
  fclose(f);
  return lines;
}

/* The request as typed columns: what a server holding its candidates'
 * features in memory would pass. Converted from the lines with a plain split
 * on ',' (this example's rows have no quoted fields) and '|' in bags. */
typedef struct {
  int ncols;
  mtl_column_data *cols;
} typed_request;

static char *field_of(const char *line, int k, char *buf, size_t n) {
  const char *p = line;
  for (int i = 0; i < k && p; i++) {
    p = strchr(p, ',');
    if (p) p++;
  }
  size_t len = p ? strcspn(p, ",") : 0;
  if (len >= n) len = n - 1;
  if (p) memcpy(buf, p, len);
  buf[len] = 0;
  return buf;
}

/* Returns 0, or -1 when a column's type is one this example does not convert (kv). */
static int make_typed(mtl_model *m, char **lines, int n, typed_request *t) {
  int nc = mtl_model_num_columns(m);
  t->cols = calloc((size_t)nc, sizeof *t->cols);
  t->ncols = 0;
  char buf[4096];
  for (int c = 0; c < nc; c++) {
    const char *type = mtl_model_column_type(m, c);
    if (!strcmp(type, "skip")) continue;
    mtl_column_data *d = &t->cols[t->ncols++];
    d->name = mtl_model_column_name(m, c);
    if (!strcmp(type, "int64")) {
      int64_t *ids = malloc(sizeof *ids * (size_t)n);
      for (int i = 0; i < n; i++) ids[i] = strtoll(field_of(lines[i], c, buf, sizeof buf), NULL, 10);
      d->ids = ids;
    } else if (!strcmp(type, "float")) {
      float *v = malloc(sizeof *v * (size_t)n);
      for (int i = 0; i < n; i++) v[i] = strtof(field_of(lines[i], c, buf, sizeof buf), NULL);
      d->values = v;
    } else if (!strcmp(type, "string")) {
      char **str = malloc(sizeof *str * (size_t)n);
      for (int i = 0; i < n; i++) str[i] = strdup(field_of(lines[i], c, buf, sizeof buf));
      d->strings = (const char *const *)str;
    } else if (!strcmp(type, "multi")) {
      int64_t *off = malloc(sizeof *off * (size_t)(n + 1)), cap = 16, total = 0;
      int64_t *ids = malloc(sizeof *ids * (size_t)cap);
      off[0] = 0;
      for (int i = 0; i < n; i++) {
        for (char *tok = strtok(field_of(lines[i], c, buf, sizeof buf), "|"); tok; tok = strtok(NULL, "|")) {
          if (total == cap) ids = realloc(ids, sizeof *ids * (size_t)(cap *= 2));
          ids[total++] = strtoll(tok, NULL, 10);
        }
        off[i + 1] = total;
      }
      d->ids = ids;
      d->offsets = off;
    } else {
      return -1;
    }
  }
  return 0;
}

static void free_typed(typed_request *t, int n) {
  for (int c = 0; c < t->ncols; c++) {
    mtl_column_data *d = &t->cols[c];
    free((void *)d->ids);
    free((void *)d->values);
    free((void *)d->offsets);
    if (d->strings)
      for (int i = 0; i < n; i++) free((void *)d->strings[i]);
    free((void *)d->strings);
  }
  free(t->cols);
}

typedef struct {
  mtl_model *m;
  const char *const *lines;
  const typed_request *typed; /* NULL: score the lines */
  int n, requests, failed;
  double *latency_us, *cpu_us;
  char err[512];
} job;

static void *run(void *arg) {
  job *j = arg;
  int k = mtl_model_num_outputs(j->m);
  float *out = malloc(sizeof(float) * (size_t)j->n * (size_t)k);
  for (int r = 0; r < j->requests; r++) {
    double t0 = now_us(), c0 = cpu_us();
    int rc = j->typed ? mtl_model_score_columns(j->m, j->typed->cols, j->typed->ncols, j->n, out, k, j->err,
                                                sizeof j->err)
                      : mtl_model_score_csv(j->m, j->lines, j->n, out, k, j->err, sizeof j->err);
    if (rc < 0) {
      j->failed++;
      break;
    }
    j->latency_us[r] = now_us() - t0;
    j->cpu_us[r] = cpu_us() - c0;
  }
  free(out);
  return NULL;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double percentile(const double *sorted, int n, double p) {
  int i = (int)(p / 100.0 * (n - 1) + 0.5);
  return sorted[i < 0 ? 0 : i >= n ? n - 1 : i];
}

/* T threads, each scoring `requests` requests; prints one line. */
static int measure(mtl_model *m, const char *const *lines, const typed_request *typed, int n, int threads,
                   int requests) {
  job *jobs = calloc((size_t)threads, sizeof *jobs);
  pthread_t *th = calloc((size_t)threads, sizeof *th);
  double *all = malloc(sizeof(double) * (size_t)threads * (size_t)requests);
  double *cpu = malloc(sizeof(double) * (size_t)threads * (size_t)requests);
  double t0 = now_us();
  for (int t = 0; t < threads; t++) {
    jobs[t] = (job){m,   lines, typed, n, requests, 0, all + (size_t)t * (size_t)requests,
                    cpu + (size_t)t * (size_t)requests, {0}};
    pthread_create(&th[t], NULL, run, &jobs[t]);
  }
  int failed = 0;
  for (int t = 0; t < threads; t++) {
    pthread_join(th[t], NULL);
    if (jobs[t].failed) {
      fprintf(stderr, "score_request: %s\n", jobs[t].err);
      failed = 1;
    }
  }
  double wall_s = (now_us() - t0) * 1e-6;
  if (!failed) {
    int total = threads * requests;
    qsort(all, (size_t)total, sizeof *all, cmp_double);
    qsort(cpu, (size_t)total, sizeof *cpu, cmp_double);
    double mean = 0;
    for (int i = 0; i < total; i++) mean += all[i];
    mean /= total;
    printf("%-7s  %7d  %8d  %7.0f  %7.0f  %7.0f  %7.0f  %7.0f  %7.0f  %7.0f  %10.0f  %12.0f\n",
           typed ? "columns" : "csv", threads, total,
           percentile(all, total, 50), percentile(all, total, 90), percentile(all, total, 99), all[total - 1], mean,
           percentile(cpu, total, 50), percentile(cpu, total, 99), total / wall_s, total * (double)n / wall_s);
  }
  free(all);
  free(cpu);
  free(th);
  free(jobs);
  return failed ? -1 : 0;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s MODEL_DIR REQUEST_CSV [--requests N] [--threads 1,2] [--warmup N] [--states N] [--precision fp32|bf16]\n",
            argv[0]);
    return 2;
  }
  int requests = 1000, warmup = 50, states = 0;
  const char *precision = NULL;
  const char *thread_list = "1,2";
  for (int i = 3; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--requests")) requests = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--threads")) thread_list = argv[i + 1];
    else if (!strcmp(argv[i], "--warmup")) warmup = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--states")) states = atoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--precision")) precision = argv[i + 1];
    else {
      fprintf(stderr, "score_request: unknown option '%s'\n", argv[i]);
      return 2;
    }
  }
  if (requests < 1) requests = 1;
  int n = 0;
  char **lines = read_lines(argv[2], &n);
  if (!lines || n == 0) {
    fprintf(stderr, "score_request: cannot read rows from '%s'\n", argv[2]);
    return 1;
  }
  char err[1024];
  double t0 = now_us();
  mtl_model_options opts = {NULL, states, 1, precision};
  mtl_model *m = mtl_model_load_opts(argv[1], &opts, err, sizeof err);
  if (!m) {
    fprintf(stderr, "score_request: %s\n", err);
    return 1;
  }
  double load_ms = (now_us() - t0) * 1e-3;
  int k = mtl_model_num_outputs(m);
  printf("model %s: %d outputs (", argv[1], k);
  for (int j = 0; j < k; j++) printf("%s%s", j ? ", " : "", mtl_model_output_name(m, j));
  printf("), loaded in %.1f ms, precision %s\n", load_ms, mtl_model_precision(m));

  /* one request, and its best candidates by rank_score (the config's
   * ranking formula; mtl_model_output_index finds it) */
  float *out = malloc(sizeof(float) * (size_t)n * (size_t)k);
  t0 = now_us();
  if (mtl_model_score_csv(m, (const char *const *)lines, n, out, k, err, sizeof err) < 0) {
    fprintf(stderr, "score_request: %s\n", err);
    return 1;
  }
  printf("first request: %d candidates scored in %.0f us\n", n, now_us() - t0);
  int by = mtl_model_output_index(m, "rank_score");
  if (by < 0) by = 0;
  int best[5] = {-1, -1, -1, -1, -1};
  for (int i = 0; i < n; i++) {
    for (int b = 0; b < 5; b++) {
      if (best[b] < 0 || out[i * k + by] > out[best[b] * k + by]) {
        memmove(best + b + 1, best + b, sizeof(int) * (size_t)(4 - b));
        best[b] = i;
        break;
      }
    }
  }
  printf("top candidates by %s:\n", mtl_model_output_name(m, by));
  for (int b = 0; b < 5 && b < n; b++) {
    printf("  row %3d:", best[b] + 1);
    for (int j = 0; j < k; j++) printf("  %s %.4f", mtl_model_output_name(m, j), out[best[b] * k + j]);
    printf("\n");
  }

  /* warm up (JIT traces, buffer caches), then measure */
  for (int i = 0; i < warmup; i++) mtl_model_score_csv(m, (const char *const *)lines, n, out, k, err, sizeof err);
  printf("\nlatency per request of %d candidates (microseconds), %d requests per thread:\n", n, requests);
  typed_request typed;
  int have_typed = make_typed(m, lines, n, &typed) == 0;
  if (have_typed && mtl_model_score_columns(m, typed.cols, typed.ncols, n, out, k, err, sizeof err) < 0) {
    fprintf(stderr, "score_request: %s\n", err);
    return 1;
  }
  printf("                             ------------- wall clock -------------  -- cpu time --\n");
  printf("input    threads  requests      p50      p90      p99      max     mean      p50      p99  requests/s  "
         "candidates/s\n");
  int rc = 0;
  for (int mode = 0; mode < 1 + have_typed && rc == 0; mode++) {
    for (const char *p = thread_list; *p && rc == 0;) {
      int t = atoi(p);
      if (t >= 1) rc = measure(m, (const char *const *)lines, mode ? &typed : NULL, n, t, requests);
      p = strchr(p, ',');
      if (!p) break;
      p++;
    }
  }
  if (have_typed) free_typed(&typed, n);
  printf("(%d embedded Lua states in the model's pool)\n", mtl_model_num_states(m));
  mtl_model_free(m);
  free(out);
  for (int i = 0; i < n; i++) free(lines[i]);
  free(lines);
  return rc ? 1 : 0;
}
