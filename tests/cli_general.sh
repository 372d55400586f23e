#!/usr/bin/env bash
# The command line as a whole: help, version, and refusal of unknown subcommands and options.
source "$(dirname "$0")/lib.sh" "$@"
check help zero "Subcommands:" -- "$bin" --help
check version zero "fieldflow [0-9.]+ \(SIMD target [A-Z0-9_]+\)" -- "$bin" --version
# FIELDFLOW_SIMD_TARGET forces the dispatched target; the scalar fallback exists everywhere on x86.
if [ "$(uname -m)" = x86_64 ]; then
  check simd-forced zero "SIMD target SCALAR" -- env FIELDFLOW_SIMD_TARGET=SCALAR "$bin" --version
fi
check simd-unknown nonzero "^fieldflow: FIELDFLOW_SIMD_TARGET=AVX9000: SIMD target not available" \
  -- env FIELDFLOW_SIMD_TARGET=AVX9000 "$bin" --version
check no-subcommand nonzero "subcommand" -- "$bin"
check unknown-subcommand nonzero "juggle" -- "$bin" juggle
check paint-help zero "--grid" -- "$bin" paint --help
check pk-help zero "--kbin" -- "$bin" pk --help
check paint-unknown-option nonzero "--frobnicate" -- "$bin" paint x.hdf5 --grid 8 --out y.h5 --frobnicate
finish
