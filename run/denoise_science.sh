#!/usr/bin/env bash
# The science check of docs/denoise.md: the split k_split chosen on validation fields (never the
# test set), then the default configs/denoise.yaml on test fields 0..COUNT-1, then the per-k-bin
# table over fields (mean and scatter) that docs/denoise.md shows.
#
#   run/denoise_science.sh BIN CHECKPOINT TEST_H5 VALIDATION_H5 OUT_DIR [COUNT] [extra --set ...]
set -euo pipefail
bin=$1 ckpt=$2 test_h5=$3 val_h5=$4 out=$5 count=${6:-8}
shift 5 && { [ $# -gt 0 ] && shift || true; }
here=$(cd "$(dirname "$0")/.." && pwd)
common=(--set denoise.checkpoint="$ckpt" "$@")
mkdir -p "$out"
"$bin" denoise "$here/configs/denoise.yaml" "${common[@]}" --set denoise.truth.grid="$val_h5" \
  --set denoise.combined.k_split_hmpc=0 \
  --set "denoise.combined.validation={grid: $val_h5, indices: [0, 1, 2, 3]}" \
  --set denoise.out="$out/validation.h5" | tee "$out/validation.log"
k_split=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['combined']['k_split_hmpc'])" \
  "$out/validation_summary.json")
echo "k_split chosen on validation fields: $k_split h/Mpc"
for i in $(seq 0 $((count - 1))); do
  "$bin" denoise "$here/configs/denoise.yaml" "${common[@]}" --set denoise.truth.grid="$test_h5" \
    --set denoise.truth.index="$i" --set denoise.combined.k_split_hmpc="$k_split" \
    --set denoise.out="$out/test_$i.h5" | tee "$out/test_$i.log"
done
python3 "$here/run/denoise_table.py" "$out" "$count" | tee "$out/table.md"
