#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test:
#   1. build/ (Release, -DMTL_WERROR=ON): ctest (C tests of the core), busted (all specs)
#   2. build-asan/ (-DMTL_SANITIZE=ON: AddressSanitizer + UndefinedBehaviorSanitizer):
#      ctest with leak detection, then all specs again under luajit with the
#      sanitizer runtimes preloaded.
#   3. build-tsan/ (ThreadSanitizer, -fsanitize=thread): only the serving test
#      (runtime/tests/serve: several threads scoring one model at once); it adds
#      20-30 s (build and run) to the whole on 2 cores.
# The last line is "N passed, N failed" (summed over all runs); the exit
# status is non-zero on any failure (a failed build counts as one failure).
#
# Environment: MTL_BUILD_DIR (default build), MTL_ASAN_BUILD_DIR (default
# build-asan), MTL_TSAN_BUILD_DIR (default build-tsan), MTL_NO_ASAN=1 skips
# step 2, MTL_NO_TSAN=1 step 3, MTL_BUSTED_ARGS extra busted arguments
# (e.g. "--exclude-tags=slow" while developing; CI runs everything).
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

bash tools/setup.sh --deps-only || { echo "0 passed, 1 failed"; exit 1; }

build=${MTL_BUILD_DIR:-build}
asan_build=${MTL_ASAN_BUILD_DIR:-build-asan}
jobs=$(nproc)
passed=0
failed=0
start=$SECONDS
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

say() { echo "== $*" >&2; }

# build_tree DIR CMAKE_ARGS...: configure and build; a failure counts once.
build_tree() {
  local dir=$1; shift
  say "build $dir ($*)"
  if cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DMTL_WERROR=ON "$@" >"$tmp/cmake.log" 2>&1 &&
     make -C "$dir" -j"$jobs" --no-print-directory >"$tmp/make.log" 2>&1; then
    return 0
  fi
  cat "$tmp/cmake.log" "$tmp/make.log" >&2
  say "build of $dir FAILED"
  failed=$((failed + 1))
  return 1
}

# run_ctest DIR: C tests; adds to the counts from ctest's summary line.
run_ctest() {
  local dir=$1 t0=$SECONDS
  (cd "$dir" && ctest --output-on-failure) >"$tmp/ctest.log" 2>&1
  local rc=$? line total bad
  line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$tmp/ctest.log" | tail -1)
  if [[ -z "$line" ]]; then
    cat "$tmp/ctest.log" >&2
    say "ctest in $dir produced no summary"
    failed=$((failed + 1))
    return
  fi
  bad=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
  total=$(sed -E 's/.* failed out of ([0-9]+).*/\1/' <<<"$line")
  ((rc != 0 || bad != 0)) && cat "$tmp/ctest.log" >&2
  passed=$((passed + total - bad))
  failed=$((failed + bad))
  say "ctest $dir: $((total - bad)) passed, $bad failed ($((SECONDS - t0)) s)"
}

# busted_counts DIR [ENV=VALUE...] -- [SPEC...]: runs busted, prints "passed failed".
busted_counts() {
  local dir=$1; shift
  local envs=()
  while [[ $1 != -- ]]; do envs+=("$1"); shift; done
  shift
  # shellcheck disable=SC2086
  env MTL_BUILD="$dir" "${envs[@]}" busted -o json ${MTL_BUSTED_ARGS:-} "$@" \
    >"$tmp/busted.json" 2>>"$tmp/busted.err"
  luajit tools/busted_count.lua <"$tmp/busted.json" 2>>"$tmp/count.err"
}

