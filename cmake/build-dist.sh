#!/bin/sh
# The distribution build: what the ABI baseline is made from and what CI checks, installs and
# packages. Release with debug info (abidw reads the types from DWARF; `cmake --install --strip`
# and the .deb strip it), prefix /usr for Debian's multiarch layout (stage elsewhere with
# `cmake --install DIR --prefix STAGE`), no tests, benchmarks or demo model.
#
# usage: cmake/build-dist.sh [BUILD_DIR]     (default build-dist, relative to the repository)
set -eu
cd "$(dirname "$0")/.."
dir=${1:-build-dist}
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS=-g -DCMAKE_CXX_FLAGS=-g \
    -DCMAKE_INSTALL_PREFIX=/usr \
    -DR2GEN_BUILD_TESTS=OFF -DR2GEN_BUILD_BENCH=OFF -DR2GEN_BUILD_DEMO=OFF
cmake --build "$dir" -j "$(nproc)"
