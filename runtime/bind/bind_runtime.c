/* mtl.core's runtime settings and process policies, apart from tensors:
 *   - threads (mtl.set_num_threads / get_num_threads; MTL_NUM_THREADS gives
 *     the default when the module is first opened, else 1),
 *   - the random stream (mtl.seed, mtl.rand_state),
 *   - memory (mtl.memory, mtl.set_memory_limit) and the GC policy: heap
 *     tracking, which steps the Lua GC when tensor memory grows (bind_track),
 *   - Ctrl-C (core.catch_interrupts, core.interrupted): SIGINT only sets a
 *     flag, and the next tensor handed to Lua raises "interrupted",
 *   - stopping a training run (core.catch_stop_signals, core.stop_signal):
 *     SIGINT/SIGTERM only record the signal, the loop polls it between steps,
 *   - matrix-product statistics (mtl.gemm_stats).
 * Contract: every function that hands a new tensor to Lua calls bind_track
 * (bind_fill and bind_push do), so the GC policy and Ctrl-C act between ops
 * and never inside the core. The settings are process-wide (the core's),
 * except the GC thresholds, which are per thread (serving runs a Lua state
 * per thread). */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bind.h"

/* ---- heap tracking (the GC policy) ------------------------------------------ */
#define GC_MIN_MARGIN ((size_t)16 << 20)
#define GC_HEAP_MARGIN_CAP ((size_t)96 << 20)
/* per thread: serving runs Lua states in several */
static _Thread_local size_t gc_threshold = GC_MIN_MARGIN, gc_survivors = 0, gc_margin = GC_MIN_MARGIN;

/* Heap tracking: the Lua GC does not see tensor storage, so when the memory
 * held by tensors grows past a threshold, run a collection. The threshold is
 * what survived the last collection plus a margin for new garbage: 16 MB, an
 * eighth of the survivors, or four times the Lua heap (so that a full
 * collection stays cheap against the tensor work between two), whichever is
 * largest. The margin does not grow with long-lived data (embedding tables,
 * optimizer moments, a data set held in memory), so a training step's garbage
 * is reclaimed within about a step and peak memory stays near what is live
 * plus one step's working set. */
static void track_memory(lua_State *L) {
  size_t used = mtl_memory_in_use();
  if (used < gc_survivors) {
    /* memory was freed since (a collection the program asked for, data let
     * go): the threshold follows it down, so garbage cannot fill the room */
    gc_survivors = used;
    gc_threshold = used + gc_margin;
  }
  if (used > gc_threshold) {
    lua_gc(L, LUA_GCCOLLECT, 0);
    mtl_memory_trim();
    used = mtl_memory_in_use();
    size_t margin = used / 8, heap = (size_t)lua_gc(L, LUA_GCCOUNT, 0) << 10;
    if (margin < GC_MIN_MARGIN) margin = GC_MIN_MARGIN;
    /* the Lua-heap term is capped: in a process with a large Lua heap (a
     * test runner, a REPL full of data) it would otherwise let hundreds of MB
     * of garbage tensors pile up between collections */
    if (margin < 4 * heap) margin = 4 * heap < GC_HEAP_MARGIN_CAP ? 4 * heap : GC_HEAP_MARGIN_CAP;
    if (margin < GC_MIN_MARGIN) margin = GC_MIN_MARGIN;
    gc_survivors = used;
    gc_margin = margin;
    gc_threshold = used + margin;
  }
}

/* ---- Ctrl-C ------------------------------------------------------------------- */
/* Ctrl-C in the REPL: while code runs, SIGINT only sets this flag, and the
 * next tensor op returns to Lua with an "interrupted" error, so a training
 * loop stops between ops with every tensor intact. */
static volatile sig_atomic_t interrupted;
static struct sigaction previous_sigint;
static void on_sigint(int sig) {
  (void)sig;
  interrupted = 1;
}

static void check_interrupt(lua_State *L) {
  if (interrupted) {
    interrupted = 0;
    luaL_error(L, "interrupted");
  }
}

/* Installs handler for the n signals sigs, keeping their actions in
 * previous, or (handler NULL) puts those back. */
