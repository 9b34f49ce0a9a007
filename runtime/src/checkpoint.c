/* Checkpoint files: writer and bounds-checked reader of typed records.
 * The format is described in docs/checkpoint.md; in short:
 *
 *   header  "\x89MTL\r\n\x1a\n"  u32 version  u32 flags  u32 crc32(first 16 bytes)
 *   record  u8 tag  u64 length  payload[length]  u32 crc32(tag, length, payload)
 *   ...
 *   record  END (payload: u64 number of records before it)
 *
 * All integers are little-endian. Every record carries its own CRC-32 so a
 * damaged byte is reported at the record that holds it. The reader checks each
 * length against the bytes left in the file before it allocates anything, and
 * checks the checksum before it interprets a payload.
 */
#include "mtl/checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* Tensor data is written straight from memory, so the host's byte order must
 * be the file's. (A big-endian port would byte-swap in w_bytes/r_bytes.) */
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "checkpoint.c assumes a little-endian host"
#endif

static const unsigned char MAGIC[8] = {0x89, 'M', 'T', 'L', '\r', '\n', 0x1a, '\n'};

/* dtype codes in the file (independent of the mtl_dtype enum's values) */
enum { FILE_F32 = 1, FILE_I64 = 2 };

const char *mtl_ckpt_tag_name(int tag) {
  switch (tag) {
    case MTL_CKPT_NIL: return "nil";
    case MTL_CKPT_BOOLEAN: return "boolean";
    case MTL_CKPT_NUMBER: return "number";
    case MTL_CKPT_STRING: return "string";
    case MTL_CKPT_TABLE: return "table";
    case MTL_CKPT_TENSOR: return "tensor";
    case MTL_CKPT_OBJECT: return "object";
    case MTL_CKPT_INT64: return "int64";
    case MTL_CKPT_UINT64: return "uint64";
    case MTL_CKPT_END: return "end";
    default: return "unknown";
  }
}

static void put_u32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get_u32(const unsigned char *p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}
static uint64_t get_u64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

/* zlib's crc32 takes a 32-bit length; feed big buffers in pieces. */
static uint32_t crc_update(uint32_t crc, const void *p, size_t n) {
  const unsigned char *b = p;
  while (n > 0) {
    size_t k = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n;
    crc = (uint32_t)crc32(crc, b, (uInt)k);
    b += k;
    n -= k;
  }
  return crc;
}

/* ============================== writer ===================================== */
struct mtl_ckpt_writer {
  FILE *f;
  char *path;      /* the real name */
  char *tmp;       /* "<path>.tmp.<pid>" */
  uint64_t nrecords;
  int failed;      /* a write failed: everything after it fails too */
};

static int w_fail(mtl_ckpt_writer *w, const char *what) {
  w->failed = 1;
  return mtl_error("mtl.save: %s: %s: %s", w->path, what, strerror(errno));
}

static int w_bytes(mtl_ckpt_writer *w, const void *p, size_t n, uint32_t *crc) {
  if (n && fwrite(p, 1, n, w->f) != n) return w_fail(w, "write failed");
  if (crc) *crc = crc_update(*crc, p, n);
  return 0;
}

/* Writes tag + length and starts the record's checksum. */
static int w_begin(mtl_ckpt_writer *w, int tag, uint64_t len, uint32_t *crc) {
  if (w->failed) return mtl_error("mtl.save: %s: an earlier write failed", w->path);
  unsigned char h[9];
  h[0] = (unsigned char)tag;
  put_u64(h + 1, len);
  *crc = 0;
  return w_bytes(w, h, sizeof h, crc);
}

static int w_end(mtl_ckpt_writer *w, uint32_t crc) {
  unsigned char c[4];
  put_u32(c, crc);
  if (w_bytes(w, c, 4, NULL) < 0) return -1;
  w->nrecords++;
  return 0;
}

/* A record whose payload is one buffer. */
static int w_record(mtl_ckpt_writer *w, int tag, const void *p, size_t n) {
  uint32_t crc;
  if (w_begin(w, tag, n, &crc) < 0 || w_bytes(w, p, n, &crc) < 0) return -1;
  return w_end(w, crc);
}

static void writer_free(mtl_ckpt_writer *w) {
  free(w->path);
  free(w->tmp);
  free(w);
}

