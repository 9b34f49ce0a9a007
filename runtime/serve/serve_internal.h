/* Private state of the serving library (serve.c: models, states, text rows;
 * serve_columns.c: typed columns). This layer embeds LuaJIT, so it may
 * include lua.h; the core (runtime/src) still never does. */
#ifndef MTL_SERVE_INTERNAL_H
#define MTL_SERVE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>

#include <lauxlib.h>
#include <lua.h>

#include "mtl/core.h"
#include "mtl/embedding.h"
#include "mtl/reader.h"
#include "mtl/serve.h"

/* A column of the training schema, as the request reader reads it. */
typedef struct serve_column {
  char *name;
  mtl_column_type type;
  char *default_text;  /* NULL: no default */
  bool string_values;  /* multi/kv values are strings */
  bool grouped;        /* a float column inside a [n, k] group */
  bool standardized;   /* z-scored with mean and std */
  double mean, std;
} serve_column;

/* A plain Lua value (nil, boolean, number, string, table of them) held in C
 * memory: the config and fitted transforms, captured once from the first
 * state and pushed into each new one (a state is never read while another
 * thread may be scoring with it). */
typedef struct serve_value {
  int type; /* LUA_TNIL, LUA_TBOOLEAN, LUA_TNUMBER, LUA_TSTRING, LUA_TTABLE */
  double number;
  char *string;
  size_t len;
  int n; /* table entries */
  struct serve_value *keys, *values;
} serve_value;

/* One embedded LuaJIT state with its Scorer (lua/mtl/serve.lua). */
typedef struct serve_state {
  lua_State *L;
  int scorer_ref;      /* registry reference of the Scorer */
  mtl_reader *reader;  /* the Scorer's request reader (owned by its userdata) */
  mtl_reader *rank_reader; /* the ranking columns' reader, or NULL */
  char *text;          /* request rows joined into one text */
  size_t text_cap;
  uint64_t calls;
} serve_state;

struct mtl_model {
  char *dir, *root;
  char *precision;     /* asked for (NULL: the manifest's) */
  char effective[8];   /* in effect: "fp32" or "bf16" */
  /* outputs and schema (from the first state) */
  int noutputs, ntasks;
  char **outputs;
  int ncolumns;
  serve_column *columns;
  char sep, quote; /* of the rows (quote 0: no quoting) */
  int nrank_columns; /* columns the ranking formula reads (schema indices) */
  int *rank_columns;
  serve_value config, fitted; /* what another state needs to build the model */
  /* the weights every state shares: the first state's parameters (by name)
   * and embedding tables (in the order the features build them) */
  int nparams;
  char **param_names;
  mtl_tensor **params;
  int ntables;
  mtl_embedding **tables;
  /* the pool of states */
  pthread_mutex_t lock;
  pthread_cond_t cond;
  serve_state **states, **idle;
  int nstates, nidle, creating, max_states;
};

/* Writes "fname: message" into err (when errlen > 0); returns -1. */
int serve_error(char *err, size_t errlen, const char *fname, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Pushes onto L the batch table {size = n, columns = {...}} that the Scorer's
 * reader would give for these typed columns (runs inside a protected call:
 * raises Lua errors). */
void serve_push_column_batch(lua_State *L, const mtl_model *m, mtl_reader *r, const mtl_column_data *cols,
                             int ncols, int n);
/* Pushes {column = float [n]} of the ranking columns (float values, or ids
 * as numbers; NaN when not given), as the Scorer's rank reader gives them. */
void serve_push_rank_values(lua_State *L, const mtl_model *m, const mtl_column_data *cols, int ncols, int n);

#endif
