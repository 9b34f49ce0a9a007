#!/usr/bin/env bash
# The share of CPU time the hypervisor gave to others while a command ran
# (/proc/stat's "steal" column; 0 on bare metal). A benchmark that loses more
# than a few percent to it measured the host's load, not ours:
#   bench/cpu_steal.sh CMD...     runs CMD, then prints "steal: X.X % of CPU time (S s of T s)"
# or, from a script:  source bench/cpu_steal.sh; steal_start; ...; steal_report
steal_read() { awk '/^cpu /{ t = 0; for (i = 2; i <= 9; i++) t += $i; print $9, t }' /proc/stat; }
steal_start() { read -r _steal0 _total0 < <(steal_read); }
steal_report() {
  local s t
  read -r s t < <(steal_read)
  awk -v s=$((s - _steal0)) -v t=$((t - _total0)) -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "steal: %.1f %% of CPU time (%.1f s of %.1f s)\n", (t > 0 ? 100 * s / t : 0), s / hz, t / hz }'
}
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  steal_start
  status=0
  "$@" || status=$?
  steal_report
  exit $status
fi
