/* C test of the checkpoint record format (no Lua): round trips of every record
 * kind, then every truncation and every flipped byte of a small file must be
 * an error naming the file and an offset. Prints nothing on success. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "mtl/checkpoint.h"

static char dir[64];

static void path_in(char *buf, size_t n, const char *name) { snprintf(buf, n, "%s/%s", dir, name); }

static int exists(const char *p) {
  struct stat st;
  return stat(p, &st) == 0;
}

/* A file with one record of each kind: the table {nil, true, -0.0, "a\0b",
 * tensor, INT64_MIN, UINT64_MAX, object "toy" with state 42}. */
static int write_sample(const char *path, mtl_tensor *t) {
  mtl_ckpt_writer *w = mtl_ckpt_writer_open(path);
  if (!w) return -1;
  int rc = 0;
  rc |= mtl_ckpt_write_table(w, 0, 8);
  rc |= mtl_ckpt_write_number(w, 1) | mtl_ckpt_write_nil(w);
  rc |= mtl_ckpt_write_number(w, 2) | mtl_ckpt_write_boolean(w, 1);
  rc |= mtl_ckpt_write_number(w, 3) | mtl_ckpt_write_number(w, -0.0);
  rc |= mtl_ckpt_write_number(w, 4) | mtl_ckpt_write_string(w, "a\0b", 3);
  rc |= mtl_ckpt_write_number(w, 5) | mtl_ckpt_write_tensor(w, t);
  rc |= mtl_ckpt_write_number(w, 6) | mtl_ckpt_write_int64(w, INT64_MIN);
  rc |= mtl_ckpt_write_number(w, 7) | mtl_ckpt_write_uint64(w, UINT64_MAX);
  rc |= mtl_ckpt_write_number(w, 8) | mtl_ckpt_write_object(w, "toy", 3);
  rc |= mtl_ckpt_write_number(w, 42);
  if (rc) {
    mtl_ckpt_writer_abort(w);
    return -1;
  }
  return mtl_ckpt_writer_commit(w);
}

/* Reads every record up to END; 0 if the file is sound. */
static int read_all(const char *path) {
  mtl_ckpt_reader *r = mtl_ckpt_reader_open(path);
  if (!r) return -1;
  mtl_ckpt_record rec;
  int rc;
  while ((rc = mtl_ckpt_read(r, &rec)) == 0 && rec.tag != MTL_CKPT_END) mtl_tensor_release(rec.tensor);
  mtl_ckpt_reader_close(r);
  return rc;
}

static void test_round_trip(const char *path, mtl_tensor *t) {
  mtl_ckpt_reader *r = mtl_ckpt_reader_open(path);
  CHECK(r != NULL, "%s", mtl_error_message());
  if (!r) return;
  mtl_ckpt_record rec;
  CHECK(mtl_ckpt_read(r, &rec) == 0 && rec.tag == MTL_CKPT_TABLE && rec.narray == 0 && rec.nhash == 8,
        "table header");
  for (int k = 1; k <= 8; k++) {
    CHECK(mtl_ckpt_read(r, &rec) == 0 && rec.tag == MTL_CKPT_NUMBER && rec.number == k, "key %d", k);
    CHECK(mtl_ckpt_read(r, &rec) == 0, "value %d: %s", k, mtl_error_message());
    switch (k) {
      case 1: CHECK(rec.tag == MTL_CKPT_NIL, "nil"); break;
      case 2: CHECK(rec.tag == MTL_CKPT_BOOLEAN && rec.boolean == 1, "boolean"); break;
      case 3: CHECK(rec.tag == MTL_CKPT_NUMBER && rec.number == 0 && signbit(rec.number), "-0"); break;
      case 4: CHECK(rec.tag == MTL_CKPT_STRING && rec.len == 3 && !memcmp(rec.bytes, "a\0b", 3), "string"); break;
      case 5:
        CHECK(rec.tag == MTL_CKPT_TENSOR && rec.tensor && rec.tensor->ndim == 2 && rec.tensor->shape[0] == 3 &&
                  rec.tensor->shape[1] == 2, "tensor shape");
        if (rec.tensor) {
          /* t is a transposed view; the stored values are its row-major order */
          int64_t idx[2];
          for (idx[0] = 0; idx[0] < 3; idx[0]++)
            for (idx[1] = 0; idx[1] < 2; idx[1]++)
              CHECK(mtl_f32(rec.tensor)[idx[0] * 2 + idx[1]] == (float)mtl_tensor_get_at(t, idx), "tensor value");
          mtl_tensor_release(rec.tensor);
        }
        break;
      case 6: CHECK(rec.tag == MTL_CKPT_INT64 && rec.i64 == INT64_MIN, "int64"); break;
      case 7: CHECK(rec.tag == MTL_CKPT_UINT64 && rec.u64 == UINT64_MAX, "uint64"); break;
      case 8:
        CHECK(rec.tag == MTL_CKPT_OBJECT && rec.len == 3 && !memcmp(rec.bytes, "toy", 3), "object");
        CHECK(mtl_ckpt_read(r, &rec) == 0 && rec.tag == MTL_CKPT_NUMBER && rec.number == 42, "object state");
        break;
    }
  }
  CHECK(mtl_ckpt_read(r, &rec) == 0 && rec.tag == MTL_CKPT_END, "end record");
  CHECK(mtl_ckpt_read(r, &rec) < 0 && strstr(mtl_error_message(), "read past the end record"), "past end");
  mtl_ckpt_reader_close(r);
}

