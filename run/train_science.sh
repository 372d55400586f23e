#!/usr/bin/env bash
# The science check of docs/train.md on the test set (never used for training or model choice):
# test NLL over delta of the trained flow, of the Gaussian with the measured P(k) (the untrained
# identity flow over the correlated base) and of the standard-normal base alone, then P(k) and the
# one-point PDF of 64 samples at temperature 1 against the test fields.
#
#   run/train_science.sh BIN CONFIG TRAIN_H5 TEST_H5 RUN_DIR [extra --set arguments of the run]
#
# RUN_DIR holds the trained run (best.h5 is the flow chosen on the validation loss); the
# baselines are built in RUN_DIR/baseline_* from the same data and preprocessing.
set -euo pipefail
bin=$1 config=$2 train_h5=$3 test_h5=$4 run=$5
shift 5
common=(--set data.train="$train_h5" "$@")

# Baselines: zero training steps (the flow starts as the identity), same data and statistics.
"$bin" train "$config" "${common[@]}" --set train.run_dir="$run/baseline_gaussian" \
  --set train.steps=0 --restart 2> /dev/null
"$bin" train "$config" "${common[@]}" --set train.run_dir="$run/baseline_normal" \
  --set train.steps=0 --set "flow.base={kind: standard_normal}" --restart \
  2> /dev/null || true

nll() {  # mean nll_bits_per_voxel over the test fields
  "$bin" logp --checkpoint "$1" "$test_h5" | awk -F, 'NR > 1 { s += $4; n++ } END { printf "%.4f", s / n }'
}
echo "test NLL (bits/voxel over delta, $(h5dump -H -d delta "$test_h5" | grep -o 'DATASPACE.*' | head -1)):"
echo "  trained flow (best.h5):           $(nll "$run/best.h5")"
echo "  Gaussian with measured P(k):      $(nll "$run/baseline_gaussian/checkpoint.h5")"
if [ -f "$run/baseline_normal/checkpoint.h5" ]; then
  echo "  standard-normal base alone:       $(nll "$run/baseline_normal/checkpoint.h5")"
fi

# 64 samples at temperature 1.
cat > "$run/sample.yaml" << EOF2
sample:
  checkpoint: $run/best.h5
  count: 64
  seed: 7
  temperature: 1.0
  out: $run/samples_t1.h5
EOF2
"$bin" sample "$run/sample.yaml" > /dev/null
/usr/bin/python3 "$(dirname "$0")/compare_fields.py" "$bin" "$run/samples_t1.h5" "$test_h5"
