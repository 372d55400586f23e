#!/usr/bin/env bash
# fieldflow train end to end on tiny data (8^3 fields from a tiny `fieldflow simulate`): the run
# folder, resume after SIGKILL and after SIGTERM with the same losses as an uninterrupted run,
# settings that refuse a resume, --restart, the time limit, progress lines, snapshots painted once
# and cached by mass assignment, run/calibrate.sh and run/train_science.sh on the trained flow, and
# under mpirun: a bad file on one rank stops both with one line.
source "$(dirname "$0")/lib.sh" "$@"
export OMP_NUM_THREADS=1

"$bin" simulate "$src/configs/simulate.yaml" --set output_dir="$tmp/sims" \
  --set simulation.particles_per_side=16 --set simulation.box_size=64 --set simulation.steps=4 \
  --set paint.grid=8 --set sets.train.count=12 --set sets.test.count=1 > /dev/null 2>&1 \
  || { echo "FAIL: tiny simulation"; exit 1; }

tiny=(--set flow.grid=8 --set "flow.levels.checkerboard_couplings=[2,2]"
      --set "flow.levels.channel_couplings=[2,0]" --set "flow.levels.hidden_checkerboard=[4,8]"
      --set "flow.levels.hidden_channel=[8,0]" --set data.train="$tmp/sims/train.h5"
      --set train.batch=4 --set train.warmup_steps=2 --set train.validate_every=5
      --set train.print_every_s=0 --set train.report=false)
train() { "$bin" train "$src/configs/train.yaml" "${tiny[@]}" "$@"; }
# step,epoch,loss_bpv,grad_norm,lr (the columns that do not depend on timing) and val_bpv.
losses() { cut -d, -f1-5,8 "$1/log.csv"; }

# The shipped config with the measured correlated base, on the tiny data.
out=$(train --set train.run_dir="$tmp/ref" --set train.steps=12 --set train.checkpoint_every=3 2>&1)
[ $? -eq 0 ] && ok || bad "reference run: $out"
for f in checkpoint.h5 best.h5 log.csv settings.yaml; do
  [ -f "$tmp/ref/$f" ] && ok || bad "missing $f"
done
[ "$(head -1 "$tmp/ref/log.csv")" = "step,epoch,loss_bpv,grad_norm,lr,fields_per_s,seconds,val_bpv" ] && ok || bad "log header"
[ "$(wc -l < "$tmp/ref/log.csv")" -eq 13 ] && ok || bad "log rows: $(wc -l < "$tmp/ref/log.csv")"
printf '%s' "$out" | grep -q "step 12/12" && ok || bad "no progress line: $out"
printf '%s' "$out" | grep -q "done at step 12" && ok || bad "no summary: $out"
grep -q "power: measured" "$tmp/ref/settings.yaml" && ok || bad "settings.yaml lacks the base"
grep -q "^# fieldflow .* (commit .*), SIMD target " "$tmp/ref/settings.yaml" && ok || bad "settings.yaml lacks provenance"
# Every checkpoint carries provenance: version, commit, SIMD target and the run's settings.
for f in checkpoint.h5 best.h5; do
  attrs=$(h5dump -A "$tmp/ref/$f" 2>&1)
  for a in fieldflow_version git_commit simd_target settings; do
    printf '%s' "$attrs" | grep -q "ATTRIBUTE \"$a\"" && ok || bad "$f lacks the $a attribute"
  done
  printf '%s' "$attrs" | grep -q "validation_fraction" && ok || bad "$f: settings lack data:"
  # The measured base carries its P at k = 0 (the variance of a field's mean), not 0.
  printf '%s' "$attrs" | grep -Eq "pk0: [0-9]*\.?[0-9]*[1-9]" && ok || bad "$f: no measured pk0"
done
# run/calibrate.sh on the trained flow: power on the lowest bin (k_F = 0.098 h/Mpc here), then the
# marginal map; the result samples and gives log p.
cal=$(FIELDFLOW_BIN="$bin" K_MAX=0.15 SAMPLES=4 "$src/run/calibrate.sh" "$tmp/ref/best.h5" \
  "$tmp/cal/calibrated.h5" "$tmp/sims/train.h5" 2>&1 < /dev/null) && ok || bad "run/calibrate.sh: $cal"
