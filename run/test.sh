#!/usr/bin/env bash
# Installs every dependency, builds fieldflow and runs every test with ctest: the Release build
# (unit, MPI, command-line and Python tests), then the unit tests again under AddressSanitizer and
# UndefinedBehaviorSanitizer. Idempotent; run as root on Debian 12. Usage: run/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
stage() { echo "== $1 (at ${SECONDS} s)"; }
stage "dependencies"
bash run/deps.sh --test
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
jobs=$(nproc)
# ctest runs $jobs tests at once and each may start OpenMP threads: more threads than cores. With
# libgomp's default busy-waiting they spin against each other (one suite measured 16x slower);
# passive waiting yields the core instead.
export OMP_WAIT_POLICY=passive

stage "Release build and all tests"
bash run/build.sh build
ctest --test-dir build --output-on-failure -j "$jobs" --timeout 900

stage "Sanitizer build (ASan + UBSan) and the unit tests"
# -O1 -g1: half the compile time of -O2 -g under ASan, with line numbers in every report. Only
# what the unit tests need is built (target unit_tests: no benchmarks, no MPI tests).
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFIELDFLOW_SANITIZE=ON -DFIELDFLOW_BENCH=OFF \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG" "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG"
cmake --build build-asan -j "$jobs" --target unit_tests
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j "$jobs" -L unit --timeout 900
stage "done"
