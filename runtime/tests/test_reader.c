/* C tests of the readers, without Lua (run by ctest; silent on success).
 * - the number parsers against strtod/strtoll on many generated texts, and
 *   the SWAR fast paths against the general ones;
 * - a reader over a small file: values, bag offsets, an error text;
 * - random bytes in every column type never crash and every row is either
 *   read or skipped with a message. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../src/reader_internal.h"
#include "check.h"
#include "mtl/reader.h"

static uint64_t rng = 88172645463325252ULL;
static uint64_t next_u64(void) { /* xorshift64: test data only */
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

/* Parses text with the general parser, and with the fast path when it
 * accepts it (given READER_SLACK bytes after the text), against strtod. */
static void check_double(const char *text) {
  char buf[128] = {0};
  size_t n = strlen(text);
  memcpy(buf, text, n);
  char *end;
  double want = strtod(buf, &end);
  int full = n > 0 && end == buf + n;
  double got = 0;
  const char *stop = mtl_parse_double(buf, buf + n, &got);
  CHECK(full ? stop == buf + n : stop != buf + n, "'%s': stops at %ld", text, stop ? (long)(stop - buf) : -1L);
  if (full && stop)
    CHECK(memcmp(&got, &want, sizeof got) == 0 || (isnan(got) && isnan(want)), "'%s': %.17g, strtod %.17g", text,
          got, want);
  const char *fast = reader_fast_double(buf, buf + n, &got);
  if (fast && fast == buf + n)
    CHECK(memcmp(&got, &want, sizeof got) == 0, "'%s' (fast): %.17g, strtod %.17g", text, got, want);
}

static void check_int64(const char *text) {
  char buf[64] = {0};
  size_t n = strlen(text);
  memcpy(buf, text, n);
  int64_t got = 0, fast_got = 0;
  bool overflow = false;
  const char *stop = mtl_parse_int64(buf, buf + n, &got, &overflow);
  char *end;
  long long want = strtoll(buf, &end, 10);
  if (stop == buf + n && !overflow) CHECK(got == want, "'%s': %lld, strtoll %lld", text, (long long)got, want);
  const char *fast = reader_fast_int64(buf, buf + n, &fast_got);
  if (fast) CHECK(fast == stop && fast_got == got, "'%s' (fast): %lld, general %lld", text, (long long)fast_got,
                  (long long)got);
}

static void test_numbers(void) {
  static const char *fixed[] = {"0", "-0", "9", "-0.5", "2.94038e+06", "1e22", "1e23", "1e-22", "1e-23",
                                "0.1", "0.33557800000000004", "123456789012345678", "1234567890123456789",
                                "9007199254740993", "4.9e-324", "1.7976931348623157e308", "1e309", ".5", "5.",
                                "+1.5", "1e", "1e+", "0x1p-3", "inf", "-nan", "12abc", "1.2.3", "", "-", "."};
  for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) check_double(fixed[i]);
  char text[64];
  for (int i = 0; i < 200000; i++) {
    double v = ldexp((double)(next_u64() >> 11), (int)(next_u64() % 80) - 100);
    if (next_u64() & 1) v = -v;
    int digits = 1 + (int)(next_u64() % 17);
    snprintf(text, sizeof text, next_u64() % 3 ? "%.*g" : "%.*f", digits, v);
    check_double(text);
    snprintf(text, sizeof text, "%lld", (long long)(next_u64() >> (next_u64() % 64)) * ((next_u64() & 1) ? -1 : 1));
    check_int64(text);
  }
  check_int64("9223372036854775807");
  check_int64("-9223372036854775808");
  bool overflow = false;
  int64_t v;
  const char *s = "9223372036854775808";
  CHECK(mtl_parse_int64(s, s + strlen(s), &v, &overflow) && overflow, "2^63 must overflow");
  CHECK(mtl_hash_string("abc", 3) == (int64_t)0x78af5f94892f3950ULL, "XXH3-64 of abc");
}

static char *write_temp(const char *text) {
  static char path[64];
  snprintf(path, sizeof path, "/tmp/mtl_test_reader_XXXXXX");
  int fd = mkstemp(path);
  if (fd < 0) return NULL;
  size_t n = strlen(text);
  if (write(fd, text, n) != (ssize_t)n) n = 0;
  close(fd);
  return path;
}

