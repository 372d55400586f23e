#!/usr/bin/env bash
# fieldflow simulate end to end on a tiny set-up: files and layout, resume, MPI sharing (the same
# bytes as a serial run), the snapshot through `fieldflow paint`, and the config errors.
source "$(dirname "$0")/lib.sh" "$@"
# Same contents, to the bit (h5diff without tolerances); the files' bytes also hold HDF5's object
# modification times.
same() {
  if command -v h5diff > /dev/null; then h5diff -q "$1" "$2" > /dev/null 2>&1; else cmp -s "$1" "$2"; fi
}
small=(--set simulation.particles_per_side=16 --set simulation.box_size=64 --set simulation.steps=4
       --set paint.grid=8 --set sets.train.count=3 --set sets.test.count=2)

# The shipped config parses (dry: zero simulations) and the tiny run makes every file.
check shipped-config zero "0 simulations" -- "$bin" simulate "$src/configs/simulate.yaml" \
  --set output_dir="$tmp/none" --set sets.train.count=0 --set sets.test.count=0
# Runs whose files are compared byte for byte use the same output_dir text (it is part of the
# settings every file records) from different working folders.
mkdir -p "$tmp/s" "$tmp/m"
ln -s s/sims "$tmp/serial"
check serial zero "test: 2 grids stacked" -- env -C "$tmp/s" "$bin" simulate \
  "$src/configs/simulate.yaml" --set output_dir=sims "${small[@]}"
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
check resume-all zero "5 finished simulation" -- env -C "$tmp/s" "$bin" simulate \
  "$src/configs/simulate.yaml" --set output_dir=sims "${small[@]}"
cp "$tmp/serial/test/sim_0000/delta_000.h5" "$tmp/keep.h5"
rm "$tmp/serial/test/sim_0000/delta_000.h5"
out=$(env -C "$tmp/s" "$bin" simulate "$src/configs/simulate.yaml" --set output_dir=sims "${small[@]}" 2>&1)
printf '%s' "$out" | grep -q "test 1/2 (seed 1000001)" && ok || bad "removed simulation not redone: $out"
printf '%s' "$out" | grep -q "4 finished simulation" && ok || bad "others not skipped: $out"
[ "$(stat -c %Y "$tmp/serial/train/sim_0001/snap_000.hdf5")" = "$before" ] && ok || bad "finished snapshot rewritten"
same "$tmp/keep.h5" "$tmp/serial/test/sim_0000/delta_000.h5" && ok || bad "redone grid differs"

# MPI: two ranks (one thread each) share the simulations and write the same numbers as the serial
# run (two threads).
mpirun=$(command -v mpirun || true)
if [ -n "$mpirun" ]; then
  out=$(env -C "$tmp/m" "$mpirun" -np 2 --oversubscribe --allow-run-as-root "$bin" simulate \
        "$src/configs/simulate.yaml" --set output_dir=sims "${small[@]}" 2>&1)
  printf '%s' "$out" | grep -q "\[rank 1\]" && ok || bad "rank 1 did no simulation: $out"
  printf '%s' "$out" | grep -q "2 rank(s)" && ok || bad "not run as 2 ranks: $out"
  for f in train/sim_0000/delta_000.h5 train/sim_0001/delta_000.h5 test/sim_0001/delta_000.h5 \
           train/sim_0002/snap_000.hdf5 train.h5 test.h5; do
    same "$tmp/serial/$f" "$tmp/m/sims/$f" && ok || bad "MPI and serial differ: $f"
  done
else
  echo "mpirun not found: MPI sharing not tested"
fi

# Resume only with the folder's settings: another steps or cosmology is refused with one line
# naming the first differing key, before anything is written; a larger count adds simulations.
[ -f "$tmp/serial/settings.yaml" ] && ok || bad "no settings.yaml recorded"
cp "$tmp/serial/settings.yaml" "$tmp/settings_before.yaml"
out=$("$bin" simulate "$src/configs/simulate.yaml" --set output_dir="$tmp/serial" "${small[@]}" \
      --set simulation.steps=5 2>&1); status=$?
[ $status -ne 0 ] && ok || bad "resume with other steps accepted"
[ "$out" = "fieldflow: $tmp/serial/settings.yaml: simulation.steps: 4 in this folder, 5 requested; resume with the same settings or choose another output_dir" ] \
  && ok || bad "resume-steps message: $out"
