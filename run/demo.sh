#!/usr/bin/env bash
# The main job in one command, on the built-in data (configs/demo/, README "The demo"):
#  1/4 simulate 32 training and 8 test fields (32^3, 128 Mpc/h, z = 0), shared over MPI ranks;
#  2/4 train the flow with mpirun -np <cores> (stops with a checkpoint after 14 minutes);
#  3/4 denoise test fields 0..7: Wiener filter, flow MAP and their combination, and posterior
#      samples (HMC, one chain per rank) of each;
#  4/4 the training and reconstruction reports, then the headline numbers.
# Usage: run/demo.sh [--quick] [--fresh] [--no-build] [--checkpoint FILE] [--also FILE]
#   --quick       smoke test of every stage in < 3 minutes (tiny counts; numbers not meaningful),
#                 outputs in out/demo-quick/ instead of out/demo/
#   --fresh       delete the outputs first and start over
#   --no-build    skip run/deps.sh and run/build.sh; use $FIELDFLOW_BIN (default build/fieldflow)
#   --checkpoint  denoise with this flow checkpoint (e.g. a longer-trained model under models/)
#                 instead of the one stage 2 trains; the training stage and report are skipped
#   --also        denoise the same test fields with this checkpoint as well (e.g. the
#                 longer-trained models/flow32_science.h5): its own results folder and
#                 reconstruction report, each report naming the flow that made it
# Idempotent: a rerun reuses finished stages (simulate skips finished simulations, train continues
# from its checkpoint, denoise and reports are skipped when newer than their inputs). Ctrl-C at any
# stage: the next run continues.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0 fresh=0 build=1 checkpoint="" also=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --fresh) fresh=1 ;;
    --no-build) build=0 ;;
    --checkpoint) checkpoint=${2:?--checkpoint needs a file}; shift ;;
    --also) also=${2:?--also needs a file}; shift ;;
    -h | --help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "fieldflow demo: $1: unknown option (see run/demo.sh --help)" >&2; exit 2 ;;
  esac
  shift
done

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
cores=$(nproc)
if [ "$build" = 1 ]; then
  echo "== setup: dependencies (run/deps.sh) and a portable Release build (run/build.sh)"
  bash run/deps.sh
  bash run/build.sh build -DFIELDFLOW_NATIVE=OFF
fi
ff=${FIELDFLOW_BIN:-build/fieldflow}
[ -x "$ff" ] || { echo "fieldflow demo: $ff: no such executable (build first or set FIELDFLOW_BIN)" >&2; exit 2; }
for c in "$checkpoint" "$also"; do
  [ -z "$c" ] || [ -f "$c" ] || { echo "fieldflow demo: $c: no such checkpoint" >&2; exit 2; }
done

out=out/demo
fields=8
sim=() train=() denoise=() rep_train=() py=/usr/bin/python3
if [ "$quick" = 1 ]; then
  # Every stage once, as small as it runs: 16^3 particles, 6 PM steps, 8+2 fields, 6 training
  # steps of a narrow flow, 2 denoised fields with few prior samples and MAP iterations.
  out=out/demo-quick
  fields=2
  sim=(--set simulation.particles_per_side=16 --set simulation.steps=6
       --set sets.train.count=8 --set sets.test.count=2)
  train=(--set train.steps=6 --set train.batch=2 --set train.warmup_steps=2
         --set train.checkpoint_every=3 --set train.validate_every=3 --set train.print_every_s=2
         --set train.time_limit_minutes=2 --set data.validation_fraction=0.25
         --set 'flow.levels.hidden_checkerboard=[4, 4, 4]' --set 'flow.levels.hidden_channel=[4, 4, 0]')
  denoise=(--set denoise.prior_samples=2 --set denoise.map.max_iterations=2
           --set denoise.posterior.samples=4 --set denoise.posterior.warmup=4
           --set denoise.posterior.leapfrog_steps=2 --set denoise.posterior.thin=1)
  rep_train=(--set report.samples.count=2 --set report.inputs.max_fields=2)
