#!/usr/bin/env bash
# Installs the Debian packages mtl needs (only those missing, so a re-run is
# fast) and builds mtl (CMake, Release) into build/.
#
#   bash tools/setup.sh              packages + build into build/
#   bash tools/setup.sh --deps-only  packages only
#
# Environment: MTL_BUILD_DIR (default: build), MTL_CMAKE_ARGS (extra cmake
# arguments), MTL_JOBS (parallel make jobs, default: number of cores).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

packages=(
  luajit libluajit-5.1-dev libopenblas-dev
  lua-lpeg lua-busted lua-cjson lua-argparse
  libxxhash-dev zlib1g-dev pkg-config cmake gcc libc6-dev make
  python3 python3-numpy libedit2 lua-sql-sqlite3
  openmpi-bin libopenmpi-dev
)

# installing and packaging (docs/install.md): luarocks make in spec/install_spec.lua;
# checking ONNX exports (docs/export.md): the ONNX checker, and Node.js with npm
# for ONNX Runtime (the npm package is installed below)
packages+=(luarocks python3-onnx)
# the libFuzzer engine of tools/fuzz.sh (docs/fuzzing.md; spec/fuzz_spec.lua runs it):
# clang and its libFuzzer and sanitizer runtimes (only recommended by clang)
packages+=(clang libclang-rt-14-dev)
command -v node >/dev/null || packages+=(nodejs)
command -v npm >/dev/null || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install ${missing[*]}" >&2; exit 1; }
    sudo=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  # (no recommends: gcc only recommends libc6-dev, listed above)
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

build=${MTL_BUILD_DIR:-build}

# ONNX Runtime for Node.js, into a folder of the build tree (spec/onnx):
# --ignore-scripts, since the CPU library ships in the package and its install
# script only fetches GPU files.
if [[ ! -d "$build/node/node_modules/onnxruntime-node" ]]; then
  echo "setup: installing onnxruntime-node into $build/node" >&2
  mkdir -p "$build/node"
  (cd "$build/node" && npm install --ignore-scripts --no-audit --no-fund --silent onnxruntime-node >/dev/null)
fi

[[ "${1:-}" == "--deps-only" ]] && exit 0

# shellcheck disable=SC2086
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release ${MTL_CMAKE_ARGS:-} >/dev/null
make -C "$build" -j"${MTL_JOBS:-$(nproc)}" --no-print-directory >/dev/null
