/* Reader input: files (plain or gzip, through zlib) read in chunks, split into
 * rows (quote-aware), headers, and the shuffle buffer. Memory is the chunk
 * buffer (grown only for a row longer than a chunk) plus the shuffle slots. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reader_internal.h"

int reader_resize(mtl_reader *r, void **p, size_t old_n, size_t n) {
  void *q = realloc(*p, n ? n : 1);
  if (!q) return mtl_error("mtl.data: out of memory: cannot allocate %zu bytes", n);
  *p = q;
  r->bytes = r->bytes - old_n + n;
  if (r->bytes > r->peak_bytes) r->peak_bytes = r->bytes;
  return 0;
}

void reader_quote_text(char *dst, size_t n, const char *s, const char *e) {
  const size_t max_shown = 60;
  size_t k = 0, shown = 0;
  for (const char *p = s; p < e && k + 8 < n; p++, shown++) {
    if (shown == max_shown) {
      k += (size_t)snprintf(dst + k, n - k, "...");
      break;
    }
    unsigned char c = (unsigned char)*p;
    if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
      const char *esc = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\t' ? "\\t" : c == '\r' ? "\\r" : c == '\n' ? "\\n" : NULL;
      if (esc) k += (size_t)snprintf(dst + k, n - k, "%s", esc);
      else k += (size_t)snprintf(dst + k, n - k, "\\x%02x", c);
    } else {
      dst[k++] = (char)c;
    }
  }
  dst[k < n ? k : n - 1] = 0;
}

/* ---- files and chunks ---------------------------------------------------- */
static void close_file(mtl_reader *r) {
  if (r->gz) gzclose(r->gz);
  r->gz = NULL;
  r->text_open = false;
  r->len = r->pos = 0;
}

/* The state of a file's first row: its header (when the reader has one) is
 * still to come, at line 1. */
static int at_file_start(mtl_reader *r) {
  r->file_start = true;
  r->header_pending = r->header;
  r->line = 1;
  return 0;
}

/* In-memory rows: the whole text goes into the chunk buffer at once. */
static int open_text(mtl_reader *r) {
  size_t need = r->text_len > 4096 ? r->text_len : 4096;
  if (!r->buf || r->cap < need) {
    if (reader_resize(r, (void **)&r->buf, r->buf ? r->cap + READER_SLACK : 0, need + READER_SLACK) < 0) return -1;
    memset(r->buf, 0, need + READER_SLACK); /* the fast parsers read a little past a row */
    r->cap = need;
  }
  if (r->text_len) memcpy(r->buf, r->text, r->text_len);
  r->len = r->text_len;
  r->pos = 0;
  r->eof = true;
  r->text_open = true;
  return at_file_start(r);
}

static int open_next_file(mtl_reader *r) {
  r->file++;
  if (r->text_input) return open_text(r);
  const char *path = r->paths[r->file];
  errno = 0;
  r->gz = gzopen(path, "rb");
  if (!r->gz)
    return mtl_error("mtl.data: cannot open '%s': %s", path, errno ? strerror(errno) : "out of memory");
  gzbuffer(r->gz, 1 << 17);
  if (!r->buf) { /* zeroed so that the fast parsers' reads past a row's end are defined */
    if (reader_resize(r, (void **)&r->buf, 0, r->chunk_size + READER_SLACK) < 0) return -1;
    memset(r->buf, 0, r->chunk_size + READER_SLACK);
    r->cap = r->chunk_size;
  }
  r->len = r->pos = 0;
  r->eof = false;
  return at_file_start(r);
}

/* Moves the unread bytes to the front and reads more after them, growing the
 * buffer when one row fills it. Returns the bytes read (0 at the end). */