fi
# Every path of configs/demo/ starts with out/demo/: move them to $out.
paths=(--set output_dir="$out/simulations")
sims=$out/simulations
run_dir=$out/train
[ "$fresh" = 1 ] && { echo "== --fresh: removing $out"; rm -rf "$out"; }
mkdir -p "$out/denoise" "$out/report"

# True when $1 exists and is newer than every other argument.
fresh_than() {
  local target=$1; shift
  [ -e "$target" ] || return 1
  for f in "$@"; do [ "$target" -nt "$f" ] || return 1; done
}
stamp() { date -u +%H:%M:%S; }
t0=$SECONDS

echo "== stage 1/4 $(stamp): simulate training and test fields (mpirun -np $cores; finished ones are reused)"
mpirun -q -np "$cores" "$ff" simulate configs/demo/simulate.yaml "${paths[@]}" "${sim[@]}"

have_train=0
"$ff" train --help > /dev/null 2>&1 && have_train=1
if [ -n "$checkpoint" ]; then
  echo "== stage 2/4 $(stamp): skipped: denoising with the given checkpoint $checkpoint"
elif [ "$have_train" = 0 ]; then
  echo "fieldflow demo: $ff has no 'train' command (the trainer of issue 9 is not in this build):" \
    "stages 2-4 need a trained flow; rerun with a build that has it, or with --checkpoint FILE" >&2
  exit 3
else
  echo "== stage 2/4 $(stamp): train (mpirun -np $cores fieldflow train; reruns continue from $run_dir/checkpoint.h5)"
  mpirun -q -np "$cores" "$ff" train configs/demo/train.yaml --set data.train="$sims/train.h5" \
    --set train.run_dir="$run_dir" "${train[@]}"
  checkpoint=$run_dir/best.h5
  [ -f "$checkpoint" ] || checkpoint=$run_dir/checkpoint.h5
fi

# Denoises test fields 0..fields-1 with checkpoint $1 into folder $2 and writes the reconstruction
# report $3 of them; sets `summaries` to their *_summary.json files.
reconstruct() {
  local ckpt=$1 dir=$2 rec_dir=$3 results=() i res args list
  mkdir -p "$dir"
  for ((i = 0; i < fields; i++)); do
    res=$dir/field_$i.h5
    results+=("$res")
    # simulate re-stacks test.h5 on every run: compare with the simulation's own grid instead.
    if fresh_than "${res%.h5}_summary.json" "$ckpt" "$sims"/test/sim_"$(printf %04d "$i")"/delta_*.h5 \
      configs/demo/denoise.yaml "$ff"; then
      echo "field $((i + 1))/$fields: $res is up to date"
      continue
    fi
    echo "field $((i + 1))/$fields ($(stamp), $((SECONDS - t0)) s so far): $res"
    args=(configs/demo/denoise.yaml --set denoise.checkpoint="$ckpt"
          --set denoise.truth.grid="$sims/test.h5" --set denoise.truth.index="$i"
          --set denoise.out="$res" "${denoise[@]}")
    mpirun -q -np "$cores" "$ff" denoise "${args[@]}"  # the posterior's chains, one per rank
  done
  list=$(printf '"%s", ' "${results[@]}")
  summaries=("${results[@]/%.h5/_summary.json}")
  if fresh_than "$rec_dir/index.html" "${summaries[@]}" configs/demo/report_reconstruction.yaml; then
    echo "reconstruction report: up to date"
  else
    "$ff" report configs/demo/report_reconstruction.yaml --set report.out="$rec_dir" \
      --set "report.inputs.results=[${list%, }]"
  fi
}

echo "== stage 3/4 $(stamp): denoise test fields 0..$((fields - 1)) (WF, flow MAP, combined, posterior samples) and their report"
rec_dir=$out/report/reconstruction
reconstruct "$checkpoint" "$out/denoise" "$rec_dir"
main_summaries=("${summaries[@]}")
if [ -n "$also" ]; then
  also_name=$(basename "${also%.h5}")
  also_rec_dir=$out/report/reconstruction_$also_name
  echo "== stage 3/4 $(stamp), --also: the same fields with $also"
  reconstruct "$also" "$out/denoise_$also_name" "$also_rec_dir"
  also_summaries=("${summaries[@]}")
