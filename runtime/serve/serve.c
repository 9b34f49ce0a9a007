/* The serving library: loading a model directory into a pool of embedded
 * LuaJIT states that share one copy of the weights, and scoring rows given as
 * text (docs/serving.md). Typed columns are in serve_columns.c.
 *
 * Each state runs lua/mtl/serve.lua's Scorer: the same feature columns and
 * model forward as training, in eval mode. The first state reads the weights;
 * every other state builds the model from the config alone, is handed the
 * first state's embedding tables while its features are built, and then has
 * its parameter tensors replaced by the first state's (bind_replace_tensor:
 * this file goes through the binding's functions, never its userdata).
 * Scoring only reads them; the core's reference counts are atomic and its
 * gradient mode is per thread, so states score in parallel. */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lualib.h>

#include "bind.h"
#include "bind_embedding.h"
#include "serve_internal.h"

#ifndef MTL_SERVE_DEFAULT_ROOT
#define MTL_SERVE_DEFAULT_ROOT "."
#endif
/* Where an installed library finds the installed Lua modules, relative to
 * its own directory (CMakeLists.txt, "install"; e.g. "../share/lua/5.1"). */
#ifndef MTL_SERVE_LUADIR_FROM_LIB
#define MTL_SERVE_LUADIR_FROM_LIB "../share/lua/5.1"
#endif

/* States are created one at a time in the process: building a model draws
 * initial weights from the core's one random stream (saved and restored
 * around it, so a host's own stream is not disturbed). */
static pthread_mutex_t create_lock = PTHREAD_MUTEX_INITIALIZER;

int serve_error(char *err, size_t errlen, const char *fname, const char *fmt, ...) {
  if (!err || errlen == 0) return -1;
  int k = snprintf(err, errlen, "%s: ", fname);
  if (k < 0 || (size_t)k >= errlen) return -1;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err + k, errlen - (size_t)k, fmt, ap);
  va_end(ap);
  return -1;
}

static char *dup_str(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

/* ---- opening a state ----------------------------------------------------------- */
typedef struct open_args {
  mtl_model *m;
  serve_state *s;
  bool first;
} open_args;

/* ---- plain values between states ---------------------------------------------- */
static void value_free(serve_value *v) {
  if (!v) return;
  free(v->string);
  for (int i = 0; i < v->n; i++) {
    value_free(&v->keys[i]);
    value_free(&v->values[i]);
  }
  free(v->keys);
  free(v->values);
  memset(v, 0, sizeof *v);
}

/* Copies the value at idx into v (inside a protected call: raises on what
 * cannot be copied, leaving v complete enough for value_free). */
static void value_capture(lua_State *L, int idx, serve_value *v, const char *where, int depth) {
  int t = lua_type(L, idx);
  memset(v, 0, sizeof *v);
  if (depth > 100) luaL_error(L, "%s: nested too deeply", where);
  v->type = t;
  switch (t) {
    case LUA_TNIL: return;
    case LUA_TBOOLEAN: v->number = lua_toboolean(L, idx); return;
    case LUA_TNUMBER: v->number = lua_tonumber(L, idx); return;
    case LUA_TSTRING: {
      const char *s = lua_tolstring(L, idx, &v->len);
      if (!(v->string = malloc(v->len + 1))) luaL_error(L, "out of memory");
      memcpy(v->string, s, v->len + 1);
      return;
    }
    case LUA_TTABLE: break;
    default: v->type = LUA_TNIL; luaL_error(L, "%s holds a %s, which a served model cannot copy", where, lua_typename(L, t));
  }
  if (idx < 0) idx = lua_gettop(L) + idx + 1;
  int n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    n++;
    lua_pop(L, 1);
  }
  v->keys = calloc((size_t)(n ? n : 1), sizeof *v->keys);
  v->values = calloc((size_t)(n ? n : 1), sizeof *v->values);
  if (!v->keys || !v->values) luaL_error(L, "out of memory");
  lua_pushnil(L);
  while (lua_next(L, idx) && v->n < n) {
    int k = v->n++;
    value_capture(L, -2, &v->keys[k], where, depth + 1);
    value_capture(L, -1, &v->values[k], where, depth + 1);
    lua_pop(L, 1);
  }
}

static void value_push(lua_State *L, const serve_value *v) {
  switch (v->type) {
    case LUA_TBOOLEAN: lua_pushboolean(L, v->number != 0); return;
    case LUA_TNUMBER: lua_pushnumber(L, v->number); return;
    case LUA_TSTRING: lua_pushlstring(L, v->string, v->len); return;
    case LUA_TTABLE: break;
    default: lua_pushnil(L); return;
  }
  lua_createtable(L, 0, v->n);
  for (int i = 0; i < v->n; i++) {
    value_push(L, &v->keys[i]);
    value_push(L, &v->values[i]);
    lua_rawset(L, -3);
  }
}

