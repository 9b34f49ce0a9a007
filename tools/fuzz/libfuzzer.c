/* The in-process libFuzzer driver of tools/fuzz.sh (MTL_FUZZ_ENGINE=libfuzzer).
 * One LuaJIT state per process: tools/fuzz/libfuzzer.lua (MTL_FUZZ_ENTRY),
 * run once with the target's name (MTL_FUZZ_TARGET), returns the function
 * each input is given to, as a string. A Lua error whose value is a non-empty
 * string is a refused input; any other error value is a finding (abort, which
 * libFuzzer reports with the input), as are the sanitizers' reports, crashes
 * and timeouts, which libFuzzer catches itself. Built by tools/fuzz.sh with
 * clang -fsanitize=fuzzer,address,undefined; mtl.core (build-libfuzzer) is
 * compiled with -fsanitize=fuzzer-no-link so that libFuzzer's coverage
 * guidance sees the C parsers. With MTL_FUZZ_LUA_LINES non-empty (the targets
 * whose parsers are Lua: tools/fuzz/libfuzzer.lua turns the JIT off for
 * them), a line hook counts the Lua lines run into libFuzzer's extra
 * counters, so that its guidance sees the Lua parsers too. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <lua.h>
#include <lualib.h>
#include <lauxlib.h>

static lua_State *L;
static int entry = LUA_NOREF;
static unsigned long runs;

/* Lua lines run: (chunk, line) hashed into libFuzzer's extra counters */
#define LUA_LINES 65536
__attribute__((used, section("__libfuzzer_extra_counters"))) static uint8_t lua_lines[LUA_LINES];

static void line_hook(lua_State *L, lua_Debug *ar) {
  if (!lua_getinfo(L, "S", ar)) return;
  uint64_t h = ((uint64_t)(uintptr_t)ar->source * 0x9E3779B97F4A7C15u) ^ ((uint64_t)ar->currentline * 0xC2B2AE3Du);
  lua_lines[(h ^ (h >> 29)) & (LUA_LINES - 1)]++;
}

static void fail(const char *what, const char *detail) {
  fprintf(stderr, "mtl libfuzzer driver: %s: %s\n", what, detail ? detail : "(no message)");
  abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc; (void)argv;
  const char *script = getenv("MTL_FUZZ_ENTRY"), *target = getenv("MTL_FUZZ_TARGET");
  if (!script || !target) fail("environment", "MTL_FUZZ_ENTRY and MTL_FUZZ_TARGET must be set (run tools/fuzz.sh)");
  L = luaL_newstate();
  if (!L) fail("luaL_newstate", "out of memory");
  luaL_openlibs(L);
  if (luaL_loadfile(L, script) != 0) fail(script, lua_tostring(L, -1));
  lua_pushstring(L, target);
  if (lua_pcall(L, 1, 1, 0) != 0) fail(script, lua_tostring(L, -1));
  if (!lua_isfunction(L, -1)) fail(script, "did not return a function");
  entry = luaL_ref(L, LUA_REGISTRYINDEX);
  const char *lines = getenv("MTL_FUZZ_LUA_LINES");
  if (lines && *lines) lua_sethook(L, line_hook, LUA_MASKLINE, 0);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, entry);
  lua_pushlstring(L, (const char *)data, size);
  if (lua_pcall(L, 1, 0, 0) != 0) {
    size_t len = 0;
    if (lua_type(L, -1) != LUA_TSTRING || (lua_tolstring(L, -1, &len), len == 0))
      fail("the target raised an error that is not a message", luaL_typename(L, -1));
    lua_pop(L, 1);
  }
  /* the core's buffers are malloc'ed, out of the Lua GC's sight: collect
     now and then so that freed tensors give their memory back */
  if (++runs % 256 == 0) lua_gc(L, LUA_GCCOLLECT, 0);
  return 0;
}

#ifdef MTL_FUZZ_REPLAY
/* Without libFuzzer (gcc --coverage, MTL_FUZZ_COVERAGE=1): runs the files
 * named on the command line once each, as libFuzzer would. */
int main(int argc, char **argv) {
  LLVMFuzzerInitialize(&argc, &argv);
  for (int i = 1; i < argc; i++) {
    FILE *f = fopen(argv[i], "rb");
    if (!f) fail("cannot open", argv[i]);
    size_t cap = 1 << 16, len = 0, n;
    uint8_t *buf = malloc(cap), *more;
    while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0)
      if ((len += n) == cap) {
        if (!(more = realloc(buf, cap *= 2))) free(buf);
        buf = more;
      }
    fclose(f);
    if (!buf) fail("out of memory", argv[i]);
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
  }
  lua_close(L);
  return 0;
}
#endif
