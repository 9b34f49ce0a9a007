/* Lua binding of the readers: the mtl.Reader userdata (runtime/src/reader*.c).
 * lua/mtl/data.lua builds the friendly API (mtl.data.csv, read_all, ...) on
 * core.reader_new, which takes one table of options and checks every field. */
#include <stdio.h>
#include <string.h>

#include "bind.h"

#define READER_MT "mtl.Reader"
#define FNAME "mtl.data"

/* Raises the core's message as it is: it names its own position
 * (file:line:column) or starts with "mtl.data:". */
static int raise(lua_State *L) {
  lua_pushstring(L, mtl_error_message());
  return lua_error(L);
}

mtl_reader *bind_test_reader(lua_State *L, int idx) {
  mtl_reader **ud = luaL_testudata(L, idx, READER_MT);
  return ud ? *ud : NULL;
}

static mtl_reader *check_reader(lua_State *L, int idx) {
  mtl_reader **ud = luaL_checkudata(L, idx, READER_MT);
  if (!*ud) luaL_error(L, FNAME ": the reader is closed");
  return *ud;
}

/* ---- reading the options table (at index t) ------------------------------- */
static const char *opt_string(lua_State *L, int t, const char *key, const char *what) {
  lua_getfield(L, t, key);
  const char *s = NULL;
  if (lua_type(L, -1) == LUA_TSTRING) s = lua_tostring(L, -1);
  else if (!lua_isnil(L, -1))
    luaL_error(L, FNAME ": %s '%s' must be a string, got %s", what, key, luaL_typename(L, -1));
  lua_pop(L, 1); /* the string stays alive in the table */
  return s;
}

static char opt_char(lua_State *L, int t, const char *key, const char *what) {
  const char *s = opt_string(L, t, key, what);
  if (!s) return 0;
  lua_getfield(L, t, key);
  size_t n = lua_objlen(L, -1); /* with NUL bytes, which strlen would not count */
  lua_pop(L, 1);
  if (n != 1)
    luaL_error(L, FNAME ": %s '%s' must be one character, got \"%s\" (%d bytes)", what, key, s, (int)n);
  if (s[0] == '\0') luaL_error(L, FNAME ": %s '%s' must be one character other than NUL", what, key);
  return s[0];
}

static bool opt_bool(lua_State *L, int t, const char *key) {
  lua_getfield(L, t, key);
  if (!lua_isnil(L, -1) && !lua_isboolean(L, -1))
    luaL_error(L, FNAME ": option '%s' must be a boolean, got %s", key, luaL_typename(L, -1));
  bool b = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return b;
}

static double opt_number(lua_State *L, int t, const char *key, double def) {
  lua_getfield(L, t, key);
  double v = def;
  if (lua_type(L, -1) == LUA_TNUMBER) v = lua_tonumber(L, -1);
  else if (!lua_isnil(L, -1))
    luaL_error(L, FNAME ": option '%s' must be a number, got %s", key, luaL_typename(L, -1));
  lua_pop(L, 1);
  return v;
}

static int64_t opt_count(lua_State *L, int t, const char *key) {
  double v = opt_number(L, t, key, 0);
  if (!(v >= 0 && v <= 9e15) || v != (double)(int64_t)v) { /* range first: the cast needs it */
    char num[32]; /* lua_pushfstring has no %g */
    snprintf(num, sizeof num, "%.15g", v);
    luaL_error(L, FNAME ": option '%s' must be a whole number in 0..9e15, got %s", key, num);
  }
  return (int64_t)v;
}

/* A choice among two words; returns true for `yes`. */
static bool opt_choice(lua_State *L, int t, const char *key, const char *no, const char *yes) {
  const char *s = opt_string(L, t, key, "option");
  if (!s || !strcmp(s, no)) return false;
  if (!strcmp(s, yes)) return true;
  luaL_error(L, FNAME ": option '%s' must be \"%s\" or \"%s\", got \"%s\"", key, no, yes, s);
  return false;
}

/* A list of strings at t[key], in a userdata array left on the stack (so
 * the GC frees it); the strings live in the options table. */
static const char **opt_string_list(lua_State *L, int t, const char *key, int *n) {
  lua_getfield(L, t, key);
  int tbl = lua_gettop(L);
  *n = 0;
  if (lua_isnil(L, tbl)) {
    lua_pop(L, 1);
    return NULL;
  }
  if (!lua_istable(L, tbl)) luaL_error(L, FNAME ": option '%s' must be a list of strings", key);
  int len = (int)lua_objlen(L, tbl);
  const char **list = lua_newuserdata(L, sizeof(char *) * (size_t)(len ? len : 1));
  for (int i = 0; i < len; i++) {
    lua_rawgeti(L, tbl, i + 1);
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, FNAME ": option '%s' entry %d must be a string, got %s", key, i + 1, luaL_typename(L, -1));
    list[i] = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  lua_remove(L, tbl);
  *n = len;
  return list;
}