static char *lua_dup(lua_State *L, int idx, const char *what) {
  if (lua_type(L, idx) != LUA_TSTRING) luaL_error(L, "the model's %s is not a string", what);
  char *d = dup_str(lua_tostring(L, idx));
  if (!d) luaL_error(L, "out of memory");
  return d;
}

static void *zalloc(lua_State *L, size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size);
  if (!p) luaL_error(L, "out of memory");
  return p;
}

static mtl_column_type column_type_of(lua_State *L, const char *s) {
  int t = mtl_column_type_of(s);
  if (t < 0) luaL_error(L, "unknown column type '%s'", s);
  return (mtl_column_type)t;
}

/* Calls scorer:method() with nret results. */
static void call_method(lua_State *L, int sc, const char *method, int nret) {
  lua_getfield(L, sc, method);
  lua_pushvalue(L, sc);
  lua_call(L, 1, nret);
}

/* From the first state: outputs, schema, and the weights to share. */
static void record_model(lua_State *L, int sc, mtl_model *m) {
  lua_getfield(L, sc, "outputs");
  int n = (int)lua_objlen(L, -1);
  m->outputs = zalloc(L, (size_t)n, sizeof(char *));
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, -1, i + 1);
    m->outputs[i] = lua_dup(L, -1, "output name");
    m->noutputs = i + 1;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  m->sep = ',';
  m->quote = '"';
  lua_getfield(L, sc, "cfg");
  lua_getfield(L, -1, "data");
  lua_getfield(L, -1, "separator");
  if (lua_type(L, -1) == LUA_TSTRING && lua_objlen(L, -1) == 1) m->sep = lua_tostring(L, -1)[0];
  lua_getfield(L, -2, "quote");
  if (lua_isboolean(L, -1) && !lua_toboolean(L, -1)) m->quote = 0;
  else if (lua_type(L, -1) == LUA_TSTRING && lua_objlen(L, -1) == 1) m->quote = lua_tostring(L, -1)[0];
  lua_pop(L, 4);
  lua_getfield(L, sc, "num_tasks");
  m->ntasks = (int)lua_tointeger(L, -1);
  if (m->ntasks > m->noutputs) m->ntasks = m->noutputs;
  lua_pop(L, 1);

  lua_getfield(L, sc, "columns");
  n = (int)lua_objlen(L, -1);
  m->columns = zalloc(L, (size_t)n, sizeof *m->columns);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, -1, i + 1);
    int c = lua_gettop(L);
    serve_column *col = &m->columns[i];
    m->ncolumns = i + 1;
    lua_getfield(L, c, "name");
    col->name = lua_dup(L, -1, "column name");
    lua_getfield(L, c, "type");
    col->type = column_type_of(L, luaL_checkstring(L, -1));
    lua_getfield(L, c, "default");
    if (lua_type(L, -1) == LUA_TNUMBER) { /* as mtl.data writes a number default */
      char buf[64];
      snprintf(buf, sizeof buf, "%.17g", lua_tonumber(L, -1));
      lua_pushstring(L, buf);
      lua_replace(L, -2);
    }
    if (!lua_isnil(L, -1)) col->default_text = lua_dup(L, -1, "column default");
    lua_getfield(L, c, "values");
    col->string_values = lua_type(L, -1) == LUA_TSTRING && !strcmp(lua_tostring(L, -1), "string");
    lua_getfield(L, c, "group");
    col->grouped = !lua_isnil(L, -1);
    lua_getfield(L, c, "standardize");
    if (lua_istable(L, -1)) {
      col->standardized = true;
      lua_getfield(L, -1, "mean");
      lua_getfield(L, -2, "std");
      col->mean = lua_tonumber(L, -2);
      col->std = lua_tonumber(L, -1);
      lua_pop(L, 2);
    }
    lua_settop(L, c - 1);
  }
  lua_pop(L, 1);

  lua_getfield(L, sc, "rank_columns");
  n = (int)lua_objlen(L, -1);
  m->rank_columns = zalloc(L, (size_t)n, sizeof *m->rank_columns);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, -1, i + 1);
    const char *name = lua_tostring(L, -1);
    int ci = name ? mtl_model_column_index(m, name) : -1;
    if (ci < 0) luaL_error(L, "ranking column '%s' is not in the schema", name ? name : "?");
    m->rank_columns[m->nrank_columns++] = ci;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);

  call_method(L, sc, "table_list", 1);
  n = (int)lua_objlen(L, -1);
  m->tables = zalloc(L, (size_t)n, sizeof *m->tables);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, -1, i + 1);
    mtl_embedding *t = bind_test_embedding(L, -1);
    if (!t) luaL_error(L, "embedding table %d is not an mtl.Embedding", i + 1);
    mtl_embedding_retain(t);
    m->tables[i] = t;
    m->ntables = i + 1;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);

  call_method(L, sc, "parameter_list", 2); /* names, tensors */
  n = (int)lua_objlen(L, -2);
  m->param_names = zalloc(L, (size_t)n, sizeof(char *));
  m->params = zalloc(L, (size_t)n, sizeof *m->params);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, -2, i + 1);
    lua_rawgeti(L, -2, i + 1);
    mtl_tensor *t = bind_test_tensor(L, -1);
    if (!t) luaL_error(L, "parameter %d is not a tensor", i + 1);
    m->param_names[i] = lua_dup(L, -2, "parameter name");
    mtl_tensor_retain(t);
    m->params[i] = t;
    m->nparams = i + 1;
    lua_pop(L, 2);
  }
  lua_pop(L, 2);
}