mtl_ckpt_writer *mtl_ckpt_writer_open(const char *path) {
  if (!path || !*path) {
    mtl_error("mtl.save: expected a file name, got an empty string");
    return NULL;
  }
  mtl_ckpt_writer *w = calloc(1, sizeof *w);
  size_t n = strlen(path);
  if (w) w->path = malloc(n + 1);
  if (w) w->tmp = malloc(n + 32);
  if (!w || !w->path || !w->tmp) {
    if (w) writer_free(w);
    mtl_error("mtl.save: %s: out of memory", path);
    return NULL;
  }
  memcpy(w->path, path, n + 1);
  snprintf(w->tmp, n + 32, "%s.tmp.%ld", path, (long)getpid());
  int fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) {
    mtl_error("mtl.save: %s: cannot create temporary file %s: %s", path, w->tmp, strerror(errno));
    writer_free(w);
    return NULL;
  }
  w->f = fdopen(fd, "wb");
  if (!w->f) {
    mtl_error("mtl.save: %s: cannot open temporary file %s: %s", path, w->tmp, strerror(errno));
    close(fd);
    unlink(w->tmp);
    writer_free(w);
    return NULL;
  }
  setvbuf(w->f, NULL, _IOFBF, (size_t)1 << 20);
  unsigned char h[MTL_CKPT_HEADER_SIZE];
  memcpy(h, MAGIC, 8);
  put_u32(h + 8, MTL_CKPT_VERSION);
  put_u32(h + 12, 0); /* flags: none defined */
  put_u32(h + 16, crc_update(0, h, 16));
  if (w_bytes(w, h, sizeof h, NULL) < 0) {
    mtl_ckpt_writer_abort(w);
    return NULL;
  }
  return w;
}

int mtl_ckpt_write_nil(mtl_ckpt_writer *w) { return w_record(w, MTL_CKPT_NIL, NULL, 0); }

int mtl_ckpt_write_boolean(mtl_ckpt_writer *w, int b) {
  unsigned char v = b ? 1 : 0;
  return w_record(w, MTL_CKPT_BOOLEAN, &v, 1);
}

int mtl_ckpt_write_number(mtl_ckpt_writer *w, double x) {
  uint64_t bits;
  memcpy(&bits, &x, 8); /* bit-exact, including -0 and NaN payloads */
  unsigned char p[8];
  put_u64(p, bits);
  return w_record(w, MTL_CKPT_NUMBER, p, 8);
}

int mtl_ckpt_write_int64(mtl_ckpt_writer *w, int64_t x) {
  unsigned char p[8];
  put_u64(p, (uint64_t)x);
  return w_record(w, MTL_CKPT_INT64, p, 8);
}

int mtl_ckpt_write_uint64(mtl_ckpt_writer *w, uint64_t x) {
  unsigned char p[8];
  put_u64(p, x);
  return w_record(w, MTL_CKPT_UINT64, p, 8);
}

int mtl_ckpt_write_string(mtl_ckpt_writer *w, const char *s, size_t n) {
  return w_record(w, MTL_CKPT_STRING, s, n);
}

int mtl_ckpt_write_table(mtl_ckpt_writer *w, uint64_t narray, uint64_t nhash) {
  unsigned char p[16];
  put_u64(p, narray);
  put_u64(p + 8, nhash);
  return w_record(w, MTL_CKPT_TABLE, p, 16);
}

int mtl_ckpt_write_object(mtl_ckpt_writer *w, const char *type_name, size_t n) {
  if (n == 0 || n > 255)
    return mtl_error("mtl.save: %s: object type names have 1 to 255 bytes, got %zu", w->path, n);
  return w_record(w, MTL_CKPT_OBJECT, type_name, n);
}

int mtl_ckpt_write_tensor(mtl_ckpt_writer *w, mtl_tensor *t) {
  if (t->dtype != MTL_F32 && t->dtype != MTL_I64)
    return mtl_error("mtl.save: %s: cannot store tensors of dtype %s", w->path, mtl_dtype_name(t->dtype));
  mtl_tensor *c = mtl_tensor_contiguous_data(t);
  if (!c) return -1;
  size_t nbytes = (size_t)c->numel * mtl_dtype_size(c->dtype);
  unsigned char meta[MTL_CKPT_TENSOR_META] = {0};
  meta[0] = c->dtype == MTL_F32 ? FILE_F32 : FILE_I64;
  meta[1] = (unsigned char)c->ndim;
  for (int i = 0; i < c->ndim; i++) put_u64(meta + 8 + 8 * i, (uint64_t)c->shape[i]);
  uint32_t crc;
  int rc = -1;
  /* the data goes out in one fwrite, straight from the tensor's storage */
  if (w_begin(w, MTL_CKPT_TENSOR, sizeof meta + nbytes, &crc) == 0 &&
      w_bytes(w, meta, sizeof meta, &crc) == 0 &&
      w_bytes(w, (char *)c->storage->data + c->offset * (int64_t)mtl_dtype_size(c->dtype), nbytes, &crc) == 0)
    rc = w_end(w, crc);
  mtl_tensor_release(c);
  return rc;
}