static long file_size(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

static unsigned char *slurp(const char *p, long *n) {
  *n = file_size(p);
  FILE *f = fopen(p, "rb");
  unsigned char *b = malloc((size_t)*n);
  if (!f || !b || fread(b, 1, (size_t)*n, f) != (size_t)*n) exit(2);
  fclose(f);
  return b;
}

static void spit(const char *p, const unsigned char *b, long n) {
  FILE *f = fopen(p, "wb");
  if (!f || fwrite(b, 1, (size_t)n, f) != (size_t)n) exit(2);
  fclose(f);
}

/* Every damaged copy must fail, naming the file and (past the magic) an offset. */
static void test_damage(const char *good) {
  long n;
  unsigned char *b = slurp(good, &n);
  char bad[128];
  path_in(bad, sizeof bad, "bad.bin");
  /* a new file per case: rewriting one file in place makes ext4 flush it each time */
  char one[160];
  for (long cut = 0; cut < n; cut++) {
    snprintf(one, sizeof one, "%s/cut%ld.bin", dir, cut);
    spit(one, b, cut);
    CHECK(read_all(one) < 0, "truncated at %ld was accepted", cut);
    CHECK(strstr(mtl_error_message(), one) && (cut < 8 || strstr(mtl_error_message(), "offset")),
          "truncated at %ld: %s", cut, mtl_error_message());
    unlink(one);
  }
  for (long i = 0; i < n; i++) {
    for (int bit = 0; bit < 8; bit += 3) {
      snprintf(one, sizeof one, "%s/flip%ld_%d.bin", dir, i, bit);
      b[i] ^= (unsigned char)(1 << bit);
      spit(one, b, n);
      CHECK(read_all(one) < 0, "flipped bit %d of byte %ld was accepted", bit, i);
      CHECK(strstr(mtl_error_message(), one) && strstr(mtl_error_message(), "offset"), "flip at %ld: %s", i,
            mtl_error_message());
      b[i] ^= (unsigned char)(1 << bit);
      unlink(one);
    }
  }
  /* a record length of 2^60 (first record's length field: bytes 21..28) */
  unsigned char copy[4096];
  memcpy(copy, b, (size_t)n);
  memset(copy + 21, 0, 8);
  copy[28] = 0x10;
  spit(bad, copy, n);
  CHECK(read_all(bad) < 0 && strstr(mtl_error_message(), "truncated or corrupted record at offset 20"),
        "huge length: %s", mtl_error_message());
  /* a byte appended after the end record */
  memcpy(copy, b, (size_t)n);
  copy[n] = 0;
  spit(bad, copy, n + 1);
  CHECK(read_all(bad) < 0 && strstr(mtl_error_message(), "1 unexpected bytes after the end record"), "trailing: %s",
        mtl_error_message());
  unlink(bad);
  free(b);
}

static void test_atomic(mtl_tensor *t) {
  char good[128], tmp[160], missing[128];
  path_in(good, sizeof good, "atomic.bin");
  CHECK(write_sample(good, t) == 0, "%s", mtl_error_message());
  long before = file_size(good);
  /* an aborted writer leaves the old file and no temporary file */
  mtl_ckpt_writer *w = mtl_ckpt_writer_open(good);
  CHECK(w != NULL, "%s", mtl_error_message());
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", good, (long)getpid());
  CHECK(exists(tmp), "temp file exists while writing");
  mtl_ckpt_write_string(w, "partial", 7);
  mtl_ckpt_writer_abort(w);
  CHECK(!exists(tmp), "temp file removed on abort");
  CHECK(file_size(good) == before && read_all(good) == 0, "old file intact");
  /* a directory that does not exist */
  path_in(missing, sizeof missing, "no/such/dir.bin");
  CHECK(mtl_ckpt_writer_open(missing) == NULL && strstr(mtl_error_message(), "cannot create temporary file"),
        "%s", mtl_error_message());
  /* rename over a non-empty directory fails: temp removed */
  char sub[128], inner[160];
  path_in(sub, sizeof sub, "subdir");
  mkdir(sub, 0777);
  snprintf(inner, sizeof inner, "%s/x", sub);
  spit(inner, (const unsigned char *)"x", 1);
  w = mtl_ckpt_writer_open(sub);
  CHECK(w && mtl_ckpt_write_nil(w) == 0, "open");
  CHECK(mtl_ckpt_writer_commit(w) < 0 && strstr(mtl_error_message(), "cannot rename"), "%s", mtl_error_message());
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", sub, (long)getpid());
  CHECK(!exists(tmp), "temp removed after failed rename");
  unlink(inner);
  rmdir(sub);
  unlink(good);
}

int main(void) {
  strcpy(dir, "/tmp/mtl_test_checkpoint.XXXXXX");
  if (!mkdtemp(dir)) return 2;
  int64_t shape[2] = {2, 3};
  mtl_tensor *base = mtl_tensor_new(MTL_F32, 2, shape);
  for (int i = 0; i < 6; i++) mtl_f32(base)[i] = (float)i * 1.5f - 2;
  int64_t tshape[2] = {3, 2}, tstride[2] = {1, 3};
  mtl_tensor *t = mtl_tensor_view(base, 2, tshape, tstride, 0); /* transpose */

  char good[128];
  path_in(good, sizeof good, "good.bin");
  CHECK(write_sample(good, t) == 0, "%s", mtl_error_message());
  test_round_trip(good, t);
  CHECK(read_all(good) == 0, "%s", mtl_error_message());
  test_damage(good);
  test_atomic(t);

  /* wrong version with a valid header checksum */
  {
    long n;
    unsigned char *b = slurp(good, &n);
    b[8] = 2;
    spit(good, b, n);
    CHECK(read_all(good) < 0 && strstr(mtl_error_message(), "unsupported format version 2 at offset 8"), "%s",
          mtl_error_message());
    free(b);
  }
  unlink(good);
  rmdir(dir);
  mtl_tensor_release(t);
  mtl_tensor_release(base);
  return failures ? 1 : 0;
}