static mtl_column_type column_type(lua_State *L, const char *s, const char *name) {
  int t = mtl_column_type_of(s);
  if (t < 0)
    luaL_error(L, FNAME ": column '%s': type must be one of int64, float, string, multi, kv, seq, skip; got %s%s%s",
               name, s ? "\"" : "", s ? s : "none", s ? "\"" : "");
  return (mtl_column_type)t;
}

static void read_column(lua_State *L, int t, int i, mtl_column_spec *c) {
  memset(c, 0, sizeof *c);
  c->name = opt_string(L, t, "name", "column field");
  if (!c->name) luaL_error(L, FNAME ": column %d has no name", i + 1);
  c->type = column_type(L, opt_string(L, t, "type", "column field"), c->name);
  c->default_text = opt_string(L, t, "default", "column field");
  c->separator = opt_char(L, t, "separator", "column field");
  c->kv_separator = opt_char(L, t, "kv_separator", "column field");
  c->string_values = opt_bool(L, t, "string_values");
  c->float_values = opt_bool(L, t, "float_values");
  c->step_separator = opt_char(L, t, "step_separator", "column field");
  c->group = opt_string(L, t, "group", "column field");
  const char *st = opt_string(L, t, "standardize", "column field");
  if (!st) c->standardize = MTL_STANDARDIZE_NONE;
  else if (!strcmp(st, "fit")) c->standardize = MTL_STANDARDIZE_FIT;
  else if (!strcmp(st, "given")) c->standardize = MTL_STANDARDIZE_GIVEN;
  else luaL_error(L, FNAME ": column '%s': standardize must be \"fit\" or \"given\", got \"%s\"", c->name, st);
  c->mean = opt_number(L, t, "mean", 0);
  c->std = opt_number(L, t, "std", 0);
}

static int reader_gc(lua_State *L) {
  mtl_reader **ud = luaL_checkudata(L, 1, READER_MT);
  mtl_reader_free(*ud);
  *ud = NULL;
  return 0;
}

/* core.reader_new{files=..., columns=..., ...}: see lua/mtl/data.lua. */
static int l_reader_new(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  mtl_reader_options o;
  memset(&o, 0, sizeof o);
  o.files = opt_string_list(L, 1, "files", &o.nfiles);
  o.fields = opt_string_list(L, 1, "fields", &o.nfields);
  o.separator = opt_char(L, 1, "separator", "option");
  lua_getfield(L, 1, "quote");
  if (lua_isboolean(L, -1) && !lua_toboolean(L, -1)) o.no_quoting = true;
  lua_pop(L, 1);
  if (!o.no_quoting) o.quote = opt_char(L, 1, "quote", "option");
  o.header = opt_bool(L, 1, "header");
  o.skip_unknown_columns = opt_choice(L, 1, "unknown_columns", "error", "skip");
  o.skip_errors = opt_choice(L, 1, "on_error", "raise", "skip");
  o.batch_size = opt_count(L, 1, "batch_size");
  o.drop_last = opt_bool(L, 1, "drop_last");
  o.max_rows = opt_count(L, 1, "max_rows");
  o.shuffle_buffer = opt_count(L, 1, "shuffle_buffer");
  lua_getfield(L, 1, "shuffle_seed");
  o.has_shuffle_seed = !lua_isnil(L, -1);
  lua_pop(L, 1);
  if (o.has_shuffle_seed) o.shuffle_seed = (uint64_t)opt_count(L, 1, "shuffle_seed");
  o.chunk_size = (size_t)opt_count(L, 1, "chunk_size");
  o.partition_index = opt_count(L, 1, "partition_index"); /* lua/mtl/data.lua checks `partition` */
  o.partition_count = opt_count(L, 1, "partition_count");
  o.partition_block = opt_count(L, 1, "partition_block");
  o.skip_unknown_fields = opt_choice(L, 1, "unknown_fields", "error", "skip");
  o.field_separator = opt_char(L, 1, "field_separator", "option");
  lua_getfield(L, 1, "text"); /* in-memory rows; the string stays alive in the table */
  if (lua_type(L, -1) == LUA_TSTRING) o.text = lua_tolstring(L, -1, &o.text_len);
  else if (!lua_isnil(L, -1)) return luaL_error(L, FNAME ": option 'text' must be a string, got %s", luaL_typename(L, -1));
  lua_pop(L, 1);
  o.text_name = opt_string(L, 1, "text_name", "option");
  lua_getfield(L, 1, "columns");
  if (!lua_istable(L, -1)) return luaL_error(L, FNAME ": option 'columns' must be a list of column tables");
  int cols = lua_gettop(L);
  o.ncolumns = (int)lua_objlen(L, cols);
  mtl_column_spec *specs = lua_newuserdata(L, sizeof *specs * (size_t)(o.ncolumns ? o.ncolumns : 1));
  for (int i = 0; i < o.ncolumns; i++) {
    lua_rawgeti(L, cols, i + 1);
    if (!lua_istable(L, -1)) return luaL_error(L, FNAME ": column %d must be a table, got %s", i + 1, luaL_typename(L, -1));
    read_column(L, lua_gettop(L), i, &specs[i]);
    lua_pop(L, 1);
  }
  o.columns = specs;
  mtl_reader **ud = lua_newuserdata(L, sizeof *ud);
  *ud = NULL;
  luaL_getmetatable(L, READER_MT);
  lua_setmetatable(L, -2);
  if (!(*ud = mtl_reader_new(&o))) return raise(L);
  return 1;
}

