#!/usr/bin/env bash
# The science check of issue 9 (docs/train.md "Science"): trains the flow on the training fields
# (a rerun continues the run folder), then on the test set, which is never used for training or
# for choosing the model:
#   - the test NLL in bits per voxel over delta of the trained flow (best.h5, chosen on the
#     validation loss), of the Gaussian with the measured P(k) (the identity flow over the
#     correlated base: zero training steps) and of the standard-normal base alone;
#   - P(k) and the one-point PDF of 64 samples at temperature 1 against the test fields, and the
#     same for the training fields in their place when TRAIN_SOURCES is one file (the score of
#     the training ensemble itself: the test set's own noise), with how often a perfect model
#     would pass the 5% check on this many test fields (run/pk_check_noise.py).
# Everything is printed and kept in RUN_DIR/science.txt.
#
#   run/train_science.sh CONFIG TRAIN_SOURCES TEST_H5 RUN_DIR [--set key=value ...]
#
# TRAIN_SOURCES is data.train (a file, stack or quoted glob). FIELDFLOW_BIN (default
# build/fieldflow) and RANKS (default: the number of cores) choose the binary and mpirun's ranks;
# SAMPLES (default 64) the number of samples; MEAN_TOL (default 0) their sample.mean_tolerance
# (> 0: the flow conditioned on the box's mean density, docs/flow.md), passed on to the
# calibration too. Then (unless CALIBRATE=0) it calibrates the trained
# flow on the training sources with run/calibrate.sh (K_MAX and CALIBRATE_SAMPLES pass on as its
# K_MAX and SAMPLES) into RUN_DIR/calibrated.h5 and checks that on the test set the same way.
# Example, the lead's science run (docs/train.md):
#   run/train_science.sh configs/train.yaml sims/train.h5 sims/test.h5 runs/science
# (sims/: `mpirun -np 2 build/fieldflow simulate configs/simulate.yaml --set output_dir=sims`)
set -euo pipefail
[ $# -ge 4 ] || { sed -n 2,25p "$0"; exit 2; }
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${FIELDFLOW_BIN:-$here/build/fieldflow}
ranks=${RANKS:-$(nproc)}
samples=${SAMPLES:-64}
mean_tol=${MEAN_TOL:-0}
config=$1 train_sources=$2 test_h5=$3 run=$4
shift 4
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
common=(--set data.train="$train_sources" "$@")
launch=("$bin")
[ "$ranks" -gt 1 ] && launch=(mpirun -q -np "$ranks" "$bin")
mkdir -p "$run"

echo "== training ($ranks rank(s)) into $run"
"${launch[@]}" train "$config" "${common[@]}" --set train.run_dir="$run"
# Baselines over the same training statistics: zero steps leave the couplings at the identity
# (zero-initialised last convolutions); no actnorm or mixing, so the flow is the identity exactly.
echo "== baselines (zero steps)"
identity=(--set train.steps=0 --set train.report=false --set flow.actnorm=false --set flow.mixing=none)
"$bin" train "$config" "${common[@]}" --set train.run_dir="$run/baseline_gaussian" \
  "${identity[@]}" --set flow.base.kind=correlated_gaussian --set flow.base.power=measured \
  --restart > /dev/null
"$bin" train "$config" "${common[@]}" --set train.run_dir="$run/baseline_normal" \
  "${identity[@]}" --set flow.base.kind=standard_normal --set flow.base.power=table \
  --restart > /dev/null

nll() {  # mean nll_bits_per_voxel of the test fields under checkpoint $1
  "$bin" logp --checkpoint "$1" "$test_h5" \
    | awk -F, 'NR > 1 { s += $4; n++ } END { printf "%.4f (%d fields)", s / n, n }'
}
best=$run/best.h5
[ -f "$best" ] || best=$run/checkpoint.h5
draw() {  # $1 checkpoint, $2 name: $samples samples at T = 1, seed 7, into $run/$2.h5
  cat > "$run/$2.yaml" << EOF2
sample:
  checkpoint: $1
  count: $samples
  seed: 7
  temperature: 1.0
  mean_tolerance: $mean_tol
  out: $run/$2.h5
EOF2
  "$bin" sample "$run/$2.yaml" > /dev/null
}
draw "$best" samples_t1
{
  echo "fieldflow science check: $(date -u +%FT%TZ), $("$bin" --version)"
  echo "trained: $best (step $(tail -1 "$run/log.csv" | cut -d, -f1), $(sed -n 's/^# config //p' "$run/settings.yaml"))"
  echo "test NLL over delta, bits per voxel, $test_h5:"
  echo "  trained flow:                 $(nll "$best")"
  echo "  Gaussian with measured P(k):  $(nll "$run/baseline_gaussian/checkpoint.h5")"
  echo "  standard-normal base alone:   $(nll "$run/baseline_normal/checkpoint.h5")"
  /usr/bin/python3 "$here/run/compare_fields.py" "$bin" "$run/samples_t1.h5" "$test_h5" "$best"
} | tee "$run/science.txt"
# The test set's own noise: the training fields scored as if they were samples, what a flow with
# the training ensemble's statistics would get (docs/train.md "The test set against its own noise").
if [ -f "$train_sources" ]; then
  {
    echo "reference: the training fields in place of samples (the score of the training ensemble)"
    /usr/bin/python3 "$here/run/compare_fields.py" "$bin" "$train_sources" "$test_h5"
    count='import h5py, sys; print(len(h5py.File(sys.argv[1], "r")["delta"]))'
    tests=$(/usr/bin/python3 -c "$count" "$test_h5")
    /usr/bin/python3 "$here/run/pk_check_noise.py" "$bin" "$train_sources" "$samples" "$tests"
  } | tee -a "$run/science.txt"
fi
if [ "${CALIBRATE:-1}" != 0 ]; then
  echo "== calibration (run/calibrate.sh on the training sources)"
  # The sources unquoted: a glob expands to the files.
  # shellcheck disable=SC2086
  FIELDFLOW_BIN=$bin SAMPLES=${CALIBRATE_SAMPLES:-1024} MEAN_TOL=$mean_tol "$here/run/calibrate.sh" "$best" \
    "$run/calibrated.h5" $train_sources
  draw "$run/calibrated.h5" samples_t1_calibrated
  {
    echo "calibrated: $run/calibrated.h5 (run/calibrate.sh, K_MAX ${K_MAX:-default}, samples ${CALIBRATE_SAMPLES:-1024}, mean_tolerance $mean_tol)"
    echo "  test NLL over delta, bits per voxel: $(nll "$run/calibrated.h5")"
    /usr/bin/python3 "$here/run/compare_fields.py" "$bin" "$run/samples_t1_calibrated.h5" "$test_h5" \
      "$run/calibrated.h5"
  } | tee -a "$run/science.txt"
fi