static void set_handlers(void (*handler)(int), const int *sigs, int n, struct sigaction *previous) {
  for (int i = 0; i < n; i++) {
    if (!handler) {
      sigaction(sigs[i], &previous[i], NULL);
      continue;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sigaction(sigs[i], &sa, &previous[i]);
  }
}

/* core.catch_interrupts(on): installs (true) or removes (false) the handler. */
static int l_catch_interrupts(lua_State *L) {
  static const int sigint[1] = {SIGINT};
  bool on = lua_toboolean(L, 1);
  if (on) interrupted = 0;
  set_handlers(on ? on_sigint : NULL, sigint, 1, &previous_sigint);
  return 0;
}

/* core.interrupted(): true once after a Ctrl-C (clears the flag). */
static int l_interrupted(lua_State *L) {
  lua_pushboolean(L, interrupted);
  interrupted = 0;
  return 1;
}

/* ---- stopping a training run ------------------------------------------------- */
/* mtl train: the first SIGINT or SIGTERM only records its number, and the
 * loop looks at it between steps (finish the step, save, exit 128 + signal);
 * a second one ends the process at once with that status (_exit is
 * async-signal-safe; files are written to temporaries and renamed, so the
 * checkpoints already there stay whole). Unlike catch_interrupts, tensor ops
 * go on: the step in progress completes. */
static volatile sig_atomic_t stop_signal;
static struct sigaction previous_stop[2];
static void on_stop_signal(int sig) {
  if (stop_signal) _exit(128 + sig);
  stop_signal = sig;
}

/* core.catch_stop_signals(on): installs (true, clearing a recorded signal) or
 * removes (false) the SIGINT and SIGTERM handlers. */
static int l_catch_stop_signals(lua_State *L) {
  static const int sigs[2] = {SIGINT, SIGTERM};
  bool on = lua_toboolean(L, 1);
  if (on) stop_signal = 0;
  set_handlers(on ? on_stop_signal : NULL, sigs, 2, previous_stop);
  return 0;
}

/* core.stop_signal(): the number of the signal that asked to stop, or 0. */
static int l_stop_signal(lua_State *L) {
  lua_pushinteger(L, stop_signal);
  return 1;
}

void bind_track(lua_State *L) {
  track_memory(L);
  check_interrupt(L);
}

/* ---- the random stream --------------------------------------------------------- */
static int l_seed(lua_State *L) {
  lua_Number s = luaL_checknumber(L, 1);
  if (!(fabs(s) < 9.2e18)) /* also refuses NaN: the cast below needs a finite value in range */
    return luaL_error(L, "mtl.seed: expected an integer seed, got %f", s);
  mtl_seed((uint64_t)(int64_t)s);
  return 0;
}

static int l_rand_state(lua_State *L) {
  uint64_t st[4];
  if (lua_isnoneornil(L, 1)) { /* get: four 16-hex-digit strings */
    mtl_rand_get_state(st);
    lua_createtable(L, 4, 0);
    for (int i = 0; i < 4; i++) {
      char buf[17];
      snprintf(buf, sizeof buf, "%016llx", (unsigned long long)st[i]);
      lua_pushstring(L, buf);
      lua_rawseti(L, -2, i + 1);
    }
    return 1;
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  for (int i = 0; i < 4; i++) {
    lua_rawgeti(L, 1, i + 1);
    const char *s = lua_tostring(L, -1);
    if (!s || strlen(s) != 16) return luaL_error(L, "mtl.rand_state: expected 4 hex strings of 16 digits");
    char *end;
    st[i] = strtoull(s, &end, 16);
    if (*end) return luaL_error(L, "mtl.rand_state: bad hex string '%s'", s);
    lua_pop(L, 1);
  }
  mtl_rand_set_state(st);
  return 0;
}

/* ---- threads, memory, statistics ---------------------------------------------- */
static int l_set_num_threads(lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  if (n < 1 || n > 256) return luaL_error(L, "mtl.set_num_threads: expected 1..256, got %d", (int)n);
  mtl_set_num_threads((int)n);
  return 0;
}

static int l_get_num_threads(lua_State *L) {
  lua_pushinteger(L, mtl_get_num_threads());
  return 1;
}

/* mtl.gemm_stats(true|false) turns the statistics on (clearing them) or off;
 * mtl.gemm_stats() returns them: a list of {m, n, k, ta, tb, calls, seconds}. */
static int l_gemm_stats(lua_State *L) {
  if (!lua_isnoneornil(L, 1)) {
    luaL_checktype(L, 1, LUA_TBOOLEAN);
    mtl_gemm_stats_enable(lua_toboolean(L, 1));
    return 0;
  }
  mtl_gemm_stat st[MTL_GEMM_STATS_MAX];
  int n = mtl_gemm_stats(st, MTL_GEMM_STATS_MAX);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_createtable(L, 0, 7);
    lua_pushnumber(L, (lua_Number)st[i].m); lua_setfield(L, -2, "m");
    lua_pushnumber(L, (lua_Number)st[i].n); lua_setfield(L, -2, "n");
    lua_pushnumber(L, (lua_Number)st[i].k); lua_setfield(L, -2, "k");
    lua_pushlstring(L, &st[i].ta, 1); lua_setfield(L, -2, "ta");
    lua_pushlstring(L, &st[i].tb, 1); lua_setfield(L, -2, "tb");
    lua_pushnumber(L, (lua_Number)st[i].calls); lua_setfield(L, -2, "calls");
    lua_pushnumber(L, st[i].seconds); lua_setfield(L, -2, "seconds");
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int l_memory(lua_State *L) {
  lua_createtable(L, 0, 2);
  lua_pushnumber(L, (lua_Number)mtl_memory_in_use());
  lua_setfield(L, -2, "in_use");
  lua_pushnumber(L, (lua_Number)mtl_memory_cached());
  lua_setfield(L, -2, "cached");
  return 1;
}

static int l_set_memory_limit(lua_State *L) {
  lua_Number n = luaL_checknumber(L, 1);
  if (!(n >= 1 && n < 1.8e19)) /* also refuses NaN */
    return luaL_error(L, "mtl.set_memory_limit: expected a positive byte count, got %f", n);
  mtl_memory_set_limit((size_t)n);
  return 0;
}

/* core.memory_budget(bytes): this thread's allocations may add up to bytes
 * from now on; core.memory_budget(nil): ends it, returns the bytes allocated. */
static int l_memory_budget(lua_State *L) {
  if (lua_isnoneornil(L, 1)) {
    lua_pushnumber(L, (lua_Number)mtl_memory_end_budget());
    return 1;
  }
  lua_Number n = luaL_checknumber(L, 1);
  if (!(n >= 0 && n < 1.8e19))
    return luaL_error(L, "mtl.memory_budget: expected a byte count >= 0 or nil, got %f", n);
  mtl_memory_set_budget((size_t)n);
  return 0;
}

void bind_runtime_open(lua_State *L, int mod, int methods) {
  (void)methods;
  /* One thread unless MTL_NUM_THREADS says otherwise: OpenBLAS would
   * otherwise start a pool as wide as the machine, and an idle pool spinning
   * beside the main thread costs more than it gives on small matrices. */
  static int threads_set;
  if (!threads_set) {
    const char *env = getenv("MTL_NUM_THREADS");
    int n = env ? atoi(env) : 1;
    mtl_set_num_threads(n >= 1 && n <= 256 ? n : 1);
    threads_set = 1;
  }
  static const luaL_Reg fns[] = {
    {"seed", l_seed}, {"rand_state", l_rand_state},
    {"set_num_threads", l_set_num_threads}, {"get_num_threads", l_get_num_threads},
    {"memory", l_memory}, {"set_memory_limit", l_set_memory_limit}, {"memory_budget", l_memory_budget},
    {"gemm_stats", l_gemm_stats},
    {"catch_interrupts", l_catch_interrupts}, {"interrupted", l_interrupted},
    {"catch_stop_signals", l_catch_stop_signals}, {"stop_signal", l_stop_signal}, {NULL, NULL},
  };
  bind_register_list(L, mod, 0, fns);
}
