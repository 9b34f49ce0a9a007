#!/usr/bin/env bash
# The libFuzzer engine of tools/fuzz.sh (MTL_FUZZ_ENGINE=libfuzzer; its header
# says how to run it):
#   tools/fuzz/libfuzzer.sh [runs_per_target=10000000] [targets] [max_seconds_per_target]
# Prints one line per target: executions, executions a second (libFuzzer's,
# over the wall time), wall and CPU seconds, libFuzzer's cov: and ft: and the findings (files in findings/<target>/).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
runs=${1:-10000000}
only=${2:-csv,gz,ff,opts,pbtxt,override,luacfg,ckpt,modeldir}
seconds=${3:-0}
dir=${MTL_FUZZ_DIR:-/tmp/mtl-fuzz-lf}
lf=${MTL_LF_BUILD_DIR:-build-libfuzzer}
[[ "$lf" = /* ]] || lf="$root/$lf"
mkdir -p "$dir/seeds" "$dir/logs"
export MTL_HOME="$root" MTL_FUZZ_DIR="$dir" MTL_FUZZ_REPO="$root"
export MTL_FUZZ_ENTRY="$root/tools/fuzz/libfuzzer.lua" MTL_FUZZ_SEEDS="$dir/seeds"
export LUA_PATH="$root/lua/?.lua;$root/lua/?/init.lua;$root/?.lua;;"
shm=$(mktemp -d /dev/shm/mtl-fuzz-lf.XXXXXX)
trap 'rm -rf "$shm"' EXIT

# MTL_FUZZ_REPLAY=<gcov build> (tools/fuzz.sh with MTL_FUZZ_COVERAGE=1): the
# corpora and seeds of the targets through that build, each input once
if [[ -n "${MTL_FUZZ_REPLAY:-}" ]]; then
  replay="$MTL_FUZZ_REPLAY/mtl-fuzz-replay"
  # shellcheck disable=SC2046
  gcc -DMTL_FUZZ_REPLAY -O1 -Wall -Wextra "$root/tools/fuzz/libfuzzer.c" $(pkg-config --cflags --libs luajit) -o "$replay"
  export MTL_BUILD="$MTL_FUZZ_REPLAY" LUA_CPATH="$MTL_FUZZ_REPLAY/lib/?.so;;"
  for t in ${only//,/ }; do
    n=$(find "$dir/corpus/$t" "$dir/seeds/lf_$t" -type f 2>/dev/null | wc -l)
    find "$dir/corpus/$t" "$dir/seeds/lf_$t" -type f -print0 2>/dev/null |
      MTL_FUZZ_TARGET=$t MTL_FUZZ_SHM=$shm xargs -0 -r -n 2000 nice -n 19 "$replay"
    echo "replayed $n inputs of $t"
  done
  exit 0
fi

command -v clang >/dev/null || { echo "tools/fuzz.sh: MTL_FUZZ_ENGINE=libfuzzer needs clang (tools/setup.sh installs it)" >&2; exit 2; }

san="-fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all -fno-omit-frame-pointer"
if [[ ! -f "$lf/CMakeCache.txt" ]]; then
  echo "== configuring $lf (clang, -fsanitize=fuzzer-no-link + MTL_SANITIZE)" >&2
  CC=clang cmake -S "$root" -B "$lf" -DCMAKE_BUILD_TYPE=Release -DMTL_MPI=OFF -DMTL_SANITIZE=ON \
    -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link >/dev/null
fi
make -C "$lf" -j"$(nproc)" --no-print-directory mtl_lua >/dev/null
bin="$lf/mtl-libfuzzer"
if [[ ! -x "$bin" || "$root/tools/fuzz/libfuzzer.c" -nt "$bin" ]]; then
  # shellcheck disable=SC2086
  clang -fsanitize=fuzzer $san -O1 -g -Wall -Wextra "$root/tools/fuzz/libfuzzer.c" \
    $(pkg-config --cflags --libs luajit) -rdynamic -o "$bin"
fi

export MTL_BUILD="$lf" LUA_CPATH="$lf/lib/?.so;;"
export ASAN_OPTIONS=allocator_may_return_null=1:detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# the seed inputs: gen_seeds.lua through the plain build when there is one
# (mtl.core of $lf needs the libFuzzer driver's runtime), then the corpus
plain=${MTL_BUILD_PLAIN:-$root/build}
[[ -x "$plain/mtl" ]] || { echo "tools/fuzz.sh: the seeds are written by $plain/mtl (build it first)" >&2; exit 2; }
export MTL_FUZZ_MTL="$plain/mtl" # fuzz.lua --corpus reads the seeds as the batch mode does
(cd "$dir" && MTL_BUILD= LUA_PATH= LUA_CPATH= "$plain/mtl" "$root/tools/fuzz/gen_seeds.lua" >/dev/null)

declare -A maxlen=([csv]=8192 [gz]=8192 [ff]=4096 [opts]=4096 [pbtxt]=8192 [override]=512 [luacfg]=2048
  [ckpt]=2048 [modeldir]=6144)
printf '%-9s %12s %8s %8s %8s %6s %6s %s\n' target executions exec/s seconds cpu_s cov ft findings
status=0
for t in ${only//,/ }; do
  [[ -n "${maxlen[$t]:-}" ]] || { echo "unknown target $t" >&2; exit 2; }
  mkdir -p "$dir/corpus/$t" "$dir/findings/$t" "$dir/seeds/lf_$t"
  rm -f "$dir/seeds/lf_$t"/*
  luajit "$root/tools/fuzz/fuzz.lua" --corpus "$dir/seeds/lf_$t" "$t" >/dev/null
  dict=()
  case $t in csv|gz|ff|opts) dict=(-dict="$root/tools/fuzz/csv.dict") ;; pbtxt|override) dict=(-dict="$root/tools/fuzz/$t.dict") ;; esac
  lines=
  case $t in pbtxt|override|modeldir) lines=1 ;; esac
  rm -rf "${shm:?}"/*
  start=$(date +%s)
  code=0
  # the CPU seconds too: the fuzzer may be stopped for a while (SIGSTOP) on a shared machine
  TIMEFORMAT='%U %S'
  # shellcheck disable=SC2086
  { time MTL_FUZZ_TARGET=$t MTL_FUZZ_SHM=$shm MTL_FUZZ_LUA_LINES=$lines nice -n 19 "$bin" -runs="$runs" \
    -max_total_time="$seconds" -max_len="${maxlen[$t]}" -timeout=120 -report_slow_units=120 -rss_limit_mb=3072 \
    -reduce_inputs=1 -detect_leaks=0 -print_final_stats=1 -artifact_prefix="$dir/findings/$t/" "${dict[@]}" \
    ${MTL_FUZZ_LF_ARGS:-} "$dir/corpus/$t" "$dir/seeds/lf_$t" >"$dir/logs/$t.log" 2>&1 || code=$?; } 2>"$dir/logs/$t.cpu"
  wall=$(($(date +%s) - start))
  cpu=$(awk '{ printf "%d", $1 + $2 }' "$dir/logs/$t.cpu")
  log="$dir/logs/$t.log"
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$( (grep -o 'cov: [0-9]*' "$log" || true) | tail -1 | cut -d' ' -f2)
  ft=$( (grep -o 'ft: [0-9]*' "$log" || true) | tail -1 | cut -d' ' -f2)
  # a slow unit (over 120 s) without a timeout is a pause (SIGSTOP), not a finding
  nfind=$(find "$dir/findings/$t" -type f ! -name 'slow-unit-*' | wc -l)
  printf '%-9s %12s %8s %8s %8s %6s %6s %s\n' "$t" "${execs:-?}" "${rate:-?}" "$wall" "$cpu" "${cov:-?}" "${ft:-?}" "$nfind"
  if [[ $code -ne 0 || $nfind -gt 0 ]]; then
    status=1
    echo "   $t: libFuzzer exit $code; $log, $dir/findings/$t/" >&2
  fi
done
exit $status