/* Another state: its parameters now hold the first state's tensors (its
 * own, freshly initialized ones are released). */
static void share_parameters(lua_State *L, int sc, const mtl_model *m) {
  call_method(L, sc, "table_list", 1);
  int n = (int)lua_objlen(L, -1);
  if (n != m->ntables) luaL_error(L, "the state built %d embedding tables, the model has %d", n, m->ntables);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, -1, i + 1);
    if (bind_test_embedding(L, -1) != m->tables[i]) luaL_error(L, "embedding table %d is not the shared one", i + 1);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  call_method(L, sc, "parameter_list", 2);
  n = (int)lua_objlen(L, -2);
  if (n != m->nparams) luaL_error(L, "the state built %d parameters, the model has %d", n, m->nparams);
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, -2, i + 1);
    lua_rawgeti(L, -2, i + 1);
    const char *name = lua_tostring(L, -2);
    if (!name || strcmp(name, m->param_names[i]) != 0 || bind_replace_tensor(L, -1, m->params[i]) < 0)
      luaL_error(L, "parameter %d ('%s') does not match the model's '%s'", i + 1, name ? name : "?",
                 m->param_names[i]);
    lua_pop(L, 2);
  }
  lua_pop(L, 2);
}

/* The Scorer's reader userdata (field `field` of the Scorer at sc), or NULL. */
static mtl_reader *scorer_reader(lua_State *L, int sc, const char *field) {
  lua_getfield(L, sc, field);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return NULL;
  }
  lua_getfield(L, -1, "_core");
  mtl_reader *rd = bind_test_reader(L, -1);
  if (!rd) luaL_error(L, "the scorer's %s is not an open mtl.Reader", field);
  lua_pop(L, 2);
  return rd;
}

static int open_state(lua_State *L) {
  open_args *a = lua_touserdata(L, 1);
  mtl_model *m = a->m;
  luaL_openlibs(L);
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "preload");
  lua_pushcfunction(L, luaopen_mtl_core); /* this library's core, never a second copy from core.so */
  lua_setfield(L, -2, "mtl.core");
  lua_pop(L, 1);
  /* a source tree (root/lua/mtl, root/models) or an installed Lua directory (root/mtl, root/models) */
  lua_pushfstring(L, "%s/lua/?.lua;%s/lua/?/init.lua;%s/?.lua;%s/?/init.lua;", m->root, m->root, m->root, m->root);
  lua_getfield(L, -2, "path");
  lua_concat(L, 2);
  lua_setfield(L, -2, "path");
  lua_settop(L, 1);
  lua_getglobal(L, "require");
  lua_pushstring(L, "mtl.serve");
  lua_call(L, 1, 1);
  int serve = lua_gettop(L);
  if (a->first) { /* serve.load(dir) */
    lua_getfield(L, serve, "load");
    lua_pushstring(L, m->dir);
    if (m->precision) lua_pushstring(L, m->precision);
    else lua_pushnil(L);
    lua_call(L, 2, 1);
  } else { /* serve.build(cfg, fitted, tables) */
    lua_getfield(L, serve, "build");
    value_push(L, &m->config);
    value_push(L, &m->fitted);
    lua_createtable(L, m->ntables, 0);
    for (int i = 0; i < m->ntables; i++) {
      mtl_embedding_retain(m->tables[i]);
      bind_push_embedding(L, m->tables[i]);
      lua_rawseti(L, -2, i + 1);
    }
    lua_call(L, 3, 1);
  }
  int sc = lua_gettop(L);
  a->s->reader = scorer_reader(L, sc, "reader");
  a->s->rank_reader = scorer_reader(L, sc, "rank_reader");
  if (!a->s->reader) luaL_error(L, "the scorer has no reader");
  if (a->first) {
    record_model(L, sc, m);
    lua_getfield(L, sc, "precision");
    snprintf(m->effective, sizeof m->effective, "%s", lua_isstring(L, -1) ? lua_tostring(L, -1) : "fp32");
    lua_pop(L, 1);
    lua_getfield(L, sc, "cfg");
    value_capture(L, -1, &m->config, "the config", 0);
    lua_getfield(L, sc, "features");
    lua_getfield(L, -1, "fitted");
    value_capture(L, -1, &m->fitted, "the fitted transforms", 0);
    lua_pop(L, 3);
  } else {
    share_parameters(L, sc, m);
  }
  lua_pushvalue(L, sc);
  a->s->scorer_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