static void test_reader(void) {
  const char *path = write_temp("id,tags,price\n1,1|2,0.5\n2,,9\n3,7,x\n");
  mtl_column_spec cols[3] = {
    {.name = "id", .type = MTL_COLUMN_INT64},
    {.name = "tags", .type = MTL_COLUMN_MULTI, .default_text = ""},
    {.name = "price", .type = MTL_COLUMN_FLOAT},
  };
  const char *files[1] = {path};
  mtl_reader_options o = {.files = files, .nfiles = 1, .columns = cols, .ncolumns = 3, .header = true,
                          .batch_size = 2};
  mtl_reader *r = mtl_reader_new(&o);
  CHECK(r != NULL, "mtl_reader_new: %s", mtl_error_message());
  if (!r) return;
  CHECK(mtl_reader_num_outputs(r) == 3, "3 outputs");
  mtl_batch_output out[3];
  int64_t n = mtl_reader_next(r, out);
  CHECK(n == 2, "first batch: %lld rows (%s)", (long long)n, mtl_error_message());
  if (n == 2) {
    CHECK(mtl_i64(out[0].values)[0] == 1 && mtl_i64(out[0].values)[1] == 2, "ids");
    CHECK(out[1].values->numel == 2 && out[1].offsets->numel == 3, "tag sizes");
    CHECK(mtl_i64(out[1].offsets)[1] == 2 && mtl_i64(out[1].offsets)[2] == 2, "tag offsets");
    CHECK(mtl_f32(out[2].values)[0] == 0.5f && mtl_f32(out[2].values)[1] == 9.0f, "prices");
    for (int i = 0; i < 3; i++) {
      mtl_tensor_release(out[i].values);
      mtl_tensor_release(out[i].offsets);
      mtl_tensor_release(out[i].weights);
    }
  }
  n = mtl_reader_next(r, out);
  char want[256];
  snprintf(want, sizeof want, "%s:4:3: expected a number for column 'price', got \"x\"", path);
  CHECK(n == -1 && !strcmp(mtl_error_message(), want), "error: %s", mtl_error_message());
  mtl_reader_free(r);
  unlink(path);
}

static void release_batch(mtl_batch_output *out, int n) {
  for (int i = 0; i < n; i++) {
    mtl_tensor_release(out[i].values);
    mtl_tensor_release(out[i].offsets);
    mtl_tensor_release(out[i].weights);
    mtl_tensor_release(out[i].steps);
  }
}

/* Sequences: a bad row in the middle of a batch leaves no steps or values behind. */
static void test_sequences(void) {
  const char *path = write_temp("1;2|3,0.5|1\n4|x,2\n5,\n");
  mtl_column_spec cols[2] = {
    {.name = "s", .type = MTL_COLUMN_SEQ, .step_separator = ';'},
    {.name = "v", .type = MTL_COLUMN_SEQ, .float_values = true, .default_text = ""},
  };
  const char *files[1] = {path};
  mtl_reader_options o = {.files = files, .nfiles = 1, .columns = cols, .ncolumns = 2, .skip_errors = true,
                          .batch_size = 8};
  mtl_reader *r = mtl_reader_new(&o);
  CHECK(r != NULL, "mtl_reader_new: %s", mtl_error_message());
  if (!r) return;
  CHECK(mtl_reader_output_kind(r, 0) == MTL_OUTPUT_SEQ && mtl_reader_output_float(r, 1), "seq outputs");
  mtl_batch_output out[2];
  int64_t n = mtl_reader_next(r, out);
  CHECK(n == 2 && mtl_reader_skipped(r) == 1, "two rows, one skipped: %lld (%s)", (long long)n, mtl_error_message());
  if (n == 2) {
    const int64_t *ids = mtl_i64(out[0].values), *steps = mtl_i64(out[0].steps), *off = mtl_i64(out[0].offsets);
    CHECK(out[0].values->numel == 4 && ids[0] == 1 && ids[1] == 2 && ids[2] == 3 && ids[3] == 5, "ids");
    CHECK(out[0].steps->numel == 4 && steps[1] == 2 && steps[2] == 3 && steps[3] == 4, "steps");
    CHECK(off[0] == 0 && off[1] == 2 && off[2] == 3, "row offsets");
    const float *v = mtl_f32(out[1].values);
    CHECK(out[1].values->numel == 2 && v[0] == 0.5f && v[1] == 1.0f, "float values");
    CHECK(mtl_i64(out[1].offsets)[2] == 2 && out[1].steps->numel == 3, "the empty sequence of row 3");
    release_batch(out, 2);
  }
  mtl_reader_free(r);
  unlink(path);
}

