#!/usr/bin/env bash
# Issue 7's two machine-bound speed targets in one run, for measuring them on a new CPU (e.g. an
# AVX-512 node): the 3³ convolutions of bench-32 forward at >= 50% of the measured FMA peak at
# 2 threads, and one fd4 PM step at <= 3x its bare FFTs. Runs bench_flow --convs-only at 2, 1 and
# 2 threads, then bench_sim for ROUNDS rounds at 1 and 2 threads, and prints a summary with the
# medians. Run it on a quiet machine; the raw outputs stay in the log it names.
#
#   bench/issue7_targets.sh [BUILD_DIR (default build)] [ROUNDS (default 3)]
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$repo/build}"
rounds="${2:-3}"
for b in bench_flow bench_sim; do
  [ -x "$build/bench/$b" ] || { echo "issue7_targets.sh: $build/bench/$b not built" >&2; exit 1; }
done
log="$(mktemp /tmp/issue7_targets.XXXX.log)"
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

echo "machine: $(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2}'), $(nproc) cores;" \
  "$(date -u '+%Y-%m-%d %H:%M UTC'); load $(cut -d' ' -f1-3 /proc/loadavg); log $log"
for t in 2 1 2; do
  echo "== bench_flow convs, $t threads" >> "$log"
  OMP_NUM_THREADS=$t "$build/bench/bench_flow" --threads "$t" --convs-only >> "$log"
done
for r in $(seq "$rounds"); do
  for t in 1 2; do
    echo "== bench_sim round $r, $t threads" >> "$log"
    OMP_NUM_THREADS=$t "$build/bench/bench_sim" --repeat 40 >> "$log"
  done
done

# Summary: per bench_flow run the SIMD target, the aggregate and the 3³ shapes under 50%; per
# thread count the median PM ratio. ("16-> 2" is one field once the arrow's space goes.)
sed 's/-> */->/' "$log" | awk '
  /^== bench_flow/ { threads = $4; slow = "" }
  /simd_target/ { for (i = 1; i < NF; ++i) if ($i == "simd_target") target = $(i + 1) }
  /^conv3 n/ && $8 + 0 < 50 { slow = slow sprintf(" %s^3 %s %s;", $3, $4, $8) }
  /^conv3_fwd_all/ {
    printf "convs %s, %s thread(s): forward 3^3 all %s of peak; under 50%%:%s\n", target, threads,
      $4, slow == "" ? " none" : slow
  }'
for t in 1 2; do
  ratios=$(awk -v t="$t" '/^== bench_sim/ { on = ($5 == t) } on && /^fd4/ { print $8 }' "$log")
  echo "PM fd4 step / bare FFTs, $t thread(s): $(echo $ratios) (median $(echo "$ratios" | tr ' ' '\n' | median); target <= 3)"
done
echo "targets: convs >= 50% of peak at 2 threads; PM ratio <= 3"