static void state_free(serve_state *s) {
  if (!s) return;
  if (s->L) lua_close(s->L);
  free(s->text);
  free(s);
}

/* msg without a leading Lua source position ("/x/lua/mtl/features.lua:436: "):
 * the caller of the C API has no use for the library's own file names. */
static const char *strip_position(const char *msg) {
  const char *p = strstr(msg, ".lua:");
  if (!p || memchr(msg, ' ', (size_t)(p - msg))) return msg;
  p += 5;
  if (*p < '0' || *p > '9') return msg;
  while (*p >= '0' && *p <= '9') p++;
  return p[0] == ':' && p[1] == ' ' ? p + 2 : msg;
}

/* Copies the Lua error at the top of L into err. */
static int lua_failure(lua_State *L, char *err, size_t errlen, const char *fname) {
  const char *msg = lua_type(L, -1) == LUA_TSTRING ? strip_position(lua_tostring(L, -1)) : "unknown error (not a string)";
  serve_error(err, errlen, fname, "%s", msg);
  lua_settop(L, 0);
  return -1;
}

static serve_state *state_new(mtl_model *m, bool first, char *err, size_t errlen, const char *fname) {
  serve_state *s = calloc(1, sizeof *s);
  if (!s) {
    serve_error(err, errlen, fname, "out of memory");
    return NULL;
  }
  if (!(s->L = luaL_newstate())) {
    free(s);
    serve_error(err, errlen, fname, "cannot create a Lua state (out of memory)");
    return NULL;
  }
  open_args a = {m, s, first};
  pthread_mutex_lock(&create_lock);
  uint64_t rng[4];
  mtl_rand_get_state(rng);
  bool grad = mtl_grad_enabled();
  mtl_set_grad_enabled(false);
  int rc = lua_cpcall(s->L, open_state, &a);
  mtl_set_grad_enabled(grad);
  mtl_rand_set_state(rng);
  pthread_mutex_unlock(&create_lock);
  if (rc != 0) {
    lua_failure(s->L, err, errlen, fname);
    state_free(s);
    return NULL;
  }
  lua_settop(s->L, 0);
  lua_gc(s->L, LUA_GCCOLLECT, 0); /* the initial weights a shared state replaced */
  return s;
}

/* ---- the pool ---------------------------------------------------------------- */
/* A free state, creating one when every state is busy and fewer than
 * max_states exist; otherwise waits for one. */
static serve_state *acquire(mtl_model *m, char *err, size_t errlen, const char *fname) {
  pthread_mutex_lock(&m->lock);
  for (;;) {
    if (m->nidle > 0) {
      serve_state *s = m->idle[--m->nidle];
      pthread_mutex_unlock(&m->lock);
      return s;
    }
    if (m->nstates + m->creating < m->max_states) {
      m->creating++;
      pthread_mutex_unlock(&m->lock);
      serve_state *s = state_new(m, false, err, errlen, fname);
      pthread_mutex_lock(&m->lock);
      m->creating--;
      if (s) {
        m->states[m->nstates++] = s;
        pthread_mutex_unlock(&m->lock);
        return s;
      }
      if (m->nstates == 0) {
        pthread_mutex_unlock(&m->lock);
        return NULL;
      }
      /* no more states (e.g. out of memory): the pool stops growing and
       * this caller takes one of the others (one may be idle by now) */
      m->max_states = m->nstates;
      if (err && errlen) err[0] = 0;
      continue;
    }
    pthread_cond_wait(&m->cond, &m->lock);
  }
}