static int fill(mtl_reader *r) {
  if (r->pos) {
    memmove(r->buf, r->buf + r->pos, r->len - r->pos);
    r->len -= r->pos;
    r->pos = 0;
  }
  if (r->len == r->cap) {
    if (r->cap >= ((size_t)1 << 30))
      return mtl_error("mtl.data: %s:%lld: a row longer than %zu bytes", r->paths[r->file],
                       (long long)r->line, r->cap);
    if (reader_resize(r, (void **)&r->buf, r->cap + READER_SLACK, r->cap * 2 + READER_SLACK) < 0) return -1;
    memset(r->buf + r->cap + READER_SLACK, 0, r->cap);
    r->cap *= 2;
  }
  size_t want = r->cap - r->len;
  if (want > INT_MAX / 2) want = INT_MAX / 2;
  int n = gzread(r->gz, r->buf + r->len, (unsigned)want);
  int err = Z_OK;
  const char *msg = gzerror(r->gz, &err);
  if (n < 0 || (err != Z_OK && err != Z_STREAM_END)) {
    if (err == Z_ERRNO) return mtl_error("mtl.data: cannot read '%s': %s", r->paths[r->file], strerror(errno));
    return mtl_error("mtl.data: cannot read '%s': %s", r->paths[r->file],
                     err == Z_BUF_ERROR ? "unexpected end of file (truncated gzip data)" : msg);
  }
  if (n == 0) r->eof = true;
  r->len += (size_t)n;
  return n;
}

/* The end of a row with a quote in it: the first '\n' outside quoted fields
 * (a quote opens a quoted field only at the field's start, as the parser
 * reads it; "" inside is an escaped quote). NULL if the buffer ends first. */
static const char *quoted_row_end(const char *s, const char *b, char sep, char quote, int64_t *inner) {
  bool field_start = true, in_quotes = false;
  *inner = 0;
  for (const char *p = s; p < b; p++) {
    char c = *p;
    if (in_quotes) {
      if (c == quote) {
        if (p + 1 == b) return NULL; /* "" may continue in the next chunk */
        if (p[1] == quote) p++;
        else in_quotes = false;
      } else if (c == '\n') {
        (*inner)++;
      }
      continue;
    }
    if (c == '\n') return p;
    if (field_start && c == quote) in_quotes = true;
    field_start = c == sep;
  }
  return NULL;
}

static int64_t count_newlines(const char *s, const char *e) {
  int64_t n = 0;
  for (const char *p = s; (p = memchr(p, '\n', (size_t)(e - p))) != NULL; p++) n++;
  return n;
}

int reader_next_raw_row(mtl_reader *r, const char **ps, const char **pe, int *pfile, int64_t *pline) {
  if (r->held) { /* the row that ended the previous batch starts this one */
    r->held = false;
    *ps = r->held_s;
    *pe = r->held_e;
    *pfile = r->held_file;
    *pline = r->held_line;
    return 1;
  }
  for (;;) {
    if (r->stream_done) return 0;
    if (!r->gz && !r->text_open) {
      if (r->file + 1 >= r->npaths) return 0;
      if (open_next_file(r) < 0) return -1;
    }
    char *s = r->buf + r->pos, *b = r->buf + r->len;
    const char *nl = s < b ? memchr(s, '\n', (size_t)(b - s)) : NULL;
    int64_t inner = 0;
    const char *stop = nl ? nl : b;
    if (r->quote && stop > s && memchr(s, r->quote, (size_t)(stop - s)))
      nl = quoted_row_end(s, b, r->sep, r->quote, &inner);
    const char *e;
    if (nl) {
      e = nl;
      r->pos += (size_t)(nl + 1 - s);
    } else if (!r->eof) {
      if (fill(r) < 0) return -1;
      continue;
    } else if (s == b) {
      close_file(r);
      continue;
    } else { /* the last row has no line end */
      e = b;
      inner = count_newlines(s, b);
      r->pos = r->len;
    }
    int64_t line = r->line;
    r->line += 1 + inner;
    if (e > s && e[-1] == '\r') e--;
    if (r->file_start) {
      r->file_start = false;
      if (e - s >= 3 && !memcmp(s, "\xEF\xBB\xBF", 3)) s += 3; /* UTF-8 byte order mark */
    }
    if (r->header_pending) {
      r->header_pending = false;
      if (reader_parse_header(r, s, e) < 0) return -1;
      continue;
    }
    if (e == s) continue; /* blank line */
    if (r->part_count > 1) { /* another part's row: skipped unparsed */
      int64_t p = r->stream_rows++;
      if (r->max_rows && p >= r->max_rows) {
        r->stream_done = true;
        return 0;
      }
      int64_t offset = p % r->part_block;
      if (offset < r->part_lo || offset >= r->part_hi) continue;
      r->row_block = p / r->part_block;
    }
    *ps = s;
    *pe = e;
    *pfile = r->file;
    *pline = line;
    return 1;
  }
}