void mtl_ckpt_writer_abort(mtl_ckpt_writer *w) {
  if (!w) return;
  if (w->f) fclose(w->f);
  unlink(w->tmp);
  writer_free(w);
}

/* fsync of the directory holding path, so the rename itself is durable. */
static int sync_dir(const char *path) {
  size_t n = strlen(path);
  char *dir = malloc(n + 2);
  if (!dir) return 0; /* the file is in place; skip the extra durability step */
  memcpy(dir, path, n + 1);
  char *slash = strrchr(dir, '/');
  if (!slash) strcpy(dir, ".");
  else if (slash == dir) dir[1] = 0; /* "/name" -> "/" */
  else *slash = 0;
  int rc = 0;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || (fsync(fd) < 0 && errno != EINVAL)) /* EINVAL: fs has no dir fsync */
    rc = mtl_error("mtl.save: %s: file written, but syncing directory %s failed: %s", path, dir,
                   strerror(errno));
  if (fd >= 0) close(fd);
  free(dir);
  return rc;
}

int mtl_ckpt_writer_commit(mtl_ckpt_writer *w) {
  unsigned char p[8];
  put_u64(p, w->nrecords);
  if (w_record(w, MTL_CKPT_END, p, 8) < 0) goto fail;
  if (fflush(w->f) != 0) { w_fail(w, "write failed"); goto fail; }
  if (fsync(fileno(w->f)) != 0) { w_fail(w, "fsync failed"); goto fail; }
  FILE *f = w->f;
  w->f = NULL;
  if (fclose(f) != 0) { w_fail(w, "close failed"); goto fail; }
  if (rename(w->tmp, w->path) != 0) {
    mtl_error("mtl.save: %s: cannot rename %s over it: %s", w->path, w->tmp, strerror(errno));
    goto fail;
  }
  int rc = sync_dir(w->path);
  writer_free(w);
  return rc;
fail:
  mtl_ckpt_writer_abort(w);
  return -1;
}

/* ============================== reader ===================================== */
struct mtl_ckpt_reader {
  FILE *f;
  char *path;
  int64_t size;      /* file size at open */
  int64_t pos;       /* offset of the next unread byte */
  uint64_t nrecords; /* records read before END */
  int done;          /* END was read */
  unsigned char *buf; /* payload of the last small record */
  size_t cap;
};