static void release(mtl_model *m, serve_state *s) {
  pthread_mutex_lock(&m->lock);
  m->idle[m->nidle++] = s;
  pthread_cond_signal(&m->cond);
  pthread_mutex_unlock(&m->lock);
}

/* ---- loading -------------------------------------------------------------------- */
void mtl_model_free(mtl_model *m) {
  if (!m) return;
  for (int i = 0; i < m->nstates; i++) state_free(m->states[i]);
  for (int i = 0; i < m->nparams; i++) {
    mtl_tensor_release(m->params[i]);
    free(m->param_names[i]);
  }
  for (int i = 0; i < m->ntables; i++) mtl_embedding_release(m->tables[i]);
  for (int i = 0; i < m->noutputs; i++) free(m->outputs[i]);
  for (int i = 0; i < m->ncolumns; i++) {
    free(m->columns[i].name);
    free(m->columns[i].default_text);
  }
  value_free(&m->config);
  value_free(&m->fitted);
  free(m->rank_columns);
  free(m->params);
  free(m->param_names);
  free(m->tables);
  free(m->outputs);
  free(m->columns);
  free(m->states);
  free(m->idle);
  free(m->dir);
  free(m->root);
  free(m->precision);
  pthread_mutex_destroy(&m->lock);
  pthread_cond_destroy(&m->cond);
  free(m);
}

/* Whether root holds mtl's Lua code: a source tree (root/lua/mtl/serve.lua)
 * or an installed Lua directory (root/mtl/serve.lua, as share/lua/5.1). */
static int has_lua_code(const char *root) {
  char probe[PATH_MAX + 64];
  int k = snprintf(probe, sizeof probe, "%s/lua/mtl/serve.lua", root);
  if (k > 0 && (size_t)k < sizeof probe && access(probe, R_OK) == 0) return 1;
  k = snprintf(probe, sizeof probe, "%s/mtl/serve.lua", root);
  return k > 0 && (size_t)k < sizeof probe && access(probe, R_OK) == 0;
}

/* The installed Lua directory relative to this library's own file (found
 * with dladdr), so that an installed tree works wherever it is moved. */
static int root_beside_library(char *buf, size_t n) {
  Dl_info info;
  char lib[PATH_MAX];
  if (!dladdr((void *)&has_lua_code, &info) || !info.dli_fname || !realpath(info.dli_fname, lib)) return -1;
  char *slash = strrchr(lib, '/');
  if (!slash) return -1;
  *slash = 0;
  int k = snprintf(buf, n, "%s/%s", lib, MTL_SERVE_LUADIR_FROM_LIB);
  return k > 0 && (size_t)k < n ? 0 : -1;
}

mtl_model *mtl_model_load(const char *dir, char *err, size_t errlen) {
  return mtl_model_load_opts(dir, NULL, err, errlen);
}