/* ---- shuffle buffer ------------------------------------------------------ */
static int slot_store(mtl_reader *r, slot *sl, const char *s, const char *e, int file, int64_t line) {
  size_t n = (size_t)(e - s);
  if (n > sl->cap) {
    size_t cap = sl->cap ? sl->cap : 64;
    while (cap < n) cap *= 2;
    if (reader_resize(r, (void **)&sl->text, sl->cap ? sl->cap + READER_SLACK : 0, cap + READER_SLACK) < 0) return -1;
    memset(sl->text + sl->cap, 0, cap - sl->cap + READER_SLACK);
    sl->cap = cap;
  }
  memcpy(sl->text, s, n);
  sl->len = n;
  sl->file = file;
  sl->line = line;
  return 0;
}

static void slot_remove(mtl_reader *r, int64_t j) {
  slot tmp = r->slots[j];
  r->slots[j] = r->slots[r->nslots - 1];
  r->slots[r->nslots - 1] = tmp;
  r->nslots--;
}

/* A shuffle buffer of n rows: it fills with the first n rows; then each row
 * given out is drawn uniformly from the buffer and its slot refilled with the
 * next input row; at the end the buffer drains in random order. */
int reader_next_row(mtl_reader *r, const char **ps, const char **pe, int *pfile, int64_t *pline) {
  if (r->shuffle_n <= 0) return reader_next_raw_row(r, ps, pe, pfile, pline);
  const char *s, *e;
  int file, k;
  int64_t line;
  if (!r->slots) {
    size_t n = (size_t)r->shuffle_n * sizeof(slot);
    if (reader_resize(r, (void **)&r->slots, 0, n) < 0) return -1;
    memset(r->slots, 0, n);
  }
  if (r->pending >= 0) { /* the slot given out last time is free now */
    int64_t j = r->pending;
    r->pending = -1;
    k = r->input_done ? 0 : reader_next_raw_row(r, &s, &e, &file, &line);
    if (k < 0) return -1;
    if (k == 0) {
      r->input_done = true;
      slot_remove(r, j);
    } else if (slot_store(r, &r->slots[j], s, e, file, line) < 0) {
      return -1;
    }
  }
  while (!r->input_done && r->nslots < r->shuffle_n) {
    k = reader_next_raw_row(r, &s, &e, &file, &line);
    if (k < 0) return -1;
    if (k == 0) r->input_done = true;
    else if (slot_store(r, &r->slots[r->nslots++], s, e, file, line) < 0) return -1;
  }
  if (r->nslots == 0) return 0;
  double u;
  if (r->has_shuffle_seed) { /* splitmix64: the reader's own stream */
    uint64_t z = (r->shuffle_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    u = (double)((z ^ (z >> 31)) >> 11) * 0x1.0p-53;
  } else {
    u = mtl_rand_uniform();
  }
  int64_t j = (int64_t)(u * (double)r->nslots);
  if (j >= r->nslots) j = r->nslots - 1;
  slot *sl = &r->slots[j];
  r->pending = j;
  *ps = sl->text;
  *pe = sl->text + sl->len;
  *pfile = sl->file;
  *pline = sl->line;
  return 1;
}

void reader_input_reset(mtl_reader *r) {
  close_file(r);
  r->file = -1;
  r->eof = false;
  r->nslots = 0;
  r->pending = -1;
  r->input_done = false;
  r->stream_rows = 0;
  r->stream_done = false;
  r->held = false;
  r->row_block = 0;
  r->batch_block = -1;
}

int mtl_reader_set_text(mtl_reader *r, const char *text, size_t len) {
  if (!r->text_input) return mtl_error("mtl.data: set_text: the reader reads files, not text");
  if (len && !text) return mtl_error("mtl.data: set_text: no text given");
  if (!r->text || len + 1 > r->text_cap) {
    if (reader_resize(r, (void **)&r->text, r->text ? r->text_cap : 0, len + 1) < 0) return -1;
    r->text_cap = len + 1;
  }
  if (len) memcpy(r->text, text, len);
  r->text[len] = 0;
  r->text_len = len;
  return r->started ? mtl_reader_rewind(r) : 0; /* else the first read starts the pass */
}

void reader_input_free(mtl_reader *r) {
  close_file(r);
  free(r->text);
  r->text = NULL;
  free(r->buf);
  r->buf = NULL;
  if (r->slots)
    for (int64_t i = 0; i < r->shuffle_n; i++) free(r->slots[i].text);
  free(r->slots);
  r->slots = NULL;
}