/* Sets "mtl.load: <path>: <message>". */
static int r_error(const mtl_ckpt_reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int r_error(const mtl_ckpt_reader *r, const char *fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return mtl_error("mtl.load: %s: %s", r->path, msg);
}

/* Reads exactly n bytes (already known to be within the file). */
static int r_bytes(mtl_ckpt_reader *r, void *p, size_t n) {
  if (n && fread(p, 1, n, r->f) != n) {
    if (ferror(r->f))
      return r_error(r, "read error at offset %lld: %s", (long long)r->pos, strerror(errno));
    return r_error(r, "file ended early at offset %lld (did it change while being read?)",
                   (long long)r->pos);
  }
  r->pos += (int64_t)n;
  return 0;
}

/* Reads n bytes only to feed them to the checksum. */
static int r_skip(mtl_ckpt_reader *r, uint64_t n, uint32_t *crc) {
  unsigned char tmp[1 << 14];
  while (n > 0) {
    size_t k = n > sizeof tmp ? sizeof tmp : (size_t)n;
    if (r_bytes(r, tmp, k) < 0) return -1;
    *crc = crc_update(*crc, tmp, k);
    n -= k;
  }
  return 0;
}

/* Reads the stored checksum and compares it with the computed one. */
static int r_check_crc(mtl_ckpt_reader *r, int tag, int64_t offset, uint32_t crc) {
  unsigned char c[4];
  if (r_bytes(r, c, 4) < 0) return -1;
  uint32_t stored = get_u32(c);
  if (stored != crc)
    return r_error(r, "checksum mismatch in %s record at offset %lld (stored 0x%08x, computed 0x%08x): the file is corrupted",
                   mtl_ckpt_tag_name(tag), (long long)offset, stored, crc);
  return 0;
}

mtl_ckpt_reader *mtl_ckpt_reader_open(const char *path) {
  if (!path || !*path) {
    mtl_error("mtl.load: expected a file name, got an empty string");
    return NULL;
  }
  mtl_ckpt_reader *r = calloc(1, sizeof *r);
  size_t n = strlen(path);
  if (r) r->path = malloc(n + 1);
  if (!r || !r->path) {
    free(r);
    mtl_error("mtl.load: %s: out of memory", path);
    return NULL;
  }
  memcpy(r->path, path, n + 1);
  r->f = fopen(path, "rb");
  if (!r->f) {
    r_error(r, "cannot open: %s", strerror(errno));
    goto fail;
  }
  struct stat st;
  if (fstat(fileno(r->f), &st) != 0) {
    r_error(r, "cannot stat: %s", strerror(errno));
    goto fail;
  }
  if (!S_ISREG(st.st_mode)) {
    r_error(r, "not a regular file");
    goto fail;
  }
  setvbuf(r->f, NULL, _IOFBF, (size_t)1 << 20);
  r->size = (int64_t)st.st_size;
  unsigned char h[MTL_CKPT_HEADER_SIZE];
  size_t have = r->size < MTL_CKPT_HEADER_SIZE ? (size_t)r->size : MTL_CKPT_HEADER_SIZE;
  if (r->size == 0) {
    r_error(r, "not an mtl checkpoint (the file is empty)");
    goto fail;
  }
  if (r_bytes(r, h, have) < 0) goto fail;
  if (memcmp(h, MAGIC, have < 8 ? have : 8) != 0) {
    r_error(r, "not an mtl checkpoint (wrong magic bytes at offset 0)");
    goto fail;
  }
  if (have < MTL_CKPT_HEADER_SIZE) {
    r_error(r, "truncated header at offset 0 (needs %d bytes, the file has %zu)", MTL_CKPT_HEADER_SIZE, have);
    goto fail;
  }
  /* The version comes before the header checksum: a newer format may lay out
   * its header differently, and should be reported as a newer version. */
  uint32_t version = get_u32(h + 8);
  if (version != MTL_CKPT_VERSION) {
    r_error(r, "unsupported format version %u at offset 8 (this build reads version %d)", version,
            MTL_CKPT_VERSION);
    goto fail;
  }
  uint32_t stored = get_u32(h + 16), crc = crc_update(0, h, 16);
  if (stored != crc) {
    r_error(r, "checksum mismatch in the header at offset 0 (stored 0x%08x, computed 0x%08x): the file is corrupted",
            stored, crc);
    goto fail;
  }
  if (get_u32(h + 12) != 0) {
    r_error(r, "unsupported header flags 0x%08x at offset 12", get_u32(h + 12));
    goto fail;
  }
  return r;
fail:
  mtl_ckpt_reader_close(r);
  return NULL;
}

void mtl_ckpt_reader_close(mtl_ckpt_reader *r) {
  if (!r) return;
  if (r->f) fclose(r->f);
  free(r->buf);
  free(r->path);
  free(r);
}

int64_t mtl_ckpt_reader_offset(const mtl_ckpt_reader *r) { return r->pos; }
const char *mtl_ckpt_reader_path(const mtl_ckpt_reader *r) { return r->path; }

/* A tensor record: the 72-byte meta is checked, then the data is read straight
 * into a new tensor. If the meta is malformed, the rest of the record is still
 * read for its checksum, so damage is reported as damage. */
static int read_tensor(mtl_ckpt_reader *r, mtl_ckpt_record *rec, uint64_t len, uint32_t crc) {
  unsigned char meta[MTL_CKPT_TENSOR_META];
  if (r_bytes(r, meta, sizeof meta) < 0) return -1;
  crc = crc_update(crc, meta, sizeof meta);
  uint64_t datalen = len - sizeof meta;
  char bad[256] = "";
  int ndim = meta[1];
  int64_t shape[MTL_MAX_DIMS] = {0};
  mtl_dtype dtype = meta[0] == FILE_I64 ? MTL_I64 : MTL_F32;
  uint64_t numel = 1;
  if (meta[0] != FILE_F32 && meta[0] != FILE_I64) {
    snprintf(bad, sizeof bad, "unknown dtype code %d", meta[0]);
  } else if (ndim > MTL_MAX_DIMS) {
    snprintf(bad, sizeof bad, "%d dimensions (at most %d)", ndim, MTL_MAX_DIMS);
  } else {
    for (int i = 2; i < 8 && !bad[0]; i++)
      if (meta[i]) snprintf(bad, sizeof bad, "nonzero reserved byte %d", i);
    int any_zero = 0;
    for (int i = 0; i < MTL_MAX_DIMS && !bad[0]; i++) {
      uint64_t d = get_u64(meta + 8 + 8 * i);
      if (i >= ndim && d != 0) snprintf(bad, sizeof bad, "nonzero unused dimension %d", i + 1);
      else if (d > (uint64_t)INT64_MAX / 16) /* the core's own bound on sizes */
        snprintf(bad, sizeof bad, "dimension %d is %llu", i + 1, (unsigned long long)d);
      shape[i] = (int64_t)d;
      if (i < ndim && d == 0) any_zero = 1;
    }
    /* numel, stopping as soon as it exceeds the data (so it cannot overflow) */
    for (int i = 0; i < ndim && !bad[0] && !any_zero; i++) {
      uint64_t d = (uint64_t)shape[i];
      if (numel > datalen / d + 1) {
        char s[160];
        snprintf(bad, sizeof bad, "shape %s needs more than the %llu data bytes",
                 mtl_dims_str(ndim, shape, s, sizeof s), (unsigned long long)datalen);
      }
      numel *= d;
    }
    if (any_zero) numel = 0;
    if (!bad[0] && numel * mtl_dtype_size(dtype) != datalen) {
      char s[128];
      snprintf(bad, sizeof bad, "shape %s of %s needs %llu data bytes, the record has %llu",
               mtl_dims_str(ndim, shape, s, sizeof s), mtl_dtype_name(dtype),
               (unsigned long long)(numel * mtl_dtype_size(dtype)), (unsigned long long)datalen);
    }
  }
  if (bad[0]) {
    if (r_skip(r, datalen, &crc) < 0 || r_check_crc(r, MTL_CKPT_TENSOR, rec->offset, crc) < 0) return -1;
    return r_error(r, "malformed tensor record at offset %lld: %s", (long long)rec->offset, bad);
  }
  mtl_tensor *t = mtl_tensor_new(dtype, ndim, shape);
  if (!t) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", mtl_error_message());
    return r_error(r, "cannot allocate the tensor at offset %lld: %s", (long long)rec->offset, msg);
  }
  void *data = t->storage->data;
  if (r_bytes(r, data, (size_t)datalen) < 0) {
    mtl_tensor_release(t);
    return -1;
  }
  crc = crc_update(crc, data, (size_t)datalen);
  if (r_check_crc(r, MTL_CKPT_TENSOR, rec->offset, crc) < 0) {
    mtl_tensor_release(t);
    return -1;
  }
  rec->tensor = t;
  return 0;
}

