/* Lua binding of the checkpoint format: two small userdata, a record writer
 * and a record reader, in core.checkpoint_io. The walk over Lua values
 * (tables, objects, cycles, loaders) is lua/mtl/checkpoint.lua.
 *
 *   w = io.writer(path)   w:nil_() w:boolean(b) w:number(x) w:string(s)
 *                         w:int64(s8) w:uint64(s8)   (8 native bytes, from ffi)
 *                         w:table(narray, nhash) w:tensor(t) w:object(type_name)
 *                         w:commit()  w:abort()
 *   r = io.reader(path)   r:read() -> kind, value[, value2]; r:offset(); r:close()
 * Both are closed by __gc if a Lua error skips commit/abort/close (an unfinished
 * writer removes its temporary file).
 */
#include <string.h>

#include "bind.h"
#include "mtl/checkpoint.h"

#define WRITER_MT "mtl.CheckpointWriter"
#define READER_MT "mtl.CheckpointReader"

static mtl_ckpt_writer **check_writer(lua_State *L) {
  mtl_ckpt_writer **w = luaL_checkudata(L, 1, WRITER_MT);
  if (!*w) luaL_error(L, "mtl.save: the checkpoint writer is already closed");
  return w;
}

static mtl_ckpt_reader **check_reader(lua_State *L) {
  mtl_ckpt_reader **r = luaL_checkudata(L, 1, READER_MT);
  if (!*r) luaL_error(L, "mtl.load: the checkpoint reader is already closed");
  return r;
}

/* Raises the core's message as it is: it already names mtl.save/mtl.load and
 * the file, so luaL_error's "chunk:line:" prefix would only clutter it. */
static int ckpt_error(lua_State *L) {
  lua_pushstring(L, mtl_error_message());
  return lua_error(L);
}

static int status(lua_State *L, int rc) {
  if (rc < 0) return ckpt_error(L);
  return 0;
}

/* ---- writer ------------------------------------------------------------------ */
static int l_writer(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  mtl_ckpt_writer **w = lua_newuserdata(L, sizeof *w);
  *w = NULL;
  luaL_getmetatable(L, WRITER_MT);
  lua_setmetatable(L, -2);
  *w = mtl_ckpt_writer_open(path);
  if (!*w) return ckpt_error(L);
  return 1;
}

static int l_w_nil(lua_State *L) { return status(L, mtl_ckpt_write_nil(*check_writer(L))); }

static int l_w_boolean(lua_State *L) {
  return status(L, mtl_ckpt_write_boolean(*check_writer(L), lua_toboolean(L, 2)));
}

static int l_w_number(lua_State *L) {
  mtl_ckpt_writer *w = *check_writer(L);
  return status(L, mtl_ckpt_write_number(w, luaL_checknumber(L, 2)));
}

static int l_w_string(lua_State *L) {
  mtl_ckpt_writer *w = *check_writer(L);
  size_t n;
  const char *s = luaL_checklstring(L, 2, &n);
  return status(L, mtl_ckpt_write_string(w, s, n));
}

/* 64-bit integers arrive as their 8 native bytes (lua/mtl/checkpoint.lua
 * gets them from LuaJIT's FFI). */
static uint64_t check_u64_bytes(lua_State *L, int idx) {
  size_t n;
  const char *s = luaL_checklstring(L, idx, &n);
  if (n != 8) luaL_error(L, "mtl.save: expected 8 bytes for a 64-bit integer, got %d", (int)n);
  uint64_t v;
  memcpy(&v, s, 8);
  return v;
}

static int l_w_int64(lua_State *L) {
  mtl_ckpt_writer *w = *check_writer(L);
  return status(L, mtl_ckpt_write_int64(w, (int64_t)check_u64_bytes(L, 2)));
}

static int l_w_uint64(lua_State *L) {
  mtl_ckpt_writer *w = *check_writer(L);
  return status(L, mtl_ckpt_write_uint64(w, check_u64_bytes(L, 2)));
}

static int l_w_table(lua_State *L) {
  mtl_ckpt_writer *w = *check_writer(L);
  lua_Number na = luaL_checknumber(L, 2), nh = luaL_checknumber(L, 3);
  if (!(na >= 0 && nh >= 0 && na < 9e15 && nh < 9e15))
    return luaL_error(L, "mtl.save: bad table entry counts %f, %f", na, nh);
  return status(L, mtl_ckpt_write_table(w, (uint64_t)na, (uint64_t)nh));
}

static int l_w_tensor(lua_State *L) {
  mtl_ckpt_writer *w = *check_writer(L);
  return status(L, mtl_ckpt_write_tensor(w, bind_check_tensor(L, 2, "mtl.save")));
}