fi

echo "== stage 4/4 $(stamp): training report"
train_dir=""
if [ -f "$run_dir/log.csv" ] && [ "$checkpoint" = "$run_dir/best.h5" -o "$checkpoint" = "$run_dir/checkpoint.h5" ]; then
  train_dir=$out/report/training
  if fresh_than "$train_dir/index.html" "$checkpoint" "$run_dir/checkpoint.h5" configs/demo/report_training.yaml; then
    echo "training report: up to date"
  else
    "$ff" report configs/demo/report_training.yaml --set report.out="$train_dir" \
      --set report.inputs.run_dir="$run_dir" --set "report.inputs.fields=[\"$sims/test.h5\"]" \
      --set report.inputs.gaussian_fields="$sims/train.h5" "${rep_train[@]}"
  fi
fi

echo "== done in $((SECONDS - t0)) s$([ "$quick" = 1 ] && echo ' (--quick: a smoke test, the numbers mean nothing)')"
[ -n "$train_dir" ] && echo "training report:       $train_dir/index.html"
echo "reconstruction report: $rec_dir/index.html (flow $checkpoint)"
[ -n "$also" ] && echo "reconstruction report: $also_rec_dir/index.html (flow $also)"
headline() {
"$py" - "$@" << 'EOF'
import csv, json, os, sys
train_dir, summaries = sys.argv[1], sys.argv[2:]
if train_dir:
    rows = list(csv.DictReader(open(os.path.join(train_dir, "nll.csv"))))
    mean = lambda key: sum(float(r[key]) for r in rows) / len(rows)
    print(f"test NLL over {len(rows)} test fields (bits/voxel of delta, lower is better): "
          f"flow {mean('flow_bpv'):.4f}, Gaussian {mean('gaussian_bpv'):.4f}")
heads = [json.load(open(s))["headline"] for s in summaries]
lo, hi = heads[0]["band_hmpc"]
print(f"small scales, k = {lo:.3f}..{hi:.3f} h/Mpc (k_N/2..k_N), mean over {len(heads)} test fields:")
print(f"  {'estimate':10s} {'r(k)':>8s} {'P_res (Mpc/h)^3':>16s} {'vs WF':>7s}")
for name in ("wf", "map", "combined"):
    m = lambda key: sum(h[key] for h in heads) / len(heads)
    ratio = "" if name == "wf" else f"{m(name + '_residual_vs_wf'):7.3f}"
    print(f"  {name:10s} {m(name + '_r'):8.4f} {m(name + '_residual_pk'):16.4g} {ratio}")
post = [h for h in heads if "posterior_mean_r" in h]
if post:  # against the WF of the same fields
    m = lambda key: sum(h[key] for h in post) / len(post)
    print(f"  {'posterior':10s} {m('posterior_mean_r'):8.4f} {m('posterior_mean_residual_pk'):16.4g} "
          f"{m('posterior_mean_residual_vs_wf'):7.3f}  (mean of a short HMC run, {len(post)} of "
          f"{len(heads)} fields)")
    cover = [json.load(open(s)).get("posterior") for s in summaries]
    cover = [c for c in cover if c and "coverage68" in c]
    if cover:
        c = lambda key: sum(x[key] for x in cover) / len(cover)
        rhat = [x["pk_rhat_max"] for x in cover if x.get("pk_rhat_max") is not None]
        print(f"  posterior calibration: truth inside the 68%/95% intervals in {100 * c('coverage68'):.0f}%/"
              f"{100 * c('coverage95'):.0f}% of voxels, largest split R-hat of P(k) "
              f"{f'{max(rhat):.2f}' if rhat else 'n/a (too few draws)'} (1 = mixed)")
EOF
}
headline "$train_dir" "${main_summaries[@]}"
if [ -n "$also" ]; then
  echo "with the flow $also:"
  headline "" "${also_summaries[@]}"
fi
