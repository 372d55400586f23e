#!/usr/bin/env bash
# run/demo.sh --quick end to end with the built executable (--no-build, FIELDFLOW_BIN), in a copy
# of run/ and configs/demo/ in a temporary folder: every stage runs, the headline numbers are
# printed, and a second run reuses every finished stage. A build without `fieldflow train` must stop
# after stage 1 with one line and status 3. Also: an unknown option is refused, and --also
# denoises with a second flow.
source "$(dirname "$0")/lib.sh" "$@"
mkdir -p "$tmp/run" "$tmp/configs"
cp "$src/run/demo.sh" "$tmp/run/" && cp -r "$src/configs/demo" "$tmp/configs/"
cd "$tmp" || exit 1
demo() { FIELDFLOW_BIN="$bin" bash run/demo.sh --no-build "$@"; }
q=out/demo-quick

demo --bogus > log0 2>&1
[ $? = 2 ] && grep -q "unknown option" log0 && ok || bad "unknown option not refused"

start=$SECONDS
demo --quick > log1 2>&1
rc=$?
echo "first run: status $rc in $((SECONDS - start)) s"
[ -f "$q/simulations/train.h5" ] && [ -f "$q/simulations/test.h5" ] && ok || bad "no simulations"
if "$bin" train --help > /dev/null 2>&1; then
  [ $rc = 0 ] && ok || { bad "demo --quick status $rc"; tail -40 log1; }
  for s in "stage 1/4" "stage 2/4" "stage 3/4" "stage 4/4" "test NLL over 2 test fields" \
    "wf " "map " "combined " "posterior " "posterior calibration"; do
    grep -q "$s" log1 && ok || bad "no '$s' in the output"
  done
  for f in denoise/field_0_summary.json denoise/field_1_summary.json \
    report/reconstruction/index.html report/training/index.html report/training/nll.csv; do
    [ -s "$q/$f" ] && ok || bad "missing $q/$f"
  done
  [ ! -e "$q/denoise/field_2.h5" ] && ok || bad "--quick denoised more than 2 fields"
  # Posterior samples for every field.
  for i in 0 1; do
    grep -q '"posterior"' "$q/denoise/field_${i}_summary.json" && ok || bad "field $i: no posterior"
  done
  # The second run: simulate skips, train stops at once, denoise and reports are up to date.
  before=$(stat -c %Y "$q/denoise/field_0.h5" "$q/report/training/index.html")
  start=$SECONDS
  demo --quick > log2 2>&1
  rc=$?
  echo "second run: status $rc in $((SECONDS - start)) s"
  [ $rc = 0 ] && ok || bad "second run status $rc"
  [ "$(grep -c 'is up to date' log2)" = 2 ] && ok || bad "second run denoised again"
  grep -q "training report: up to date" log2 && ok || bad "second run redid the training report"
  grep -q "reconstruction report: up to date" log2 && ok || bad "second run redid the reconstruction report"
  [ "$before" = "$(stat -c %Y "$q/denoise/field_0.h5" "$q/report/training/index.html")" ] && ok ||
    bad "second run rewrote outputs"
  grep -q "test NLL" log2 && ok || bad "second run printed no headline"
  # --also: the same fields with a second flow (here a copy of the first), into their own folder
  # and report, each report naming its flow.
  cp "$q/train/best.h5" other.h5
  demo --quick --also other.h5 > log_also 2>&1 && ok || { bad "--also status"; tail -20 log_also; }
  [ -s "$q/denoise_other/field_1_summary.json" ] && ok || bad "--also: no results"
  grep -q "made with the flow other.h5" "$q/report/reconstruction_other/index.html" && ok ||
    bad "--also: its report does not name its flow"
  grep -q "made with the flow $q/train/best.h5" "$q/report/reconstruction/index.html" && ok ||
    bad "the demo's report does not name its flow"
  grep -q "with the flow other.h5:" log_also && ok || bad "--also: no headline"
  demo --also missing.h5 > log_missing 2>&1
  [ $? = 2 ] && grep -q "missing.h5: no such checkpoint" log_missing && ok || bad "--also missing file"
  # --fresh starts over: the training log restarts from nothing.
  demo --quick --fresh > log3 2>&1 && grep -q "removing $q" log3 && ok || bad "--fresh"
else
  [ $rc = 3 ] && ok || bad "without train: status $rc, expected 3"
  [ "$(grep -c "^fieldflow demo: .*has no 'train' command" log1)" = 1 ] && ok ||
    bad "without train: no one-line message"
  grep -q "stage 3/4" log1 && bad "without train: went on to stage 3" || ok
fi
finish