static const char *kind_name(mtl_output_kind k) {
  switch (k) {
  case MTL_OUTPUT_IDS: return "ids";
  case MTL_OUTPUT_DENSE: return "dense";
  case MTL_OUTPUT_BAG: return "bag";
  case MTL_OUTPUT_SEQ: return "seq";
  default: return "weighted_bag";
  }
}

/* Pushes a new tensor slot and stores it in the table on the stack as key. */
static mtl_tensor **field_slot(lua_State *L, const char *key) {
  mtl_tensor **slot = bind_slot(L);
  lua_setfield(L, -2, key);
  return slot;
}

/* r:next() -> rows, {name = tensor | {ids=, offsets=, weights=} | {ids= or
 * values=, offsets=, steps=}} or nil at the end of the pass. Every tensor
 * slot is pushed before reading, so an error cannot leak a batch. */
static int l_next(lua_State *L) {
  mtl_reader *r = check_reader(L, 1);
  int n = mtl_reader_num_outputs(r);
  mtl_batch_output *out = lua_newuserdata(L, sizeof *out * (size_t)(n ? n : 1));
  mtl_tensor ***slots = lua_newuserdata(L, sizeof *slots * 4 * (size_t)(n ? n : 1));
  lua_createtable(L, 0, n);
  int tbl = lua_gettop(L);
  for (int i = 0; i < n; i++) {
    mtl_output_kind k = mtl_reader_output_kind(r, i);
    slots[4 * i + 1] = slots[4 * i + 2] = slots[4 * i + 3] = NULL;
    if (k == MTL_OUTPUT_IDS || k == MTL_OUTPUT_DENSE) {
      slots[4 * i] = bind_slot(L);
    } else {
      lua_createtable(L, 0, 3);
      slots[4 * i] = field_slot(L, k == MTL_OUTPUT_SEQ && mtl_reader_output_float(r, i) ? "values" : "ids");
      slots[4 * i + 1] = field_slot(L, "offsets");
      if (k == MTL_OUTPUT_WEIGHTED_BAG) slots[4 * i + 2] = field_slot(L, "weights");
      if (k == MTL_OUTPUT_SEQ) slots[4 * i + 3] = field_slot(L, "steps");
    }
    lua_setfield(L, tbl, mtl_reader_output_name(r, i));
  }
  int64_t rows = mtl_reader_next(r, out);
  if (rows < 0) return raise(L);
  if (rows == 0) {
    lua_pushnil(L);
    return 1;
  }
  for (int i = 0; i < n; i++) {
    *slots[4 * i] = out[i].values;
    if (slots[4 * i + 1]) *slots[4 * i + 1] = out[i].offsets;
    if (slots[4 * i + 2]) *slots[4 * i + 2] = out[i].weights;
    if (slots[4 * i + 3]) *slots[4 * i + 3] = out[i].steps;
  }
  /* heap tracking: let the GC see the new tensors' memory */
  if (n > 0) bind_fill(L, slots[0], out[0].values);
  lua_pushnumber(L, (lua_Number)rows);
  lua_pushvalue(L, tbl);
  return 2;
}

/* r:set_text(s): new in-memory rows (a reader created with text) and a new pass. */
static int l_set_text(lua_State *L) {
  mtl_reader *r = check_reader(L, 1);
  size_t n;
  const char *s = luaL_checklstring(L, 2, &n);
  if (mtl_reader_set_text(r, s, n) < 0) return raise(L);
  return 0;
}

static int l_rewind(lua_State *L) {
  mtl_reader_rewind(check_reader(L, 1));
  return 0;
}