arrays=$(h5ls -r "$tmp/cal/calibrated.h5" 2>&1)
for a in param.calibration.log_scale preprocessing.marginal.t preprocessing.marginal.y; do
  printf '%s' "$arrays" | grep -q "/arrays/$a " && ok || bad "calibrated.h5 lacks $a"
done
printf '%s' "$cal" | grep -q "knots kept" && [ -s "$tmp/cal/calibrated_power.h5" ] && ok || bad "calibrate.sh output: $cal"
# K_MAX and SAMPLES change what it writes: more bins fitted, another marginal map.
array() { h5dump -d "/arrays/$2" "$1" 2>/dev/null | sed -n '/DATA {/,/}/p'; }
FIELDFLOW_BIN="$bin" K_MAX=0.3 SAMPLES=4 "$src/run/calibrate.sh" "$tmp/ref/best.h5" \
  "$tmp/cal/kmax.h5" "$tmp/sims/train.h5" > /dev/null 2>&1 < /dev/null
FIELDFLOW_BIN="$bin" K_MAX=0.15 SAMPLES=2 "$src/run/calibrate.sh" "$tmp/ref/best.h5" \
  "$tmp/cal/samples.h5" "$tmp/sims/train.h5" > /dev/null 2>&1 < /dev/null
[ -n "$(array "$tmp/cal/kmax.h5" param.calibration.log_scale)" ] \
  && [ "$(array "$tmp/cal/kmax.h5" param.calibration.log_scale)" != "$(array "$tmp/cal/calibrated.h5" param.calibration.log_scale)" ] \
  && ok || bad "K_MAX did not change the scales"
[ -n "$(array "$tmp/cal/samples.h5" preprocessing.marginal.y)" ] \
  && [ "$(array "$tmp/cal/samples.h5" preprocessing.marginal.y)" != "$(array "$tmp/cal/calibrated.h5" preprocessing.marginal.y)" ] \
  && ok || bad "SAMPLES did not change the marginal map"
[ "$(array "$tmp/cal/samples_power.h5" param.calibration.log_scale)" != "$(array "$tmp/cal/calibrated_power.h5" param.calibration.log_scale)" ] \
  && ok || bad "SAMPLES did not change the power fit"
# MEAN_TOL: both fits draw as `fieldflow sample` with that mean_tolerance (here the median |mean
# delta| of 20 draws, so about half are kept): another power fit and another map.
printf 'sample:\n  checkpoint: %s\n  count: 20\n  zero_mean: false\n  out: %s\n' \
  "$tmp/ref/best.h5" "$tmp/cal/draws.h5" > "$tmp/cal/draws.yaml"