/* Random bytes drawn mostly from the characters that matter to the parser. */
static void test_random_input(void) {
  static const char alphabet[] = "0123456789,,,|||::\"\"\n\r.-+eEx \t\\\xc3\xbc";
  size_t n = 200000;
  char *text = malloc(n + 1);
  if (!text) return;
  for (size_t i = 0; i < n; i++) {
    uint64_t u = next_u64();
    text[i] = u % 50 == 0 ? (char)(u >> 8) : alphabet[(u >> 8) % (sizeof alphabet - 1)];
  }
  text[n] = 0;
  for (size_t i = 0; i < n; i++) /* keep NULs too, but not a terminator: write with write() */
    if (text[i] == 0) text[i] = 1;
  char *path = write_temp(text);
  free(text);
  if (!path) return;
  mtl_column_spec cols[5] = {
    {.name = "a", .type = MTL_COLUMN_INT64, .default_text = "0"},
    {.name = "b", .type = MTL_COLUMN_FLOAT},
    {.name = "c", .type = MTL_COLUMN_MULTI},
    {.name = "d", .type = MTL_COLUMN_KV, .separator = '|'},
    {.name = "e", .type = MTL_COLUMN_STRING},
  };
  const char *files[1] = {path};
  for (int shuffle = 0; shuffle <= 1; shuffle++) {
    mtl_reader_options o = {.files = files, .nfiles = 1, .columns = cols, .ncolumns = 5, .skip_errors = true,
                            .batch_size = 7, .chunk_size = 64, .shuffle_buffer = shuffle ? 5 : 0};
    mtl_reader *r = mtl_reader_new(&o);
    CHECK(r != NULL, "mtl_reader_new: %s", mtl_error_message());
    if (!r) continue;
    mtl_batch_output out[5];
    int64_t rows = 0, k;
    while ((k = mtl_reader_next(r, out)) > 0) {
      rows += k;
      int64_t *off = mtl_i64(out[2].offsets);
      CHECK(off[0] == 0 && off[k] == out[2].values->numel, "bag offsets of a batch");
      for (int i = 0; i < 5; i++) {
        mtl_tensor_release(out[i].values);
        mtl_tensor_release(out[i].offsets);
        mtl_tensor_release(out[i].weights);
      }
    }
    CHECK(k == 0, "random input: %s", mtl_error_message());
    CHECK(rows + mtl_reader_skipped(r) > 0, "some rows were seen");
    CHECK(mtl_reader_num_messages(r) == (mtl_reader_skipped(r) < 10 ? (int)mtl_reader_skipped(r) : 10),
          "messages kept");
    mtl_reader_free(r);
  }
  unlink(path);
}

/* Row blocks: over rows 0..n-1 (value = row number) in two files, each part
 * gets exactly the rows [k K + floor(i K / c), k K + floor((i + 1) K / c)) in
 * order, batches never span blocks (batch_size > 0), the parts together get
 * every row once, and max_rows bounds the input's rows. One part (count 1)
 * reads everything. */