mtl_model *mtl_model_load_opts(const char *dir, const mtl_model_options *opts, char *err, size_t errlen) {
  const char *fn = "mtl_model_load";
  if (err && errlen) err[0] = 0;
  if (!dir || !*dir) {
    serve_error(err, errlen, fn, "no model directory given");
    return NULL;
  }
  struct stat st;
  if (stat(dir, &st) != 0) {
    serve_error(err, errlen, fn, "cannot open the model directory '%s': %s", dir, strerror(errno));
    return NULL;
  }
  if (!S_ISDIR(st.st_mode)) {
    serve_error(err, errlen, fn, "'%s' is not a directory (expected an exported model directory)", dir);
    return NULL;
  }
  char beside[PATH_MAX + 64];
  const char *root = opts && opts->lua_root ? opts->lua_root : getenv("MTL_HOME");
  if (root && *root) {
    if (!has_lua_code(root)) {
      serve_error(err, errlen, fn, "cannot find mtl's Lua code in '%s' (neither %s/lua/mtl/serve.lua nor "
                  "%s/mtl/serve.lua is readable; set MTL_HOME or mtl_model_options.lua_root to an mtl source tree "
                  "or installed Lua directory)", root, root, root);
      return NULL;
    }
  } else if (root_beside_library(beside, sizeof beside) == 0 && has_lua_code(beside)) {
    root = beside; /* an installed library: the installed Lua modules */
  } else if (has_lua_code(MTL_SERVE_DEFAULT_ROOT)) {
    root = MTL_SERVE_DEFAULT_ROOT; /* the build tree's library: the source tree it was built from */
  } else {
    serve_error(err, errlen, fn, "cannot find mtl's Lua code: neither beside the library (%s) nor in the source "
                "tree '%s' (set MTL_HOME or mtl_model_options.lua_root to an mtl source tree or installed Lua "
                "directory)", MTL_SERVE_LUADIR_FROM_LIB, MTL_SERVE_DEFAULT_ROOT);
    return NULL;
  }
  int max_states = opts && opts->max_states > 0 ? opts->max_states : (int)sysconf(_SC_NPROCESSORS_ONLN);
  if (max_states < 1) max_states = 1;
  if (max_states > 1024) max_states = 1024;
  int initial = opts && opts->initial_states > 0 ? opts->initial_states : 1;
  if (initial > max_states) initial = max_states;
  mtl_model *m = calloc(1, sizeof *m);
  if (!m) {
    serve_error(err, errlen, fn, "out of memory");
    return NULL;
  }
  pthread_mutex_init(&m->lock, NULL);
  pthread_cond_init(&m->cond, NULL);
  m->max_states = max_states;
  m->dir = dup_str(dir);
  m->root = dup_str(root);
  m->precision = opts && opts->precision ? dup_str(opts->precision) : NULL;
  m->states = calloc((size_t)max_states, sizeof *m->states);
  m->idle = calloc((size_t)max_states, sizeof *m->idle);
  if (!m->dir || !m->root || !m->states || !m->idle || (opts && opts->precision && !m->precision)) {
    serve_error(err, errlen, fn, "out of memory");
    mtl_model_free(m);
    return NULL;
  }
  for (int i = 0; i < initial; i++) {
    serve_state *s = state_new(m, i == 0, err, errlen, fn);
    if (!s) {
      mtl_model_free(m);
      return NULL;
    }
    m->states[m->nstates++] = s;
    m->idle[m->nidle++] = s;
  }
  return m;
}

/* ---- accessors ---------------------------------------------------------------------- */
int mtl_model_num_outputs(const mtl_model *m) { return m ? m->noutputs : 0; }
const char *mtl_model_precision(const mtl_model *m) { return m ? m->effective : NULL; }
const char *mtl_model_output_name(const mtl_model *m, int i) {
  return m && i >= 0 && i < m->noutputs ? m->outputs[i] : NULL;
}
int mtl_model_output_index(const mtl_model *m, const char *name) {
  for (int i = 0; m && name && i < m->noutputs; i++)
    if (!strcmp(m->outputs[i], name)) return i;
  return -1;
}
int mtl_model_num_tasks(const mtl_model *m) { return m ? m->ntasks : 0; }
const char *mtl_model_task_name(const mtl_model *m, int i) {
  return m && i >= 0 && i < m->ntasks ? m->outputs[i] : NULL;
}
int mtl_model_num_columns(const mtl_model *m) { return m ? m->ncolumns : 0; }
const char *mtl_model_column_name(const mtl_model *m, int i) {
  return m && i >= 0 && i < m->ncolumns ? m->columns[i].name : NULL;
}
const char *mtl_model_column_type(const mtl_model *m, int i) {
  return m && i >= 0 && i < m->ncolumns ? mtl_column_type_name(m->columns[i].type) : NULL;
}
int mtl_model_column_index(const mtl_model *m, const char *name) {
  for (int i = 0; m && name && i < m->ncolumns; i++)
    if (!strcmp(m->columns[i].name, name)) return i;
  return -1;
}
int mtl_model_num_states(const mtl_model *m) {
  if (!m) return 0;
  pthread_mutex_lock((pthread_mutex_t *)&m->lock);
  int n = m->nstates;
  pthread_mutex_unlock((pthread_mutex_t *)&m->lock);
  return n;
}
int64_t mtl_model_hash_string(const char *s, size_t len) { return mtl_hash_string(s ? s : "", s ? len : 0); }

/* ---- scoring --------------------------------------------------------------------------- */
typedef struct score_args {
  const mtl_model *m;
  serve_state *s;
  bool typed;                  /* else the reader holds the rows as text */
  const mtl_column_data *cols;
  int ncols, n;
  float *out;
  int stride;
} score_args;