static int l_w_object(lua_State *L) {
  mtl_ckpt_writer *w = *check_writer(L);
  size_t n;
  const char *s = luaL_checklstring(L, 2, &n);
  return status(L, mtl_ckpt_write_object(w, s, n));
}

static int l_w_commit(lua_State *L) {
  mtl_ckpt_writer **w = check_writer(L);
  mtl_ckpt_writer *p = *w;
  *w = NULL; /* commit frees it, also on error */
  return status(L, mtl_ckpt_writer_commit(p));
}

static int l_w_abort(lua_State *L) {
  mtl_ckpt_writer **w = luaL_checkudata(L, 1, WRITER_MT);
  mtl_ckpt_writer_abort(*w);
  *w = NULL;
  return 0;
}

/* ---- reader ------------------------------------------------------------------ */
static int l_reader(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  mtl_ckpt_reader **r = lua_newuserdata(L, sizeof *r);
  *r = NULL;
  luaL_getmetatable(L, READER_MT);
  lua_setmetatable(L, -2);
  lua_newtable(L); /* environment: holds the spare tensor slot (see l_r_read) */
  lua_setfenv(L, -2);
  *r = mtl_ckpt_reader_open(path);
  if (!*r) return ckpt_error(L);
  return 1;
}

/* r:read() -> kind, value: kind is the record type's name; a table gives its
 * array and hash counts, an object its type name, int64/uint64 8 bytes. */
static int l_r_read(lua_State *L) {
  mtl_ckpt_reader *r = *check_reader(L);
  /* A tensor slot must exist before the read, so no error can leak a loaded
   * tensor. One spare slot is kept in the reader's environment table and
   * replaced only when a tensor used it: most records are not tensors. */
  lua_getfenv(L, 1);
  lua_rawgeti(L, -1, 1);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    bind_slot(L);
    lua_pushvalue(L, -1);
    lua_rawseti(L, -3, 1);
  }
  mtl_tensor **slot = lua_touserdata(L, -1);
  mtl_ckpt_record rec;
  if (mtl_ckpt_read(r, &rec) < 0) return ckpt_error(L);
  lua_pushstring(L, mtl_ckpt_tag_name(rec.tag));
  switch (rec.tag) {
    case MTL_CKPT_BOOLEAN: lua_pushboolean(L, rec.boolean); return 2;
    case MTL_CKPT_NUMBER: lua_pushnumber(L, rec.number); return 2;
    case MTL_CKPT_STRING:
    case MTL_CKPT_OBJECT: lua_pushlstring(L, rec.bytes, rec.len); return 2;
    case MTL_CKPT_INT64: lua_pushlstring(L, (const char *)&rec.i64, 8); return 2;
    case MTL_CKPT_UINT64: lua_pushlstring(L, (const char *)&rec.u64, 8); return 2;
    case MTL_CKPT_TABLE:
      lua_pushnumber(L, (lua_Number)rec.narray);
      lua_pushnumber(L, (lua_Number)rec.nhash);
      return 3;
    case MTL_CKPT_TENSOR:
      bind_fill(L, slot, rec.tensor);
      lua_pushnil(L);
      lua_rawseti(L, -4, 1); /* the spare is used up */
      lua_pushvalue(L, -2);  /* the tensor userdata, after the kind */
      return 2;
    default: return 1; /* nil, end */
  }
}

static int l_r_offset(lua_State *L) {
  lua_pushnumber(L, (lua_Number)mtl_ckpt_reader_offset(*check_reader(L)));
  return 1;
}

static int l_r_close(lua_State *L) {
  mtl_ckpt_reader **r = luaL_checkudata(L, 1, READER_MT);
  mtl_ckpt_reader_close(*r);
  *r = NULL;
  return 0;
}

void bind_checkpoint_open(lua_State *L, int mod, int methods) {
  (void)methods;
  static const luaL_Reg writer_methods[] = {
    {"nil_", l_w_nil}, {"boolean", l_w_boolean}, {"number", l_w_number}, {"string", l_w_string},
    {"int64", l_w_int64}, {"uint64", l_w_uint64}, {"table", l_w_table}, {"tensor", l_w_tensor},
    {"object", l_w_object}, {"commit", l_w_commit}, {"abort", l_w_abort}, {NULL, NULL},
  };
  static const luaL_Reg reader_methods[] = {
    {"read", l_r_read}, {"offset", l_r_offset}, {"close", l_r_close}, {NULL, NULL},
  };
  static const luaL_Reg io[] = {{"writer", l_writer}, {"reader", l_reader}, {NULL, NULL}};
  bind_new_class(L, WRITER_MT, writer_methods, l_w_abort, NULL);
  bind_new_class(L, READER_MT, reader_methods, l_r_close, NULL);
  lua_createtable(L, 0, 2);
  luaL_register(L, NULL, io);
  lua_setfield(L, mod, "checkpoint_io");
}