check resume-cosmology nonzero "cosmology.omega_m: 0.3175 in this folder, 0.3 requested" -- \
  "$bin" simulate "$src/configs/simulate.yaml" --set output_dir="$tmp/serial" "${small[@]}" \
  --set cosmology.omega_m=0.3 --set simulation.steps=5
cmp -s "$tmp/serial/settings.yaml" "$tmp/settings_before.yaml" && ok || bad "refused run changed settings.yaml"
check resume-more zero "train: 4 grids stacked" -- "$bin" simulate "$src/configs/simulate.yaml" \
  --set output_dir="$tmp/serial" "${small[@]}" --set sets.train.count=4
grep -q "count: 4" "$tmp/serial/settings.yaml" && ok || bad "settings.yaml not updated to the new count"
mkdir -p "$tmp/legacy/train/sim_0000"
check legacy-folder nonzero "legacy: holds simulations but no settings.yaml" -- "$bin" simulate \
  "$src/configs/simulate.yaml" --set output_dir="$tmp/legacy" "${small[@]}"

# Provenance: every file carries the settings, the version and the commit.
if command -v h5dump > /dev/null; then
  for f in train/sim_0000/snap_000.hdf5 train/sim_0000/delta_000.h5 train.h5; do
    h5dump -a settings "$tmp/serial/$f" | grep -q "steps: 4" && ok || bad "$f: no settings attribute"
    h5dump -a fieldflow_version "$tmp/serial/$f" | grep -q '"[0-9]*\.[0-9]*\.[0-9]*"' && ok || bad "$f: no version"
    h5dump -a git_commit "$tmp/serial/$f" > /dev/null && ok || bad "$f: no git_commit"
  done
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
if command -v h5dump > /dev/null; then
  h5dump -a settings "$tmp/p.h5" | grep -q "mas: cic" && ok || bad "painted grid: no settings attribute"
fi

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

# Refused once for every key by the settings layer (one line each, nothing written).
one_line() {  # one_line NAME EXPECTED_LINE -- command...
  local name=$1 want=$2; shift 3
  local out status
  out=$("$@" 2>&1); status=$?
  [ $status -eq 1 ] && [ "$out" = "$want" ] && ok || bad "$name (status $status): $out"
}
cfg="$src/configs/simulate.yaml"
one_line wrap "fieldflow: $cfg: simulation.steps: expected an integer >= 1 and <= 100000, got 4294967299" -- \
  "$bin" simulate "$cfg" --set output_dir="$tmp/y" --set simulation.steps=4294967299
one_line wrap-int "fieldflow: $cfg: sets.train.count: expected an integer >= 0 and <= 9999, got 4294967299" -- \
  "$bin" simulate "$cfg" --set output_dir="$tmp/y" --set sets.train.count=4294967299
one_line not-integer "fieldflow: $cfg: paint.grid: expected an integer, got 8.5" -- \
  "$bin" simulate "$cfg" --set output_dir="$tmp/y" --set paint.grid=8.5
one_line empty-set "fieldflow: $cfg: --set simulation.steps=: empty value (leave the key out to use its default)" -- \
  "$bin" simulate "$cfg" --set output_dir="$tmp/y" --set simulation.steps=
one_line empty-dir "fieldflow: $cfg: output_dir: expected a non-empty string, got \"\"" -- \
  "$bin" simulate "$cfg" --set 'output_dir=""'
one_line omega-m "fieldflow: $cfg: cosmology.omega_m: expected a number > 0 and <= 1, got 1.5" -- \
  "$bin" simulate "$cfg" --set output_dir="$tmp/y" --set cosmology.omega_m=1.5
printf 'output_dir: %s\nsets:\n  train:\n    count: 1\n  train:\n    count: 2\n' "$tmp/y" > "$tmp/dup.yaml"
one_line duplicate "fieldflow: $tmp/dup.yaml: sets.train: key given twice (again at line 5)" -- \
  "$bin" simulate "$tmp/dup.yaml"
one_line directory "fieldflow: $tmp: is a directory, expected a YAML config file" -- "$bin" simulate "$tmp"
mkfifo "$tmp/fifo.yaml"
one_line fifo "fieldflow: $tmp/fifo.yaml: not a regular file, expected a YAML config file" -- \
  timeout 10 "$bin" simulate "$tmp/fifo.yaml"
[ -e "$tmp/y" ] && bad "a refused run wrote $tmp/y" || ok

finish
