#!/usr/bin/env bash
# Issue 7: the tests of everything the SIMD kernels feed (nn, flow, recon's Wiener filter, the
# particle mesh's read-out) pass with each Highway target this CPU has, forced one at a time
# through FIELDFLOW_SIMD_TARGET (core/simd.hpp).
# test_nn_simd compares the kernels themselves across targets; this runs the whole nn, flow, recon
# and particle-mesh suites per target.
source "$(dirname "$0")/lib.sh" "$@"
tests_dir="$(dirname "$bin")/tests"
# The best target is what every other test already runs with.
best=$("$bin" --version | sed -n 's/.*SIMD target \([A-Z0-9_]*\).*/\1/p')
[ -n "$best" ] || { echo "FAIL: fieldflow --version names no SIMD target"; exit 1; }
fail=0 targets=0
for target in SCALAR SSE4 AVX2 AVX3 NEON; do
  if [ "$target" = "$best" ]; then echo "$target: the default target, run by the other tests"; continue; fi
  if ! FIELDFLOW_SIMD_TARGET=$target "$bin" --version > /dev/null 2>&1; then
    echo "$target: not available on this CPU, skipped"
    continue
  fi
  targets=$((targets + 1))
  for t in "$tests_dir"/test_nn_conv "$tests_dir"/test_flow_* "$tests_dir"/test_recon "$tests_dir"/test_sim_pm; do
    [ -x "$t" ] || continue
    start=$(date +%s.%N)
    if FIELDFLOW_SIMD_TARGET=$target "$t" --gtest_brief=1 > "$tmp/log" 2>&1; then
      awk -v t="$target $(basename "$t")" -v a="$start" -v b="$(date +%s.%N)" \
        'BEGIN { printf "%s: passed in %.1f s\n", t, b - a }'
    else
      echo "FAIL: $target $(basename "$t")"; tail -30 "$tmp/log"; fail=1
    fi
  done
done
[ $targets -ge 1 ] || { echo "FAIL: no SIMD target besides $best could be forced"; fail=1; }
exit $fail
