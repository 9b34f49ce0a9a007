#!/usr/bin/env bash
# Mutation fuzzing of mtl's input parsers under AddressSanitizer and
# UndefinedBehaviorSanitizer (tools/fuzz/fuzz.lua says what is mutated and how).
#
#   tools/fuzz.sh [seconds_per_target=60] [batch=60] [targets] [seed]
#   e.g. tools/fuzz.sh 150 60 csv,gz,ff,opts,pbtxt,override,luacfg,ckpt,modeldir
#
# Builds the sanitizer build (MTL_ASAN_BUILD_DIR, default build-asan) when it is
# missing, then runs every batch of mutants in a child process of that build,
# with the sanitizer runtimes preloaded into luajit the way tools/test.sh does.
# Work files, error-message samples (work/messages_*.txt) and failing inputs
# with their logs (crashes/) go to MTL_FUZZ_DIR (default /tmp/mtl-fuzz).
# Exits 1 when a batch failed. Run it niced on a shared machine.
# MTL_FUZZ_PLAIN=1 uses the plain build (MTL_BUILD, default build) without the
# sanitizers: crashes and hangs are still caught, memory errors only if they
# crash (the spec that keeps this script working runs it so for a few seconds).
# MTL_FUZZ_COVERAGE=1 builds with gcov instead (MTL_COV_BUILD_DIR, default
# build-cov), fuzzes as MTL_FUZZ_PLAIN does, then prints the lines of the
# core's input parsers the mutants reached (gcov, per file).
#
#   MTL_FUZZ_ENGINE=libfuzzer tools/fuzz.sh [runs_per_target=10000000] [targets] [max_seconds_per_target]
#
# runs libFuzzer in process instead (tools/fuzz/libfuzzer.c and libfuzzer.lua:
# one LuaJIT state, the same targets, tools/fuzz/targets.lua), one target after
# another on one core, niced, under ASan + UBSan with libFuzzer's coverage
# guidance (clang; the core is built in MTL_LF_BUILD_DIR, default
# build-libfuzzer). Corpora, logs and findings go to MTL_FUZZ_DIR (default
# /tmp/mtl-fuzz-lf): corpus/<target>, logs/<target>.log, findings/<target>/.
# A finding stops its target; the script exits 1 when there was one.
# MTL_FUZZ_LF_ARGS adds libFuzzer options (e.g. -seed=1). With MTL_FUZZ_COVERAGE=1
# it fuzzes nothing: it runs the corpora of the targets named through the gcov
# build once each and prints the parsers' line coverage.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${MTL_FUZZ_DIR:-/tmp/mtl-fuzz}
mkdir -p "$dir/bin" "$dir/work" "$dir/crashes" "$dir/seeds"

if [[ "${MTL_FUZZ_COVERAGE:-0}" = 1 ]]; then
  cov=${MTL_COV_BUILD_DIR:-build-cov}
  [[ "$cov" = /* ]] || cov="$root/$cov"
  if [[ ! -x "$cov/mtl" ]]; then
    echo "== building $cov (--coverage)" >&2
    cmake -S "$root" -B "$cov" -DCMAKE_BUILD_TYPE=Release -DMTL_MPI=OFF -DCMAKE_C_FLAGS=--coverage \
      -DCMAKE_EXE_LINKER_FLAGS=--coverage -DCMAKE_SHARED_LINKER_FLAGS=--coverage >/dev/null
    make -C "$cov" -j"$(nproc)" --no-print-directory mtl_lua >/dev/null
  fi
  find "$cov" -name '*.gcda' -delete
  status=0
  if [[ "${MTL_FUZZ_ENGINE:-batch}" = libfuzzer ]]; then
    MTL_FUZZ_REPLAY="$cov" "$root/tools/fuzz/libfuzzer.sh" "$@" || status=$?
  else
    MTL_FUZZ_COVERAGE=0 MTL_FUZZ_PLAIN=1 MTL_BUILD="$cov" "$root/tools/fuzz.sh" "$@" || status=$?
  fi
  echo "coverage of the core's parsers (lines reached by the mutants and the seeds):"
  for src in reader.c reader_input.c reader_parse.c checkpoint.c; do
    gcda=$(find "$cov" -name "$src.gcda" | head -1)
    [[ -n "$gcda" ]] || { echo "  $src: not reached"; continue; }
    (cd "$(dirname "$gcda")" && gcov -n "$gcda" 2>/dev/null) |
      awk -v f="$src" '/^File / { want = index($0, "/" f "\x27") > 0 } want && /^Lines executed/ { print "  " f ": " $0; want = 0 }'
  done
  exit $status
fi

if [[ "${MTL_FUZZ_ENGINE:-batch}" = libfuzzer ]]; then
  exec "$root/tools/fuzz/libfuzzer.sh" "$@"
fi

if [[ "${MTL_FUZZ_PLAIN:-0}" = 1 ]]; then
  build=${MTL_BUILD:-build}
  [[ "$build" = /* ]] || build="$root/$build"
  : >"$dir/env.sh"
  export MTL_FUZZ_DIR="$dir" MTL_FUZZ_REPO="$root" MTL_FUZZ_MTL="$build/mtl"
  (cd "$dir" && "$build/mtl" "$root/tools/fuzz/gen_seeds.lua")
  exec luajit "$root/tools/fuzz/fuzz.lua" "$@"
fi

asan_build=${MTL_ASAN_BUILD_DIR:-build-asan}
[[ "$asan_build" = /* ]] || asan_build="$root/$asan_build"
if [[ ! -x "$asan_build/mtl" ]]; then
  echo "== building $asan_build (-DMTL_SANITIZE=ON)" >&2
  cmake -S "$root" -B "$asan_build" -DCMAKE_BUILD_TYPE=Release -DMTL_WERROR=ON -DMTL_SANITIZE=ON >/dev/null
  make -C "$asan_build" -j"$(nproc)" --no-print-directory >/dev/null
fi

# luajit is not instrumented: a wrapper preloads the runtimes, LUA_INIT drops
# LD_PRELOAD once luajit runs and pins the instrumented core (see tools/test.sh)
printf '#!/bin/sh\nLD_PRELOAD="%s %s" exec %s "$@"\n' "$(gcc -print-file-name=libasan.so)" \
  "$(gcc -print-file-name=libubsan.so)" "$(command -v luajit)" >"$dir/bin/luajit"
chmod +x "$dir/bin/luajit"
init="if jit then local ffi = require 'ffi'"
init+="; ffi.cdef 'void *dlopen(const char *, int); int unsetenv(const char *);'"
init+="; ffi.C.dlopen('$asan_build/lib/mtl/core.so', 0x1002)" # RTLD_NOW | RTLD_NODELETE
init+="; ffi.C.unsetenv('LD_PRELOAD') end"
{
  echo "export PATH=\"$dir/bin:\$PATH\""
  echo "export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1:quarantine_size_mb=16:exitcode=86"
  echo "export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=87"
  printf 'export LUA_INIT=%q\n' "$init"
} >"$dir/env.sh"

export MTL_FUZZ_DIR="$dir" MTL_FUZZ_REPO="$root" MTL_FUZZ_MTL="$asan_build/mtl"
(. "$dir/env.sh" && cd "$dir" && "$asan_build/mtl" "$root/tools/fuzz/gen_seeds.lua")
exec luajit "$root/tools/fuzz/fuzz.lua" "$@"
