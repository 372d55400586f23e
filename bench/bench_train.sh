#!/usr/bin/env bash
# Data-parallel training speed (docs/BENCHMARKS.md, "train"): bench-32 (configs/bench.yaml's flow,
# standard-normal base) trained by `fieldflow train` with a global batch of 8 at 1 rank x 1 thread
# and at 2 ranks x 1 thread, then PyTorch's DistributedDataParallel peer
# (../shared/peers/torch_ddp_realnvp3d.py: gloo, the same network and global batch, 1 and 2
# processes), all in one invocation. Prints the median step times, the allreduce time per step,
# fieldflow's parallel efficiency (target >= 0.9) and the DDP / fieldflow step ratio (target >= 1.5).
#
#   bench/bench_train.sh [BIN] [STEPS]    (default build/fieldflow, 23 steps: median after 3)
# Environment: FIELDFLOW_PEERS (folder of the peer scripts, default ../shared/peers beside the
# checkout), BENCH_DATA (a stack of >= 8 fields of 32^3 to train on instead of 16 fresh small
# simulations; the figures time steps, not what they learn).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$here/build/fieldflow}
steps=${2:-23}
peer=${FIELDFLOW_PEERS:-$here/../shared/peers}/torch_ddp_realnvp3d.py
[ -f "$peer" ] || { echo "bench_train: no DDP peer at $peer (set FIELDFLOW_PEERS)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1

data=${BENCH_DATA:-}
if [ -z "$data" ]; then
  "$bin" simulate "$here/configs/simulate.yaml" --set output_dir="$tmp/sims" \
    --set simulation.particles_per_side=32 --set simulation.steps=5 --set sets.train.count=16 \
    --set sets.test.count=0 --set snapshots.write=false > /dev/null
  data=$tmp/sims/train.h5
fi
# bench-32 exactly (configs/bench.yaml), batch 8; validation, checksums and checkpoints are out of
# the timed steps (the medians are of step times).
yaml=$tmp/train.yaml
{ cat "$here/configs/bench.yaml"
  echo "data: {train: $data, validation_fraction: 0}"
  echo "train: {steps: $steps, batch: 8, warmup_steps: 0, checkpoint_every: 100000,"
  echo "        validate_every: 100000, check_every: 100000, print_every_s: 1000, report: false}"
} > "$yaml"

# "median step 0.123 s, allreduce 1.23 ms/step" of train's summary line
summary() { sed -En 's/.*median step ([0-9.]+) s, allreduce ([0-9.]+) ms.*/\1 \2/p' "$1"; }
OMP_NUM_THREADS=1 "$bin" train "$yaml" --set train.run_dir="$tmp/one" > "$tmp/one.log"
read -r one _ <<< "$(summary "$tmp/one.log")"
mpirun -np 2 -x OMP_NUM_THREADS=1 "$bin" train "$yaml" --set train.run_dir="$tmp/two" > "$tmp/two.log"
read -r two allreduce <<< "$(summary "$tmp/two.log")"
warmup=$(( steps > 6 ? 3 : 1 ))
peer_out=$(/usr/bin/python3 "$peer" --procs 2 --threads 1 --batch 8 --steps "$steps" --warmup "$warmup")
ddp_one=$(printf '%s\n' "$peer_out" | awk '$1 == "ddp_1proc_step_s" { print $2 }')
ddp_two=$(printf '%s\n' "$peer_out" | awk '$1 == "ddp_train_step_s" { print $2 }')

echo "machine: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cores), load average $(cut -d' ' -f1-3 /proc/loadavg); $("$bin" --version); $steps steps"
echo "| figure | fieldflow | PyTorch DDP (gloo) |"
echo "|---|---|---|"
echo "| step, 1 rank x 1 thread, batch 8 (s) | $one | $ddp_one |"
echo "| step, 2 ranks x 1 thread, global batch 8 (s) | $two | $ddp_two |"
awk -v a="$one" -v b="$two" -v c="$ddp_one" -v d="$ddp_two" -v r="$allreduce" 'BEGIN {
  printf "| parallel efficiency t1 / (2 t2) (target >= 0.9) | %.3f %s | %.3f |\n", a / (2 * b), (a / (2 * b) >= 0.9 ? "PASS" : "FAIL"), c / (2 * d)
  printf "| allreduce per step, 2 ranks (ms) | %s | - |\n", r
  printf "| DDP step / fieldflow step at 2 ranks (target >= 1.5) | %.2fx %s | |\n", d / b, (d / b >= 1.5 ? "PASS" : "FAIL")
}'