"$bin" sample "$tmp/cal/draws.yaml" > /dev/null 2>&1
tol=$(/usr/bin/python3 -c 'import h5py, numpy as np, sys
d = np.asarray(h5py.File(sys.argv[1], "r")["delta"], dtype=np.float64)
print(repr(float(np.median(np.abs(d.reshape(len(d), -1).mean(1))))))' "$tmp/cal/draws.h5")
FIELDFLOW_BIN="$bin" K_MAX=0.15 SAMPLES=4 MEAN_TOL=$tol "$src/run/calibrate.sh" "$tmp/ref/best.h5" \
  "$tmp/cal/tol.h5" "$tmp/sims/train.h5" > /dev/null 2>&1 < /dev/null
grep -q "mean_tolerance: $tol" "$tmp/cal/tol_marginal.yaml" && ok || bad "MEAN_TOL not in the marginal config"
[ -n "$(array "$tmp/cal/tol.h5" preprocessing.marginal.y)" ] \
  && [ "$(array "$tmp/cal/tol.h5" preprocessing.marginal.y)" != "$(array "$tmp/cal/calibrated.h5" preprocessing.marginal.y)" ] \
  && [ "$(array "$tmp/cal/tol_power.h5" param.calibration.log_scale)" != "$(array "$tmp/cal/calibrated_power.h5" param.calibration.log_scale)" ] \
  && ok || bad "MEAN_TOL did not change the fits"
"$bin" logp --checkpoint "$tmp/cal/calibrated.h5" "$tmp/sims/test.h5" > "$tmp/cal/logp.csv" 2>&1 \
  && [ "$(wc -l < "$tmp/cal/logp.csv")" -eq 2 ] && ok || bad "logp of the calibrated flow: $(cat "$tmp/cal/logp.csv")"
# run/train_science.sh end to end (the check of docs/train.md, without calibration): the three
# test NLLs, the samples' P(k) table, the training fields' score and the check's noise floor.
sci=$(FIELDFLOW_BIN="$bin" RANKS=1 SAMPLES=4 CALIBRATE=0 "$src/run/train_science.sh" \
  "$src/configs/train.yaml" "$tmp/sims/train.h5" "$tmp/sims/test.h5" "$tmp/sci" "${tiny[@]}" \
  --set train.steps=4 2>&1 < /dev/null) && ok || bad "run/train_science.sh: $sci"
for line in "trained flow: .*(1 fields)" "Gaussian with measured P(k): .*(1 fields)" \
  "standard-normal base alone: .*(1 fields)" "mean of 4 samples vs mean of 1 test fields" \
  "mean of 12 samples vs mean of 1 test fields" "a perfect model (4 samples .* against 1 test fields" \
  "scatter: samples    test"; do
  grep -q "$line" "$tmp/sci/science.txt" && ok || bad "science.txt lacks '$line'"
done
grep -q "mean_tolerance: 0$" "$tmp/sci/samples_t1.yaml" && ok || bad "the samples' mean_tolerance (MEAN_TOL)"

# print_every_s: 0 prints every step, a large value only the last line.
n_lines=$(printf '%s\n' "$out" | grep -c "fieldflow train: step")
quiet=$(train --set train.run_dir="$tmp/quiet" --set train.steps=12 --set train.print_every_s=1000 \
  --set train.report=true 2>&1 | grep -c "fieldflow train: step")
[ "$n_lines" -eq 12 ] && [ "$quiet" -le 2 ] && ok || bad "print_every_s: $n_lines vs $quiet lines"
# train.report: the training report of the finished run (validation fields), not of the others.
[ -s "$tmp/quiet/report/index.html" ] && [ -s "$tmp/quiet/report/pk.png" ] \
  && [ "$(head -1 "$tmp/quiet/report/nll.csv")" = "field,flow_bpv,gaussian_bpv,standard_normal_bpv" ] && ok || bad "no training report in $tmp/quiet/report"
grep -q "validation fields from" "$tmp/quiet/report/index.html" && ok || bad "report not on the validation fields"
[ ! -e "$tmp/ref/report" ] && ok || bad "train.report=false wrote a report"

# Rerun on the finished folder: continues (nothing to do), the log unchanged.
before=$(losses "$tmp/ref")
out=$(train --set train.run_dir="$tmp/ref" --set train.steps=12 --set train.checkpoint_every=3 2>&1)
printf '%s' "$out" | grep -q "continuing .* from step 12" && ok || bad "no resume: $out"
printf '%s' "$out" | grep -q "(0 this run); best validation" && ! printf '%s' "$out" | grep -qi nan \
  && ok || bad "summary of a run that took no step: $out"
[ "$(losses "$tmp/ref")" = "$before" ] && ok || bad "log changed by a rerun"

# A must_match change is refused with one line naming the key; --restart starts over.
out=$(train --set train.run_dir="$tmp/ref" --set train.steps=12 --set train.seed=3 2>&1)
st=$?
[ $st -eq 1 ] && [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] \
  && printf '%s' "$out" | grep -q "train.seed: 0 in the run folder, 3 now" && ok || bad "seed change: $st $out"
out=$(train --set train.run_dir="$tmp/ref" --set train.steps=2 --set train.seed=3 --restart 2>&1)
[ $? -eq 0 ] && [ "$(wc -l < "$tmp/ref/log.csv")" -eq 3 ] && ok || bad "--restart: $out"
train --set train.run_dir="$tmp/ref" --set train.steps=12 --set train.checkpoint_every=3 --restart > /dev/null 2>&1
[ "$(losses "$tmp/ref")" = "$before" ] && ok || bad "restarted run differs"

# SIGKILL and SIGTERM mid-training: a longer run, so the signal lands in the middle of it.
long=(--set train.steps=300 --set train.checkpoint_every=25 --set train.validate_every=50)
train --set train.run_dir="$tmp/long" "${long[@]}" > /dev/null 2>&1 || bad "long reference run"
want=$(losses "$tmp/long")
wait_rows() {  # wait_rows DIR N: until DIR/log.csv has N rows (or 20 s)
  for _ in $(seq 400); do
    [ -f "$1/log.csv" ] && [ "$(wc -l < "$1/log.csv")" -gt "$2" ] && return 0
    sleep 0.05
  done
}
# SIGKILL: no chance to write anything; the rerun continues from the last checkpoint.
"$bin" train "$src/configs/train.yaml" "${tiny[@]}" "${long[@]}" --set train.run_dir="$tmp/kill" \
  > "$tmp/kill.out" 2>&1 &
pid=$!
wait_rows "$tmp/kill" 60
kill -9 $pid 2> /dev/null
wait $pid 2> /dev/null
rows=$(wc -l < "$tmp/kill/log.csv")
[ "$rows" -lt 301 ] && ok || bad "SIGKILL came after the end ($rows rows)"
out=$(train --set train.run_dir="$tmp/kill" "${long[@]}" 2>&1)
[ $? -eq 0 ] && printf '%s' "$out" | grep -q "continuing" && ok || bad "rerun after SIGKILL: $out"
[ "$(losses "$tmp/kill")" = "$want" ] && ok || bad "losses after SIGKILL differ: $(diff <(losses "$tmp/kill") <(echo "$want") | head -5)"

# SIGTERM: a checkpoint after the current step, status 143, and the same losses after the rerun.
"$bin" train "$src/configs/train.yaml" "${tiny[@]}" "${long[@]}" --set train.run_dir="$tmp/term" \
  --set train.checkpoint_every=1000 > "$tmp/term.out" 2>&1 &
pid=$!
wait_rows "$tmp/term" 60
kill -TERM $pid
wait $pid
st=$?
grep -q "stopped by a signal after step" "$tmp/term.out" && [ $st -eq 143 ] && ok \
  || bad "SIGTERM (status $st): $(tail -2 "$tmp/term.out")"
out=$(train --set train.run_dir="$tmp/term" "${long[@]}" --set train.checkpoint_every=1000 2>&1)
[ $? -eq 0 ] && ok || bad "rerun after SIGTERM: $out"
[ "$(losses "$tmp/term")" = "$want" ] && ok || bad "losses after SIGTERM differ: $(diff <(losses "$tmp/term") <(echo "$want") | head -5)"

# train.time_limit_minutes: stops early with a checkpoint; the rerun finishes the same losses.
out=$(train --set train.run_dir="$tmp/limit" --set train.steps=12 --set train.checkpoint_every=3 \
  --set train.time_limit_minutes=1e-9 2>&1)
[ $? -eq 0 ] && printf '%s' "$out" | grep -q "time limit reached after step 1;" && ok || bad "time limit: $out"
train --set train.run_dir="$tmp/limit" --set train.steps=12 --set train.checkpoint_every=3 > /dev/null 2>&1
[ "$(losses "$tmp/limit")" = "$before" ] && ok || bad "losses after the time limit differ"

# Snapshots: painted once into the run folder's cache, keyed by the mass assignment.
snaps=(--set data.train="$tmp/sims/train/sim_*/snap_000.hdf5" --set train.steps=2)
out=$(train --set train.run_dir="$tmp/snap" "${snaps[@]}" 2>&1)
[ $? -eq 0 ] && [ "$(ls "$tmp/snap/cache" | wc -l)" -eq 12 ] && ok || bad "snapshots: $out"
stamp=$(stat -c %Y "$tmp/snap/cache/"*.h5 | sort | head -1)
sleep 1
train --set train.run_dir="$tmp/snap" "${snaps[@]}" --set train.steps=3 > /dev/null 2>&1
[ "$(stat -c %Y "$tmp/snap/cache/"*.h5 | sort | head -1)" = "$stamp" ] && ok || bad "cache repainted"
train --set train.run_dir="$tmp/snap" "${snaps[@]}" --set data.mas=ngp --restart > /dev/null 2>&1
[ "$(ls "$tmp/snap/cache" | wc -l)" -eq 24 ] && ok || bad "data.mas did not repaint"
[ "$(cut -d, -f3 "$tmp/snap/log.csv" | sed -n 2p)" != "$(cut -d, -f3 "$tmp/ref/log.csv" | sed -n 2p)" ] && ok || bad "ngp fields train the same"
out=$(train --set train.run_dir="$tmp/snapu" "${snaps[@]}" --set data.length_unit=mpc/h 2>&1)
# Forcing mpc/h on these kpc/h files reads a box 1000 times larger.
printf '%s' "$out" | grep -q "of 8^3 in 64000 Mpc/h" && ok || bad "data.length_unit: $out"

# A grid of another box is refused with one line.
"$bin" simulate "$src/configs/simulate.yaml" --set output_dir="$tmp/other" \
  --set simulation.particles_per_side=16 --set simulation.box_size=32 --set simulation.steps=4 \
  --set paint.grid=8 --set sets.train.count=1 --set sets.test.count=0 > /dev/null 2>&1
out=$(train --set train.run_dir="$tmp/box" --set "data.train=[$tmp/sims/train.h5, $tmp/other/train.h5]" 2>&1)
[ $? -eq 1 ] && [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] \
  && printf '%s' "$out" | grep -q "other/train.h5: box of 32 Mpc/h, the first field's is 64 Mpc/h" && ok || bad "box mismatch: $out"

# An output that is an input: refused with one line, before --restart removes anything.
mkdir -p "$tmp/odd"
cp "$tmp/sims/train.h5" "$tmp/odd/checkpoint.h5"
out=$(train --set train.run_dir="$tmp/odd" --set data.train="$tmp/odd/checkpoint.h5" --restart 2>&1)
[ $? -eq 1 ] && [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] \
  && printf '%s' "$out" | grep -q "odd/checkpoint.h5: is also an input" \
  && cmp -s "$tmp/sims/train.h5" "$tmp/odd/checkpoint.h5" && ok || bad "output is input: $out"

# Under mpirun: a truncated file read by rank 1 stops both ranks, one line, non-zero, quickly.
mpirun=$(command -v mpirun || true)
if [ -n "$mpirun" ]; then
  mkdir -p "$tmp/two"
  cp "$tmp/sims/train.h5" "$tmp/two/a.h5"
  head -c 3000 "$tmp/sims/train.h5" > "$tmp/two/b.h5"
  start=$(date +%s)
  # -q: without it mpirun adds its own notice that a process exited with a non-zero status.
  out=$("$mpirun" -q -np 2 --oversubscribe --allow-run-as-root "$bin" train "$src/configs/train.yaml" \
    "${tiny[@]}" --set data.train="$tmp/two/*.h5" --set train.run_dir="$tmp/two/run" 2>&1)
  st=$?
  took=$(($(date +%s) - start))
  lines=$(printf '%s\n' "$out" | grep -c .)
  [ $st -ne 0 ] && [ "$lines" -eq 1 ] && printf '%s' "$out" | grep -q "^fieldflow: $tmp/two/b.h5: " \
    && [ $took -lt 60 ] && ok || bad "bad file under mpirun (status $st, $lines lines, ${took}s): $out"
  # Two ranks stop cleanly on SIGUSR1 to mpirun (Open MPI forwards it; SIGTERM to mpirun kills the
  # job outright) and resume with the same losses as an uninterrupted 2-rank run.
  two=(--set train.steps=300 --set train.checkpoint_every=1000 --set train.validate_every=50)
  "$mpirun" -np 2 --oversubscribe --allow-run-as-root "$bin" train "$src/configs/train.yaml" \
    "${tiny[@]}" "${two[@]}" --set train.run_dir="$tmp/two/whole" > /dev/null 2>&1 && ok || bad "2-rank run"
  "$mpirun" -np 2 --oversubscribe --allow-run-as-root "$bin" train "$src/configs/train.yaml" \
    "${tiny[@]}" "${two[@]}" --set train.run_dir="$tmp/two/parts" > "$tmp/two/parts.out" 2>&1 &
  pid=$!
  wait_rows "$tmp/two/parts" 60
  kill -USR1 $pid
  wait $pid
  grep -q "stopped by a signal" "$tmp/two/parts.out" && ok || bad "SIGUSR1 to mpirun: $(tail -3 "$tmp/two/parts.out")"
  "$mpirun" -np 2 --oversubscribe --allow-run-as-root "$bin" train "$src/configs/train.yaml" \
    "${tiny[@]}" "${two[@]}" --set train.run_dir="$tmp/two/parts" > /dev/null 2>&1
  [ "$(losses "$tmp/two/parts")" = "$(losses "$tmp/two/whole")" ] && ok || bad "2-rank resume differs"
fi

finish
