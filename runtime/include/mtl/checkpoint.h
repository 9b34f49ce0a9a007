/* Checkpoint files: a stream of typed, checksummed records (docs/checkpoint.md).
 *
 * The writer appends records to "<path>.tmp.<pid>" and, on commit, makes the
 * file durable and renames it over <path>; a checkpoint under the real name is
 * therefore always complete. The reader checks every record's bounds and
 * checksum before it uses the payload, so a damaged or foreign file gives an
 * error naming the file, the problem and the byte offset.
 *
 * This layer knows records only; the walk over Lua values (tables, objects,
 * cycles) lives in lua/mtl/checkpoint.lua. Like the rest of the core it never
 * aborts: functions return -1 / NULL with mtl_error_message() set.
 */
#ifndef MTL_CHECKPOINT_H
#define MTL_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "mtl/core.h"

#define MTL_CKPT_VERSION 1
#define MTL_CKPT_HEADER_SIZE 20      /* magic 8, version 4, flags 4, crc 4 */
#define MTL_CKPT_RECORD_OVERHEAD 13  /* tag 1, length 8, crc 4 */
#define MTL_CKPT_TENSOR_META 72      /* dtype, ndim, flags, 5 zero bytes, 8 dims */

/* Record type tags (one byte in the file; values are part of the format). */
typedef enum {
  MTL_CKPT_NIL = 0x01,
  MTL_CKPT_BOOLEAN = 0x02,
  MTL_CKPT_NUMBER = 0x03, /* IEEE-754 double */
  MTL_CKPT_STRING = 0x04,
  MTL_CKPT_TABLE = 0x05,  /* u64 array count, u64 hash count; the entries follow */
  MTL_CKPT_TENSOR = 0x06,
  MTL_CKPT_OBJECT = 0x07, /* type name; the state value follows */
  MTL_CKPT_INT64 = 0x08,  /* boxed 64-bit integers (LuaJIT int64_t / uint64_t) */
  MTL_CKPT_UINT64 = 0x09,
  MTL_CKPT_END = 0x7f     /* u64 number of records before it; must be last */
} mtl_ckpt_tag;

const char *mtl_ckpt_tag_name(int tag);

/* ---- writer ---------------------------------------------------------------- */
typedef struct mtl_ckpt_writer mtl_ckpt_writer;

/* Creates "<path>.tmp.<pid>" and writes the header. */
mtl_ckpt_writer *mtl_ckpt_writer_open(const char *path);
int mtl_ckpt_write_nil(mtl_ckpt_writer *w);
int mtl_ckpt_write_boolean(mtl_ckpt_writer *w, int b);
int mtl_ckpt_write_number(mtl_ckpt_writer *w, double x);
int mtl_ckpt_write_int64(mtl_ckpt_writer *w, int64_t x);
int mtl_ckpt_write_uint64(mtl_ckpt_writer *w, uint64_t x);
int mtl_ckpt_write_string(mtl_ckpt_writer *w, const char *s, size_t n);
int mtl_ckpt_write_table(mtl_ckpt_writer *w, uint64_t narray, uint64_t nhash);
/* Any strides; the values are stored contiguously (row-major). */
int mtl_ckpt_write_tensor(mtl_ckpt_writer *w, mtl_tensor *t);
int mtl_ckpt_write_object(mtl_ckpt_writer *w, const char *type_name, size_t n);
/* Writes the end record, flushes, fsyncs, renames over the real path and
 * fsyncs the directory. Frees w, also on error (the temp file is removed). */
int mtl_ckpt_writer_commit(mtl_ckpt_writer *w);
/* Closes and removes the temp file; frees w. Safe on NULL. */
void mtl_ckpt_writer_abort(mtl_ckpt_writer *w);

/* ---- reader ---------------------------------------------------------------- */
typedef struct mtl_ckpt_reader mtl_ckpt_reader;

typedef struct {
  int tag;            /* an mtl_ckpt_tag */
  int64_t offset;     /* byte offset of the record in the file */
  int boolean;
  double number;
  int64_t i64;        /* INT64 */
  uint64_t u64;       /* UINT64 */
  uint64_t narray, nhash;  /* TABLE */
  const char *bytes;  /* STRING payload / OBJECT type name: valid until the next read */
  size_t len;
  mtl_tensor *tensor; /* TENSOR: a new reference the caller owns */
} mtl_ckpt_record;

/* Opens the file and checks its header. */
mtl_ckpt_reader *mtl_ckpt_reader_open(const char *path);
/* Reads the next record (bounds and checksum checked). An END record is
 * accepted only at the end of the file with the right record count. */
int mtl_ckpt_read(mtl_ckpt_reader *r, mtl_ckpt_record *rec);
int64_t mtl_ckpt_reader_offset(const mtl_ckpt_reader *r); /* next record's offset */
const char *mtl_ckpt_reader_path(const mtl_ckpt_reader *r);
void mtl_ckpt_reader_close(mtl_ckpt_reader *r); /* safe on NULL */

#endif
