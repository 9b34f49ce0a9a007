#!/usr/bin/env bash
# Ranks on separate "hosts" of one machine (docs/distributed.md, "The cost
# model"): N network namespaces, each with a veth link to a bridge in a
# namespace of its own, addresses 10.77.0.1..N (the bridge 10.77.0.254), each
# rank's sending rate shaped by tc's token bucket (tbf) to RATE; Open MPI over
# TCP between them (no shared memory). mpirun runs in the bridge's namespace
# and starts one orted per rank namespace through a launch agent that is
# `ip netns exec` instead of ssh. Every rate runs bench/dist_bench.lua (the
# collectives at a training step's sizes) and `mtl bench` (the data-parallel
# training step: step time and bytes per step from its JSON). Everything it
# creates is removed at the end (trap), also on failure or Ctrl-C.
#   sudo bash bench/dist_netns.sh [N=2] [RATES="10gbit 25gbit"] [extra mtl bench flags...]
# Needs root (ip netns, tc), iproute2 with the tbf qdisc, Open MPI; this
# kernel has no netem, so the links add no latency: the cost model adds it.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
n=${1:-2}
rates=${2:-"10gbit 25gbit"}
shift $(( $# < 2 ? $# : 2 ))
mtl="$root/build/mtl"
prefix=mtlnet          # names of everything made here: namespaces, links
net=10.77.0
tmp=$(mktemp -d)

if [[ $(id -u) != 0 ]]; then echo "dist_netns.sh: needs root (ip netns, tc)" >&2; exit 2; fi
for tool in ip tc mpirun; do
  command -v "$tool" >/dev/null || { echo "dist_netns.sh: '$tool' is missing (apt-get install iproute2 openmpi-bin)" >&2; exit 2; }
done

cleanup() {
  for ((k = 0; k < n; k++)); do ip netns del "${prefix}$k" 2>/dev/null || true; done
  ip netns del "${prefix}br" 2>/dev/null || true # (its links go with it)
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# ---- the network ---------------------------------------------------------------------------
ip netns add "${prefix}br"
ip -n "${prefix}br" link add br0 type bridge
ip -n "${prefix}br" addr add "$net.254/24" dev br0
ip -n "${prefix}br" link set br0 up
ip -n "${prefix}br" link set lo up
for ((k = 0; k < n; k++)); do
  ns="${prefix}$k"
  ip netns add "$ns"
  ip link add "${prefix}v$k" type veth peer name "${prefix}p$k"
  ip link set "${prefix}v$k" netns "$ns"
  ip link set "${prefix}p$k" netns "${prefix}br"
  ip -n "$ns" link set "${prefix}v$k" name eth0
  ip -n "$ns" addr add "$net.$((k + 1))/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
  ip -n "${prefix}br" link set "${prefix}p$k" master br0
  ip -n "${prefix}br" link set "${prefix}p$k" up
done

# The launch agent: mpirun calls it as `agent HOST COMMAND...` (in place of
# ssh); HOST 10.77.0.K runs COMMAND in namespace K-1, with a TMPDIR of its
# own (the "hosts" share one /tmp and one host name, and Open MPI's session
# directories are named by the host: without it the orteds' mkdirs collide).
cat >"$tmp/agent" <<EOF
#!/bin/sh
host=\$1; shift
k=\${host##*.}
mkdir -p "$tmp/host\$k"
exec ip netns exec ${prefix}\$((k - 1)) env TMPDIR="$tmp/host\$k" sh -c "\$*"
EOF
chmod +x "$tmp/agent"
hosts=""
for ((k = 1; k <= n; k++)); do hosts+="${hosts:+,}$net.$k:1"; done

mpirun=(ip netns exec "${prefix}br" mpirun --allow-run-as-root -np "$n" --host "$hosts"
        --mca plm_rsh_agent "$tmp/agent" --mca btl tcp,self --mca btl_tcp_if_include "$net.0/24"
        --mca oob_tcp_if_include "$net.0/24" --mca rtc ^hwloc)
# (rtc ^hwloc: the orteds, all on this machine, do not share hwloc's topology
# through a shared-memory segment; with it, an orted now and then crashed in
# hwloc_shmem_topology_write)

# The token bucket holds 4 MB: back-to-back collectives drain it and then go
# at the rate (measured within 1-4 % of bytes / rate at 250 and 500 Mbit/s);
# a bucket of 2 ms of the rate made every transfer 2-3 x slower than the rate
# on this loaded machine (the qdisc's timer). Between a training step's
# messages the bucket refills while the ranks compute, so mtl bench's
# communication time is a lower bound of a real link's.
shape() { # rate (tc's spelling: 500mbit, 10gbit): each rank's outgoing link
  for ((k = 0; k < n; k++)); do
    ip netns exec "${prefix}$k" tc qdisc replace dev eth0 root tbf rate "$1" burst 4mb latency 50ms
  done
}

echo "start: $(uptime)"
echo "$n ranks in namespaces ${prefix}0..$((n - 1)), $net.1..$n, a bridge in ${prefix}br"
for rate in $rates; do
  shape "$rate"
  echo "== link rate $rate per rank (tc tbf) =="
  ip netns exec "${prefix}0" tc qdisc show dev eth0 | sed 's/^/   /'
  (cd "$root" && "${mpirun[@]}" "$mtl" bench/dist_bench.lua --step) | sed 's/^/   /'
  line=$(cd "$root" && "${mpirun[@]}" "$mtl" bench --model mmoe --batch 1024 --threads 1 --quiet "$@" | tail -1)
  luajit -e '
    local d = require("cjson").decode(io.read("*l"))
    print(string.format("   mtl bench mmoe B1024: %.0f train ex/s, step %.2f ms, communication %.2f ms/step (%.1f %%), " ..
      "%d B dense + %d B sparse payload per step", d.train_examples_per_s, 1024 / d.train_examples_per_s * 1000,
      d.comm_ms_per_step, d.comm_percent_of_step, d.dense_bytes_per_step, d.sparse_bytes_per_step))' <<<"$line"
done
echo "end: $(uptime)"
