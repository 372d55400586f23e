#!/usr/bin/env bash
# The bench-32 flow benchmark (../shared/BENCH.md): fieldflow's C++ engine and the PyTorch peer,
# run back to back in one invocation at 1 and 2 threads, then the ratios PyTorch / fieldflow
# (> 1 means fieldflow is faster) and the peak resident memory of each process. The density
# gradient is compared twice: fieldflow's logp_grad_s also computes the parameter gradients, its
# logp_input_grad_s only d log p / dx, which is what the peer's logp_grad_s
# (torch.autograd.grad with respect to the input) computes.
#
#   bench/run_flow_bench.sh [BENCH_BINARY] [extra bench_flow arguments...]
#   (default binary: build/bench/bench_flow; the peer runs under /usr/bin/python3)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$here")"
bin="${1:-$repo/build/bench/bench_flow}"
shift || true
peer="$repo/../shared/peers/torch_realnvp3d.py"
[ -x "$bin" ] || { echo "run_flow_bench.sh: $bin not built (cmake --build BUILD --target bench_flow)" >&2; exit 1; }
[ -f "$peer" ] || { echo "run_flow_bench.sh: PyTorch peer not found at $peer" >&2; exit 1; }
/usr/bin/python3 -c "import torch" 2>/dev/null || { echo "run_flow_bench.sh: /usr/bin/python3 has no torch (apt-get install python3-torch libopenblas0-openmp)" >&2; exit 1; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
value() { awk -v k="$1" '$1 == k { print $2 }' "$2" | tail -1; }

echo "machine: $(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2}'), $(nproc) cores; $(date -u '+%Y-%m-%d %H:%M UTC')"
for t in 1 2; do
  echo "== threads $t: fieldflow"
  OMP_NUM_THREADS=$t /usr/bin/time -f "max_rss_kb %M" -o "$tmp/ff_rss_$t" "$bin" --threads "$t" "$@" | tee "$tmp/ff_$t"
  echo "== threads $t: PyTorch peer"
  /usr/bin/time -f "max_rss_kb %M" -o "$tmp/pt_rss_$t" /usr/bin/python3 "$peer" --threads "$t" | tee "$tmp/pt_$t"
done

echo
echo "| threads | figure | fieldflow | PyTorch | PyTorch / fieldflow |"
echo "|---|---|---|---|---|"
for t in 1 2; do
  for k in train_step_s logp_grad_s logp_input_grad_s; do
    f=$(value "$k" "$tmp/ff_$t")
    p=$(value "${k/logp_input_grad_s/logp_grad_s}" "$tmp/pt_$t")
    awk -v t="$t" -v k="$k" -v f="$f" -v p="$p" 'BEGIN { printf "| %s | %s | %.4f | %.4f | %.2fx |\n", t, k, f, p, p / f }'
  done
  f=$(value max_rss_kb "$tmp/ff_rss_$t")
  p=$(value max_rss_kb "$tmp/pt_rss_$t")
  awk -v t="$t" -v f="$f" -v p="$p" 'BEGIN { printf "| %s | peak RSS (MiB, whole process) | %.0f | %.0f | %.2fx |\n", t, f / 1024, p / 1024, p / f }'
done
