#!/usr/bin/env bash
# fieldflow simulate end to end on a tiny set-up: files and layout, resume, MPI sharing (the same
# bytes as a serial run), the snapshot through `fieldflow paint`, and the config errors.
set -u
bin=$1
src=$2
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*"; }
check() {  # check NAME EXPECTED_STATUS(zero|nonzero) PATTERN -- command...
  local name=$1 want=$2 pattern=$3; shift 4
  local out status
  out=$("$@" 2>&1); status=$?
  if { [ "$want" = zero ] && [ $status -eq 0 ]; } || { [ "$want" = nonzero ] && [ $status -ne 0 ]; }; then
    if printf '%s' "$out" | grep -qE -- "$pattern"; then ok; return; fi
  fi
  bad "$name (status $status): $(printf '%s' "$out" | tail -5)"
}
# Same contents, to the bit (h5diff without tolerances); the files' bytes also hold HDF5's object
# modification times.
same() {
  if command -v h5diff > /dev/null; then h5diff -q "$1" "$2" > /dev/null 2>&1; else cmp -s "$1" "$2"; fi
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
small=(--set simulation.particles_per_side=16 --set simulation.box_size=64 --set simulation.steps=4
       --set paint.grid=8 --set sets.train.count=3 --set sets.test.count=2)

# The shipped config parses (dry: zero simulations) and the tiny run makes every file.
check shipped-config zero "0 simulations" -- "$bin" simulate "$src/configs/simulate.yaml" \
  --set output_dir="$tmp/none" --set sets.train.count=0 --set sets.test.count=0
check serial zero "test: 2 grids stacked" -- "$bin" simulate "$src/configs/simulate.yaml" \
  --set output_dir="$tmp/serial" "${small[@]}"
for f in train/sim_0000/snap_000.hdf5 train/sim_0002/delta_000.h5 test/sim_0001/snap_000.hdf5 \
         test/sim_0001/delta_000.h5 train.h5 test.h5; do
  [ -f "$tmp/serial/$f" ] && ok || bad "missing $f"
done
if command -v h5dump > /dev/null; then
  h5dump -H -d delta "$tmp/serial/train.h5" | grep -q "( 3, 8, 8, 8 )" && ok || bad "train.h5 is not [3,8,8,8]"
  h5dump -a Header/MassTable "$tmp/serial/train/sim_0000/snap_000.hdf5" > /dev/null && ok || bad "no MassTable"
fi
ls "$tmp/serial/train/sim_0000" | grep -qv -e '^snap_000.hdf5$' -e '^delta_000.h5$' && bad "stray files" || ok

# Resume: nothing is redone; a removed grid makes exactly that simulation run again.
before=$(stat -c %Y "$tmp/serial/train/sim_0001/snap_000.hdf5")
check resume-all zero "5 finished simulation" -- "$bin" simulate "$src/configs/simulate.yaml" \
  --set output_dir="$tmp/serial" "${small[@]}"
cp "$tmp/serial/test/sim_0000/delta_000.h5" "$tmp/keep.h5"
rm "$tmp/serial/test/sim_0000/delta_000.h5"
out=$("$bin" simulate "$src/configs/simulate.yaml" --set output_dir="$tmp/serial" "${small[@]}" 2>&1)
printf '%s' "$out" | grep -q "test 1/2 (seed 1000001)" && ok || bad "removed simulation not redone: $out"
printf '%s' "$out" | grep -q "4 finished simulation" && ok || bad "others not skipped: $out"
[ "$(stat -c %Y "$tmp/serial/train/sim_0001/snap_000.hdf5")" = "$before" ] && ok || bad "finished snapshot rewritten"
same "$tmp/keep.h5" "$tmp/serial/test/sim_0000/delta_000.h5" && ok || bad "redone grid differs"

# MPI: two ranks (one thread each) share the simulations and write the same numbers as the serial
# run (two threads).
mpirun=$(command -v mpirun || true)
if [ -n "$mpirun" ]; then
  out=$("$mpirun" -np 2 --oversubscribe --allow-run-as-root "$bin" simulate "$src/configs/simulate.yaml" \
        --set output_dir="$tmp/mpi" "${small[@]}" 2>&1)
  printf '%s' "$out" | grep -q "\[rank 1\]" && ok || bad "rank 1 did no simulation: $out"
  printf '%s' "$out" | grep -q "2 rank(s)" && ok || bad "not run as 2 ranks: $out"
  for f in train/sim_0000/delta_000.h5 train/sim_0001/delta_000.h5 test/sim_0001/delta_000.h5 \
           train/sim_0002/snap_000.hdf5 train.h5 test.h5; do
    same "$tmp/serial/$f" "$tmp/mpi/$f" && ok || bad "MPI and serial differ: $f"
  done
else
  echo "mpirun not found: MPI sharing not tested"
fi

# A tabulated P(k) (two columns as CAMB writes them) drives the initial conditions.
{
  echo "# k [h/Mpc]   P [(Mpc/h)^3]"
  awk 'BEGIN { for (i = 0; i < 200; i++) { k = 10 ^ (-4 + 6 * i / 199); printf "%.6e %.6e\n", k, 2e4 * k / (1 + (k / 0.02) ^ 3) } }'
} > "$tmp/pk.dat"
check table zero "train: 3 grids stacked" -- "$bin" simulate "$src/configs/simulate.yaml" \
  --set output_dir="$tmp/table" --set power.transfer=table --set power.table="$tmp/pk.dat" "${small[@]}"

# The snapshot feeds `fieldflow paint` like any Gadget file.
check paint zero "written" -- "$bin" paint "$tmp/serial/train/sim_0000/snap_000.hdf5" --grid 8 --out "$tmp/p.h5"

# Config errors name the file and the key.
check overlap nonzero "simulate.yaml: sets.test.first_seed: .*overlap" -- "$bin" simulate \
  "$src/configs/simulate.yaml" --set output_dir="$tmp/x" --set sets.test.first_seed=100
check unknown-key nonzero "simulate.yaml.*warp_drive" -- "$bin" simulate "$src/configs/simulate.yaml" \
  --set output_dir="$tmp/x" --set simulation.warp_drive=1
check odd-particles nonzero "simulation.particles_per_side" -- "$bin" simulate \
  "$src/configs/simulate.yaml" --set output_dir="$tmp/x" --set simulation.particles_per_side=15
check output-after-start nonzero "output_redshifts" -- "$bin" simulate "$src/configs/simulate.yaml" \
  --set output_dir="$tmp/x" --set "simulation.output_redshifts=[30]"
check missing-table nonzero "nowhere.dat" -- "$bin" simulate "$src/configs/simulate.yaml" \
  --set output_dir="$tmp/x" --set power.transfer=table --set power.table="$tmp/nowhere.dat" "${small[@]}"
check bad-transfer nonzero "power.transfer" -- "$bin" simulate "$src/configs/simulate.yaml" \
  --set output_dir="$tmp/x" --set power.transfer=bbks

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