static int score_call(lua_State *L) {
  score_args *a = lua_touserdata(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, a->s->scorer_ref);
  int sc = lua_gettop(L);
  if (!a->typed) {
    lua_getfield(L, sc, "score_text");
    lua_pushvalue(L, sc);
    lua_pushinteger(L, a->n);
  } else {
    lua_getfield(L, sc, "score");
    lua_pushvalue(L, sc);
    serve_push_column_batch(L, a->m, a->s->reader, a->cols, a->ncols, a->n);
    serve_push_rank_values(L, a->m, a->cols, a->ncols, a->n);
  }
  lua_call(L, a->typed ? 3 : 2, 1);
  int res = lua_gettop(L);
  for (int j = 0; j < a->m->noutputs; j++) {
    lua_rawgeti(L, res, j + 1);
    mtl_tensor *t = bind_test_tensor(L, -1);
    if (!t || t->dtype != MTL_F32 || t->numel != a->n || (t->ndim != 1 && !mtl_tensor_is_contiguous(t)))
      luaL_error(L, "output '%s' is not a float tensor of %d values", a->m->outputs[j], a->n);
    const float *p = mtl_f32(t);
    int64_t step = t->ndim == 1 ? t->stride[0] : 1;
    for (int i = 0; i < a->n; i++) a->out[(size_t)i * (size_t)a->stride + (size_t)j] = p[i * step];
    lua_pop(L, 1);
  }
  return 0;
}

/* Runs one scoring call on a state: gradient recording off on this thread,
 * a full Lua GC afterwards so the tensors of the call are freed now. */
static int run_scoring(mtl_model *m, serve_state *s, score_args *a, char *err, size_t errlen, const char *fname) {
  bool grad = mtl_grad_enabled();
  mtl_set_grad_enabled(false);
  int rc = lua_cpcall(s->L, score_call, a);
  mtl_set_grad_enabled(grad);
  if (rc != 0) lua_failure(s->L, err, errlen, fname);
  lua_settop(s->L, 0);
  s->calls++;
  /* The call's tensors are garbage now; the Lua GC only sees their small
   * handles. Without a collection they pile up until the binding's heap
   * tracking forces a full one (peak RSS of the example 180 MB, against
   * 100-145 MB with a GC step per call). A step per call still let a large
   * collection land in about one request of a hundred: 300 candidates on 1
   * thread, p50 0.75 ms but p99 1.5-1.8 ms; a full collection per call,
   * whose garbage is then one call's, costs about 0.05 ms every time and
   * brought p99 to 1.0-1.1 ms at the same requests/s (2026-12-07). */
  lua_gc(s->L, LUA_GCCOLLECT, 0);
  (void)m;
  return rc ? -1 : 0;
}

static int check_call(const mtl_model *m, int n, const float *out, int out_stride, char *err, size_t errlen,
                      const char *fname) {
  if (err && errlen) err[0] = 0;
  if (!m) return serve_error(err, errlen, fname, "no model (NULL)");
  if (n < 0) return serve_error(err, errlen, fname, "the number of rows must be >= 0, got %d", n);
  if (n > 0 && !out) return serve_error(err, errlen, fname, "no output buffer (NULL)");
  if (out_stride < m->noutputs)
    return serve_error(err, errlen, fname, "out_stride must be at least the number of outputs (%d), got %d",
                       m->noutputs, out_stride);
  return 0;
}

static int ensure_text(serve_state *s, size_t n) {
  if (n <= s->text_cap) return 0;
  size_t cap = s->text_cap ? s->text_cap : 4096;
  while (cap < n) cap *= 2;
  char *t = realloc(s->text, cap);
  if (!t) return -1;
  s->text = t;
  s->text_cap = cap;
  return 0;
}

/* Scores the text in s->text[0 .. len) holding n rows. */
static int score_text(mtl_model *m, serve_state *s, size_t len, int n, float *out, int stride, char *err,
                      size_t errlen, const char *fname) {
  if (mtl_reader_set_text(s->reader, s->text, len) < 0 ||
      (s->rank_reader && mtl_reader_set_text(s->rank_reader, s->text, len) < 0))
    return serve_error(err, errlen, fname, "%s", mtl_error_message());
  score_args a = {m, s, false, NULL, 0, n, out, stride};
  return run_scoring(m, s, &a, err, errlen, fname);
}

int mtl_model_score_csv(mtl_model *m, const char *const *lines, int n, float *out, int out_stride, char *err,
                        size_t errlen) {
  const char *fn = "mtl_model_score_csv";
  if (check_call(m, n, out, out_stride, err, errlen, fn) < 0) return -1;
  if (n == 0) return 0;
  if (!lines) return serve_error(err, errlen, fn, "no lines (NULL)");
  size_t total = 0;
  for (int i = 0; i < n; i++) {
    if (!lines[i]) return serve_error(err, errlen, fn, "line %d is NULL", i + 1);
    size_t len = strlen(lines[i]);
    if (len == 0 || (len == 1 && lines[i][0] == '\r')) return serve_error(err, errlen, fn, "line %d is empty", i + 1);
    if (memchr(lines[i], '\n', len))
      return serve_error(err, errlen, fn, "line %d contains a line break (one row per line)", i + 1);
    total += len + 1;
  }
  serve_state *s = acquire(m, err, errlen, fn);
  if (!s) return -1;
  int rc;
  if (ensure_text(s, total) < 0) {
    rc = serve_error(err, errlen, fn, "out of memory (%zu bytes of rows)", total);
  } else {
    size_t k = 0;
    for (int i = 0; i < n; i++) {
      size_t len = strlen(lines[i]);
      memcpy(s->text + k, lines[i], len);
      k += len;
      s->text[k++] = '\n';
    }
    rc = score_text(m, s, k, n, out, out_stride, err, errlen, fn);
  }
  release(m, s);
  return rc;
}