static int wrong_length(mtl_ckpt_reader *r, mtl_ckpt_record *rec, uint64_t len, const char *expected) {
  return r_error(r, "malformed %s record at offset %lld (payload is %llu bytes, expected %s)",
                 mtl_ckpt_tag_name(rec->tag), (long long)rec->offset, (unsigned long long)len, expected);
}

int mtl_ckpt_read(mtl_ckpt_reader *r, mtl_ckpt_record *rec) {
  memset(rec, 0, sizeof *rec);
  rec->offset = r->pos;
  if (r->done) return r_error(r, "read past the end record at offset %lld", (long long)r->pos);
  int64_t left = r->size - r->pos;
  if (left == 0)
    return r_error(r, "truncated file: it ends at offset %lld where another record should start",
                   (long long)r->pos);
  if (left < 9)
    return r_error(r, "truncated record header at offset %lld (needs 9 bytes, %lld left)", (long long)r->pos,
                   (long long)left);
  unsigned char h[9];
  if (r_bytes(r, h, 9) < 0) return -1;
  left -= 9;
  rec->tag = h[0];
  uint64_t len = get_u64(h + 1);
  uint32_t crc = crc_update(0, h, 9);
  /* Never trust a length: it must fit in what is left, checksum included. */
  if (left < 4 || len > (uint64_t)(left - 4)) {
    const char *name = mtl_ckpt_tag_name(rec->tag);
    return r_error(r, "truncated or corrupted record at offset %lld (%s payload needs %llu bytes + 4 checksum bytes, %lld left)",
                   (long long)rec->offset, strcmp(name, "unknown") ? name : "record", (unsigned long long)len,
                   (long long)left);
  }
  if (rec->tag == MTL_CKPT_TENSOR && len >= MTL_CKPT_TENSOR_META) {
    if (read_tensor(r, rec, len, crc) < 0) return -1;
    r->nrecords++;
    return 0;
  }
  /* Everything else is small or a string: read the payload whole. */
  if (len + 1 > r->cap) {
    unsigned char *b = realloc(r->buf, (size_t)len + 1);
    if (!b)
      return r_error(r, "out of memory reading the %llu-byte record at offset %lld", (unsigned long long)len,
                     (long long)rec->offset);
    r->buf = b;
    r->cap = (size_t)len + 1;
  }
  unsigned char *p = r->buf;
  if (r_bytes(r, p, (size_t)len) < 0) return -1;
  p[len] = 0;
  crc = crc_update(crc, p, (size_t)len);
  if (r_check_crc(r, rec->tag, rec->offset, crc) < 0) return -1;
  left = r->size - r->pos;
  switch (rec->tag) {
    case MTL_CKPT_NIL:
      if (len != 0) return wrong_length(r, rec, len, "0");
      break;
    case MTL_CKPT_BOOLEAN:
      if (len != 1) return wrong_length(r, rec, len, "1");
      if (p[0] > 1)
        return r_error(r, "malformed boolean record at offset %lld (value byte is %d, expected 0 or 1)",
                       (long long)rec->offset, p[0]);
      rec->boolean = p[0];
      break;
    case MTL_CKPT_NUMBER: {
      if (len != 8) return wrong_length(r, rec, len, "8");
      uint64_t bits = get_u64(p);
      memcpy(&rec->number, &bits, 8);
      break;
    }
    case MTL_CKPT_INT64:
      if (len != 8) return wrong_length(r, rec, len, "8");
      rec->i64 = (int64_t)get_u64(p);
      break;
    case MTL_CKPT_UINT64:
      if (len != 8) return wrong_length(r, rec, len, "8");
      rec->u64 = get_u64(p);
      break;
    case MTL_CKPT_STRING:
      rec->bytes = (const char *)p;
      rec->len = (size_t)len;
      break;
    case MTL_CKPT_TABLE: {
      if (len != 16) return wrong_length(r, rec, len, "16");
      rec->narray = get_u64(p);
      rec->nhash = get_u64(p + 8);
      /* each entry is at least one record, each record at least 13 bytes */
      uint64_t room = (uint64_t)left / MTL_CKPT_RECORD_OVERHEAD;
      if (rec->narray > room || rec->nhash > room / 2 || rec->narray + 2 * rec->nhash > room)
        return r_error(r, "corrupted table record at offset %lld (%llu array and %llu hash entries cannot fit in the %lld bytes left)",
                       (long long)rec->offset, (unsigned long long)rec->narray,
                       (unsigned long long)rec->nhash, (long long)left);
      break;
    }
    case MTL_CKPT_OBJECT:
      if (len < 1 || len > 255) return wrong_length(r, rec, len, "1 to 255");
      rec->bytes = (const char *)p;
      rec->len = (size_t)len;
      break;
    case MTL_CKPT_TENSOR: /* shorter than its meta */
      return wrong_length(r, rec, len, "at least 72");
    case MTL_CKPT_END: {
      if (len != 8) return wrong_length(r, rec, len, "8");
      uint64_t count = get_u64(p);
      if (count != r->nrecords)
        return r_error(r, "corrupted end record at offset %lld (it counts %llu records, the file has %llu)",
                       (long long)rec->offset, (unsigned long long)count, (unsigned long long)r->nrecords);
      if (left != 0)
        return r_error(r, "%lld unexpected bytes after the end record at offset %lld", (long long)left,
                       (long long)r->pos);
      r->done = 1;
      return 0;
    }
    default:
      return r_error(r, "unknown record type 0x%02x at offset %lld (written by a newer mtl?)", rec->tag,
                     (long long)rec->offset);
  }
  r->nrecords++;
  return 0;
}
