#!/usr/bin/env bash
# Issue 7's two machine-bound speed targets in one run, for measuring them on a new CPU (e.g. an
# AVX-512 node): the 3³ convolutions of bench-32 forward at >= 50% of the measured FMA peak at
# 2 threads, and one fd4 PM step at <= 3x its bare FFTs. Runs ROUNDS rounds of bench_flow
# --convs-only and bench_sim, each at 2 and 1 threads, and prints a summary with the medians over
# the rounds (a VM's neighbours can slow one shape of one run by 2x: the median of each shape's
# figures is what the summary compares with 50%). The raw outputs stay in the log it names.
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
for r in $(seq "$rounds"); do
  for t in 2 1; do
    echo "== bench_flow round $r, $t threads" >> "$log"
    OMP_NUM_THREADS=$t "$build/bench/bench_flow" --threads "$t" --convs-only >> "$log"
    echo "== bench_sim round $r, $t threads" >> "$log"
    OMP_NUM_THREADS=$t "$build/bench/bench_sim" --repeat 40 >> "$log"
  done
done

# Summary, per thread count: the forward 3³ aggregate's % of peak in each round and its median,
# and the 3³ shapes whose median is under 50%; then the PM ratios. ("16-> 2" is one field once
# the arrow's space goes.)
target=$(awk '/simd_target/ { for (i = 1; i < NF; ++i) if ($i == "simd_target") print $(i + 1) }' "$log" | head -1)
for t in 1 2; do
  figures=$(sed 's/-> */->/' "$log" | awk -v t="$t" '/^== / { on = ($2 == "bench_flow" && $5 == t) }
    on && /^conv3 n/ { print $3 "^3_" $4, $8 + 0 } on && /^conv3_fwd_all/ { print "all", $4 + 0 }')
  all=$(echo "$figures" | awk '$1 == "all" { print $2 }')
  slow=""
  for shape in $(echo "$figures" | awk '$1 != "all" { print $1 }' | sort -u); do
    m=$(echo "$figures" | awk -v s="$shape" '$1 == s { print $2 }' | median)
    awk -v m="$m" 'BEGIN { exit !(m < 50) }' && slow="$slow ${shape/_/ } $m%;"
  done
  echo "convs $target, $t thread(s): forward 3^3 all, % of peak: $(echo $all) (median $(echo "$all" | median)); shapes with median under 50%:${slow:- none}"
done
for t in 1 2; do
  ratios=$(awk -v t="$t" '/^== / { on = ($2 == "bench_sim" && $5 == t) } on && /^fd4/ { print $8 }' "$log")
  echo "PM fd4 step / bare FFTs, $t thread(s): $(echo $ratios) (median $(echo "$ratios" | tr ' ' '\n' | median); target <= 3)"
done
echo "targets: convs >= 50% of peak at 2 threads; PM ratio <= 3"
