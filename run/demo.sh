#!/usr/bin/env bash
# The main job on built-in data, from a fresh Debian 12 machine (as root): install, build, then
#  1. simulate a small training and test set with the particle-mesh solver (Gadget HDF5 + grids),
#  2. paint one snapshot again through the external-data path (`fieldflow paint`, TSC, interlaced),
#  3. measure its power spectrum and its cross-correlation with the simulator's own CIC grid.
# Outputs land in out/demo/. Idempotent: finished simulations are not redone.
# Usage: run/demo.sh [--set key=value ...]   (overrides for configs/simulate.yaml)
set -euo pipefail
cd "$(dirname "$0")/.."
bash run/deps.sh
bash run/build.sh build
ff=build/fieldflow
out=out/demo
mkdir -p "$out"

echo "== 1. simulate (configs/simulate.yaml, 8 training + 2 test simulations)"
"$ff" simulate configs/simulate.yaml --set output_dir="$out/simulations" \
  --set sets.train.count=8 --set sets.test.count=2 "$@"

snap="$out/simulations/test/sim_0000/snap_000.hdf5"
echo "== 2. paint $snap (TSC, interlaced, 64^3)"
"$ff" paint "$snap" --grid 64 --mas tsc --interlace --out "$out/test0_tsc64.h5"

echo "== 3. power spectra"
"$ff" pk "$out/test0_tsc64.h5" --mas tsc --particles $((64 * 64 * 64)) --out "$out/pk_test0_tsc64.csv"
"$ff" paint "$snap" --grid 32 --mas tsc --interlace --out "$out/test0_tsc32.h5"
"$ff" pk "$out/test0_tsc32.h5" --cross "$out/simulations/test/sim_0000/delta_000.h5" --mas none \
  --out "$out/cross_tsc32_vs_cic32.csv"
"$ff" pk "$out/simulations/test.h5" --index 1 --mas cic --out "$out/pk_test1_cic32.csv"

echo "== 4. results"
echo "P(k) of test simulation 0, TSC 64^3, shot noise subtracted ($out/pk_test0_tsc64.csv):"
head -n 9 "$out/pk_test0_tsc64.csv" | column -t -s,
echo "Cross-correlation of the TSC and CIC 32^3 grids of the same snapshot ($out/cross_tsc32_vs_cic32.csv):"
head -n 9 "$out/cross_tsc32_vs_cic32.csv" | column -t -s,
echo "All outputs: $out/"