int mtl_model_score_fields(mtl_model *m, const char *const *fields, int n, int nfields, float *out, int out_stride,
                           char *err, size_t errlen) {
  const char *fn = "mtl_model_score_fields";
  if (check_call(m, n, out, out_stride, err, errlen, fn) < 0) return -1;
  if (nfields != m->ncolumns)
    return serve_error(err, errlen, fn, "expected %d fields per row (the training schema's columns), got %d",
                       m->ncolumns, nfields);
  if (n == 0) return 0;
  if (!fields) return serve_error(err, errlen, fn, "no fields (NULL)");
  serve_state *s = acquire(m, err, errlen, fn);
  if (!s) return -1;
  char sep = m->sep, quote = m->quote;
  int rc = 0;
  size_t k = 0;
  for (int i = 0; i < n && rc == 0; i++) {
    size_t row_start = k;
    for (int c = 0; c < nfields && rc == 0; c++) {
      const char *f = fields[(size_t)i * (size_t)nfields + (size_t)c];
      if (!f) {
        rc = serve_error(err, errlen, fn, "row %d: field %d ('%s') is NULL", i + 1, c + 1, m->columns[c].name);
        break;
      }
      size_t len = strlen(f);
      bool special = false;
      for (size_t j = 0; j < len && !special; j++)
        special = f[j] == sep || f[j] == '\n' || f[j] == '\r' || (quote && f[j] == quote);
      if (special && !quote) {
        rc = serve_error(err, errlen, fn, "row %d: field %d ('%s') holds the separator or a line break, and the "
                         "model's rows are read without quoting", i + 1, c + 1, m->columns[c].name);
        break;
      }
      /* worst case: every byte a doubled quote, two quotes, a separator */
      if (ensure_text(s, k + 2 * len + 4) < 0) {
        rc = serve_error(err, errlen, fn, "out of memory");
        break;
      }
      if (c) s->text[k++] = sep;
      if (special) {
        s->text[k++] = quote;
        for (size_t j = 0; j < len; j++) {
          if (f[j] == quote) s->text[k++] = quote;
          s->text[k++] = f[j];
        }
        s->text[k++] = quote;
      } else {
        memcpy(s->text + k, f, len);
        k += len;
      }
    }
    if (rc) break;
    if (k == row_start) { /* an all-empty one-column row would read as a blank line */
      if (!quote) {
        rc = serve_error(err, errlen, fn, "row %d is empty and the model's rows are read without quoting", i + 1);
        break;
      }
      if (ensure_text(s, k + 3) < 0) {
        rc = serve_error(err, errlen, fn, "out of memory");
        break;
      }
      s->text[k++] = quote;
      s->text[k++] = quote;
    }
    if (ensure_text(s, k + 1) < 0) {
      rc = serve_error(err, errlen, fn, "out of memory");
      break;
    }
    s->text[k++] = '\n';
  }
  if (rc == 0) rc = score_text(m, s, k, n, out, out_stride, err, errlen, fn);
  release(m, s);
  return rc;
}

int mtl_model_score_columns(mtl_model *m, const mtl_column_data *columns, int ncolumns, int n, float *out,
                            int out_stride, char *err, size_t errlen) {
  const char *fn = "mtl_model_score_columns";
  if (check_call(m, n, out, out_stride, err, errlen, fn) < 0) return -1;
  if (ncolumns < 0) return serve_error(err, errlen, fn, "the number of columns must be >= 0, got %d", ncolumns);
  if (ncolumns > 0 && !columns) return serve_error(err, errlen, fn, "no columns (NULL)");
  if (n == 0) return 0;
  serve_state *s = acquire(m, err, errlen, fn);
  if (!s) return -1;
  score_args a = {m, s, true, columns, ncolumns, n, out, out_stride};
  int rc = run_scoring(m, s, &a, err, errlen, fn);
  release(m, s);
  return rc;
}
