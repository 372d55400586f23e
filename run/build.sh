#!/usr/bin/env bash
# Configures and builds fieldflow. Usage: run/build.sh [BUILD_DIR] [extra cmake args...]
# Default: a Release build in build/, leaving the executable at build/fieldflow.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${1:-build}
shift || true
jobs=$(nproc)
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$build_dir" -j "$jobs"
