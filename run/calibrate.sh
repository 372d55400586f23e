#!/usr/bin/env bash
# The recommended calibration of a trained flow (docs/train.md "Calibration after training"),
# two runs of `fieldflow calibrate` on the training fields (never the test set):
#   1. method power with match: delta on the bins that start below K_MAX (default 0.38 h/Mpc,
#      just under k_N/2 of a 32^3 grid in 128 Mpc/h), 8 updates, SAMPLES samples: the samples,
#      their values put onto the fields' one-point distribution by rank and each then taken
#      against its own mean density (as `fieldflow sample` gives them), get the fields' P(k)
#      of delta; maximum likelihood gives these few modes almost no weight;
#   2. method marginal with SAMPLES (default 1024) samples: the samples get the fields'
#      one-point distribution (what the ranking of step 1 assumed), whose tail sets P(k) of
#      delta.
#
#   run/calibrate.sh CHECKPOINT OUT TRAIN_FIELDS [TRAIN_FIELDS ...]
#
# MEAN_TOL (default 0): both fits draw their samples as `fieldflow sample` with
# sample.mean_tolerance MEAN_TOL does (only draws whose mean delta lies within +-MEAN_TOL), so
# calibrate with the tolerance the samples will be drawn with.
# FIELDFLOW_BIN (default build/fieldflow) chooses the binary. Writes OUT, the intermediate
# checkpoint OUT-stem_power.h5 and the two configs (OUT-stem_power.yaml, _marginal.yaml).
set -euo pipefail
[ $# -ge 3 ] || { sed -n 2,15p "$0"; exit 2; }
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${FIELDFLOW_BIN:-$here/build/fieldflow}
k_max=${K_MAX:-0.38}
samples=${SAMPLES:-1024}
mean_tol=${MEAN_TOL:-0}
checkpoint=$1 out=$2
shift 2
fields=$(printf '"%s", ' "$@")
fields="[${fields%, }]"
stem=${out%.h5}
mkdir -p "$(dirname "$out")"
cat > "${stem}_power.yaml" << EOF2
calibrate:
  checkpoint: "$checkpoint"
  fields: $fields
  out: "${stem}_power.h5"
  method: power
  match: delta
  samples: $samples
  iterations: 8
  k_max_hmpc: $k_max
  mean_tolerance: $mean_tol
EOF2
cat > "${stem}_marginal.yaml" << EOF2
calibrate:
  checkpoint: "${stem}_power.h5"
  fields: $fields
  out: "$out"
  method: marginal
  samples: $samples
  mean_tolerance: $mean_tol
EOF2
"$bin" calibrate "${stem}_power.yaml"
"$bin" calibrate "${stem}_marginal.yaml"