static void test_partition(void) {
  const int64_t n = 53, half = 20;
  char text[2][2048];
  for (int f = 0; f < 2; f++) {
    size_t k = (size_t)snprintf(text[f], sizeof text[f], "x\n");
    for (int64_t p = f ? half : 0; p < (f ? n : half); p++) {
      k += (size_t)snprintf(text[f] + k, sizeof text[f] - k, "%lld\n", (long long)p);
      if (p % 7 == 3) k += (size_t)snprintf(text[f] + k, sizeof text[f] - k, "\n"); /* blank lines are no rows */
    }
  }
  char *paths[2] = {NULL, NULL};
  for (int f = 0; f < 2; f++) {
    const char *t = write_temp(text[f]);
    paths[f] = t ? strdup(t) : NULL;
  }
  if (!paths[0] || !paths[1]) return;
  mtl_column_spec cols[1] = {{.name = "x", .type = MTL_COLUMN_INT64}};
  const char *files[2] = {paths[0], paths[1]};
  static const int64_t cases[][4] = { /* count, block, batch_size, max_rows */
      {2, 10, 5, 0}, {3, 10, 100, 0}, {3, 10, 2, 0}, {4, 3, 1, 0}, {5, 3, 7, 0}, {3, 7, 0, 0}, {2, 8, 4, 30}, {1, 8, 3, 0}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    int64_t count = cases[c][0], block = cases[c][1], batch = cases[c][2], max_rows = cases[c][3];
    int64_t limit = max_rows ? max_rows : n, seen = 0;
    for (int64_t i = 0; i < count; i++) {
      mtl_reader_options o = {.files = files, .nfiles = 2, .columns = cols, .ncolumns = 1, .header = true,
                              .batch_size = batch, .max_rows = max_rows, .partition_index = i,
                              .partition_count = count, .partition_block = block};
      mtl_reader *r = mtl_reader_new(&o);
      CHECK(r != NULL, "mtl_reader_new: %s", mtl_error_message());
      if (!r) continue;
      int64_t lo = i * block / count, hi = (i + 1) * block / count, want = 0, k;
      if (count == 1) lo = 0, hi = block;
      mtl_batch_output out[1];
      while ((k = mtl_reader_next(r, out)) > 0) {
        const int64_t *v = mtl_i64(out[0].values);
        for (int64_t j = 0; j < k; j++) {
          while (want < limit && (want % block < lo || want % block >= hi)) want++;
          CHECK(v[j] == want, "case %zu part %lld: row %lld, expected %lld", c, (long long)i, (long long)v[j],
                (long long)want);
          if (count > 1 && batch > 0) CHECK(v[j] / block == v[0] / block, "case %zu: a batch spans blocks %lld and %lld", c,
                               (long long)(v[0] / block), (long long)(v[j] / block));
          want++;
          seen++;
        }
        mtl_tensor_release(out[0].values);
      }
      CHECK(k == 0, "case %zu: %s", c, mtl_error_message());
      while (want < limit && (want % block < lo || want % block >= hi)) want++;
      CHECK(want >= limit, "case %zu part %lld: stopped before row %lld", c, (long long)i, (long long)want);
      mtl_reader_free(r);
    }
    CHECK(seen == limit, "case %zu: the parts read %lld rows, expected %lld", c, (long long)seen, (long long)limit);
  }
  /* a bad row is reported by the part that reads it, with its file and line */
  mtl_reader_options o = {.text = "x\n0\nbad\n2\n3\n", .text_len = 12, .columns = cols, .ncolumns = 1,
                          .header = true, .batch_size = 4, .partition_index = 0, .partition_count = 2,
                          .partition_block = 2};
  mtl_batch_output out[1];
  mtl_reader *r = mtl_reader_new(&o);
  for (int b = 0; b < 2; b++) { /* rows 0 and 2, a batch per block; row 1 skipped unparsed */
    CHECK(r && mtl_reader_next(r, out) == 1, "part 0, block %d: %s", b, mtl_error_message());
    if (r) {
      CHECK(mtl_i64(out[0].values)[0] == 2 * b, "part 0, block %d", b);
      mtl_tensor_release(out[0].values);
    }
  }
  CHECK(r && mtl_reader_next(r, out) == 0, "part 0 ends: %s", mtl_error_message());
  mtl_reader_free(r);
  o.partition_index = 1;
  r = mtl_reader_new(&o);
  CHECK(r && mtl_reader_next(r, out) == -1 &&
            !strcmp(mtl_error_message(), "<text>:3:1: expected an integer for column 'x', got \"bad\""),
        "part 1 reports the bad row: %s", mtl_error_message());
  mtl_reader_free(r);
  o.partition_index = 2;
  CHECK(!mtl_reader_new(&o) && !strcmp(mtl_error_message(), "mtl.data: partition: expected 0 <= index < count and "
                                       "1 <= block <= 2^63 / count, got index 2, count 2, block 2"),
        "a bad partition: %s", mtl_error_message());
  unlink(paths[0]);
  unlink(paths[1]);
  free(paths[0]);
  free(paths[1]);
}

int main(void) {
  test_numbers();
  test_reader();
  test_sequences();
  test_random_input();
  test_partition();
  return failures ? 1 : 0;
}