# run_busted DIR [ENV=VALUE...]: every spec against DIR's build. If busted
# dies (a sanitizer aborts it), each spec file runs on its own so that one
# crash does not hide the other files' results; each crash counts once.
run_busted() {
  local dir=$1 t0=$SECONDS; shift
  : >"$tmp/busted.err"
  : >"$tmp/count.err"
  local counts crashed=0
  counts=$(busted_counts "$dir" "$@" --)
  if grep -q "produced no result" "$tmp/count.err"; then
    crashed=1
    say "busted died in $dir; running each spec file on its own"
    : >"$tmp/count.all"
    local p=0 f=0 c file
    while IFS= read -r file; do
      : >"$tmp/count.err"
      c=$(busted_counts "$dir" "$@" -- "$file")
      grep -q "produced no result" "$tmp/count.err" && echo "busted died in $file" >>"$tmp/count.all"
      cat "$tmp/count.err" >>"$tmp/count.all"
      p=$((p + ${c% *}))
      f=$((f + ${c#* }))
    done < <(find spec -name '*_spec.lua' | sort)
    cp "$tmp/count.all" "$tmp/count.err"
    counts="$p $f"
  fi
  cat "$tmp/count.err" >&2
  if [[ -s "$tmp/busted.err" ]]; then
    say "stderr of busted ($dir):"
    tail -n 200 "$tmp/busted.err" >&2
    # a sanitizer report after the specs passed (e.g. a leak found at exit)
    # is a failure too; a report that killed busted is already counted
    if ((crashed == 0)) && grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$tmp/busted.err"; then
      say "sanitizer report in $dir"
      failed=$((failed + 1))
    fi
  fi
  passed=$((passed + ${counts% *}))
  failed=$((failed + ${counts#* }))
  say "busted $dir: ${counts% *} passed, ${counts#* } failed ($((SECONDS - t0)) s)"
}

if build_tree "$build"; then
  run_ctest "$build"
  run_busted "$build"
fi

if [[ "${MTL_NO_ASAN:-0}" != 1 ]]; then
  if build_tree "$asan_build" -DMTL_SANITIZE=ON; then
    # C tests: instrumented executables, leak detection on.
    ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
      UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 run_ctest "$asan_build"
    # Specs: luajit itself is not instrumented, so the sanitizer runtimes are
    # preloaded into it, and only into it: a `luajit` wrapper first on PATH
    # (busted re-runs itself as `luajit`; build-asan/mtl runs `luajit`) sets
    # LD_PRELOAD, and LUA_INIT removes it from the environment once luajit
    # runs, so the shells and tools specs start are not checked (bash's own
    # leaks at exit are not ours). LUA_INIT also pins the instrumented
    # mtl/core.so (RTLD_NODELETE) so that lua_close's dlclose does not unmap
    # its globals before LeakSanitizer scans them at exit: memory reachable
    # only from a global (a free list, a registry) would otherwise be reported
    # as leaked. Nothing of mtl's is suppressed (Open MPI's own leaks are: below).
    # allocator_may_return_null=1 lets a huge allocation fail with NULL (mtl's
    # out-of-memory error) instead of aborting. quarantine_size_mb=16 (default
    # 256) keeps freed blocks poisoned for a while yet lets resident memory
    # settle within spec/memory_spec.lua's warm-up.
    # The mtl.dist specs run ranks under mpirun (build-asan/mtl through this
    # wrapper too). Open MPI loads and unloads its components in MPI_Init and
    # MPI_Finalize, and LeakSanitizer cannot name what an unloaded library
    # allocated; so in this pass a one-line preload makes dlclose keep every
    # library loaded, and tools/openmpi.supp suppresses what Open MPI's own
    # libraries still hold at exit, by library name (mtl's leaks in the ranks
    # are still reported).
    asan_lib=$(gcc -print-file-name=libasan.so)
    ubsan_lib=$(gcc -print-file-name=libubsan.so)
    real_luajit=$(command -v luajit)
    mkdir -p "$tmp/bin"
    printf 'int dlclose(void *handle) { (void)handle; return 0; }\n' >"$tmp/keep_loaded.c"
    gcc -shared -fPIC -o "$tmp/keep_loaded.so" "$tmp/keep_loaded.c"
    printf '#!/bin/sh\nLD_PRELOAD="%s %s %s" exec %s "$@"\n' "$asan_lib" "$ubsan_lib" "$tmp/keep_loaded.so" \
      "$real_luajit" >"$tmp/bin/luajit"
    chmod +x "$tmp/bin/luajit"
    core_so="$root/$asan_build/lib/mtl/core.so"
    [[ "$asan_build" = /* ]] && core_so="$asan_build/lib/mtl/core.so"
    init="if jit then local ffi = require 'ffi'"
    init+="; ffi.cdef 'void *dlopen(const char *, int); int unsetenv(const char *);'"
    init+="; ffi.C.dlopen('$core_so', 0x1002)" # RTLD_NOW | RTLD_NODELETE
    init+="; ffi.C.unsetenv('LD_PRELOAD') end"
    # Specs tagged #quality train full models for minutes to check AUCs: their
    # numerics are the same under the sanitizers, so that pass leaves them out.
    # Nor does spec/install_spec.lua (tag install): it builds and runs its
    # own plain tree from a copy of the sources, the same in both passes.
    MTL_BUSTED_ARGS="${MTL_BUSTED_ARGS:-} --exclude-tags=quality,install"
    run_busted "$asan_build" \
      PATH="$tmp/bin:$PATH" \
      ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1:quarantine_size_mb=16 \
      LSAN_OPTIONS="suppressions=$root/tools/openmpi.supp:print_suppressions=0" \
      UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      LUA_INIT="$init"
  fi
fi

if [[ "${MTL_NO_TSAN:-0}" != 1 ]]; then
  # ThreadSanitizer on the serving test alone: libmtlserve runs one LuaJIT
  # state per thread over shared tables and weights. Without MPI (one rank).
  tsan_build=${MTL_TSAN_BUILD_DIR:-build-tsan}
  t0=$SECONDS
  say "build $tsan_build (-fsanitize=thread, test_serve_api only)"
  if cmake -S . -B "$tsan_build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMTL_WERROR=ON -DMTL_MPI=OFF \
       -DCMAKE_C_FLAGS=-fsanitize=thread -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=thread \
       -DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=thread >"$tmp/cmake.log" 2>&1 &&
     make -C "$tsan_build" -j"$jobs" --no-print-directory test_serve_api >"$tmp/make.log" 2>&1; then
    if TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" "$tsan_build/test_serve_api" >"$tmp/tsan.log" 2>&1; then
      passed=$((passed + 1))
      say "tsan test_serve_api: passed ($((SECONDS - t0)) s with the build)"
    else
      cat "$tmp/tsan.log" >&2
      failed=$((failed + 1))
      say "tsan test_serve_api: FAILED"
    fi
  else
    cat "$tmp/cmake.log" "$tmp/make.log" >&2
    say "build of $tsan_build FAILED"
    failed=$((failed + 1))
  fi
fi

say "total time $((SECONDS - start)) s"
echo "$passed passed, $failed failed"
((failed == 0))