static int l_skipped(lua_State *L) {
  lua_pushnumber(L, (lua_Number)mtl_reader_skipped(check_reader(L, 1)));
  return 1;
}

static int l_messages(lua_State *L) {
  mtl_reader *r = check_reader(L, 1);
  int n = mtl_reader_num_messages(r);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushstring(L, mtl_reader_message(r, i));
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* r:outputs() -> list of {name=, kind=, width=, columns={schema indices}} */
static int l_outputs(lua_State *L) {
  mtl_reader *r = check_reader(L, 1);
  int n = mtl_reader_num_outputs(r);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_createtable(L, 0, 4);
    lua_pushstring(L, mtl_reader_output_name(r, i));
    lua_setfield(L, -2, "name");
    mtl_output_kind k = mtl_reader_output_kind(r, i);
    lua_pushstring(L, kind_name(k));
    lua_setfield(L, -2, "kind");
    if (k == MTL_OUTPUT_DENSE) {
      int w = mtl_reader_output_width(r, i);
      lua_pushinteger(L, w);
      lua_setfield(L, -2, "width");
      lua_createtable(L, w, 0);
      for (int j = 0; j < w; j++) {
        lua_pushinteger(L, mtl_reader_output_column(r, i, j) + 1);
        lua_rawseti(L, -2, j + 1);
      }
      lua_setfield(L, -2, "columns");
    }
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* r:stats(column_index) -> mean, std (nil when not standardized) */
static int l_stats(lua_State *L) {
  mtl_reader *r = check_reader(L, 1);
  lua_Integer c = luaL_checkinteger(L, 2);
  double mean, std;
  if (mtl_reader_column_stats(r, (int)c - 1, &mean, &std) < 0) return 0;
  lua_pushnumber(L, mean);
  lua_pushnumber(L, std);
  return 2;
}

static int l_peak_bytes(lua_State *L) {
  lua_pushnumber(L, (lua_Number)mtl_reader_peak_bytes(check_reader(L, 1)));
  return 1;
}

static int l_tostring(lua_State *L) {
  mtl_reader **ud = luaL_checkudata(L, 1, READER_MT);
  if (!*ud) lua_pushstring(L, "mtl.Reader (closed)");
  else lua_pushfstring(L, "mtl.Reader (%d outputs)", mtl_reader_num_outputs(*ud));
  return 1;
}

/* core.hash_strings("s") -> 0-dim int64 tensor; core.hash_strings{"a", "b"} -> int64 [2]:
 * the ids a string column gives those values. */
static int l_hash_strings(lua_State *L) {
  if (lua_type(L, 1) == LUA_TSTRING) {
    size_t n;
    const char *s = lua_tolstring(L, 1, &n);
    mtl_tensor **slot = bind_slot(L);
    mtl_tensor *t = mtl_tensor_new(MTL_I64, 0, NULL);
    if (t) mtl_i64(t)[0] = mtl_hash_string(s, n);
    return bind_fill(L, slot, t);
  }
  if (!lua_istable(L, 1))
    return luaL_error(L, FNAME ".hash: expected a string or a list of strings, got %s", luaL_typename(L, 1));
  int64_t n = (int64_t)lua_objlen(L, 1);
  for (int64_t i = 0; i < n; i++) {
    lua_rawgeti(L, 1, (int)i + 1);
    if (lua_type(L, -1) != LUA_TSTRING)
      return luaL_error(L, FNAME ".hash: entry %d must be a string, got %s", (int)i + 1, luaL_typename(L, -1));
    lua_pop(L, 1);
  }
  mtl_tensor **slot = bind_slot(L);
  mtl_tensor *t = mtl_tensor_new(MTL_I64, 1, &n);
  if (t)
    for (int64_t i = 0; i < n; i++) {
      size_t len;
      lua_rawgeti(L, 1, (int)i + 1);
      const char *s = lua_tolstring(L, -1, &len);
      mtl_i64(t)[i] = mtl_hash_string(s, len);
      lua_pop(L, 1);
    }
  return bind_fill(L, slot, t);
}

void bind_io_open(lua_State *L, int mod, int methods) {
  (void)methods;
  static const luaL_Reg meths[] = {
    {"next", l_next}, {"rewind", l_rewind}, {"set_text", l_set_text}, {"skipped", l_skipped}, {"messages", l_messages},
    {"outputs", l_outputs}, {"stats", l_stats}, {"peak_bytes", l_peak_bytes}, {"close", reader_gc},
    {NULL, NULL},
  };
  bind_new_class(L, READER_MT, meths, reader_gc, l_tostring);
  bind_register(L, mod, 0, "reader_new", l_reader_new);
  bind_register(L, mod, 0, "hash_strings", l_hash_strings);
}
