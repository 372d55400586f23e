#!/usr/bin/env bash
# Bad input never costs data (issue 8): each class of hostile input on every command that writes
# (paint, pk, bk, logp, sample, simulate, train, denoise, report). For every row: the exact exit status,
# standard error holding exactly one line `fieldflow: <the right input>: ...`, and no file in the working folder changed,
# appeared or vanished (hidden temporaries included). Classes: device nodes, FIFOs, an output that
# is an input (any spelling), non-finite results, a full standard output, signals in the middle of
# a write, the exit-status rule, misleading messages, control characters in names.
source "$(dirname "$0")/lib.sh" "$@"
need_h5py "test inputs"
maker="$(dirname "$bin")/tests/fuzz_io_readers"  # writes a checkpoint with the library's writer
cd "$tmp" || exit 1

# ---- inputs ----
$py - <<'PY'
import h5py, numpy as np
rng = np.random.default_rng(3)
def grid(name, values, box=100.0):
    with h5py.File(name, "w") as f:
        f["delta"] = values; f.attrs["box_size"] = box; f.attrs["redshift"] = 0.0
grid("g.h5", rng.normal(0, 1, (16, 16, 16)).astype(np.float32))
grid("g8.h5", rng.normal(0, 0.3, (8, 8, 8)).astype(np.float32))
grid("huge32.h5", np.full((16, 16, 16), 1e38, np.float32))
grid("wild32.h5", (rng.normal(0, 1, (16, 16, 16)) * 1e37).astype(np.float32))
grid("huge64.h5", rng.normal(0, 1e300, (16, 16, 16)))
grid("far8.h5", np.full((8, 8, 8), 3e38, np.float32))
grid("u8.h5", np.zeros((8, 8, 8), np.uint8))
grid("f16.h5", np.zeros((8, 8, 8), np.float16))
grid("c64.h5", np.zeros((8, 8, 8), np.complex64))
n, L = 16, 100.0
g = (np.arange(n) + 0.5) * L / n
q = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
with h5py.File("snap.hdf5", "w") as f:
    h = f.create_group("Header")
    h.attrs["BoxSize"] = L * 1000
    cnt = np.zeros(6, np.uint32); cnt[1] = len(q)
    h.attrs["NumPart_ThisFile"] = cnt; h.attrs["NumPart_Total"] = cnt
    h.attrs["NumPart_Total_HighWord"] = np.zeros(6, np.uint32)
    h.attrs["MassTable"] = np.array([0, 1.0, 0, 0, 0, 0])
    h.attrs["Time"] = 1.0; h.attrs["Redshift"] = 0.0; h.attrs["NumFilesPerSnapshot"] = 1
    h.attrs["Omega0"] = 0.3; h.attrs["OmegaLambda"] = 0.7; h.attrs["HubbleParam"] = 0.7
    p = f.create_group("PartType1")
    p["Coordinates"] = (q * 1000).astype(np.float32)
    p["Velocities"] = np.zeros_like(q, np.float32)
    p["ParticleIDs"] = np.arange(len(q), dtype=np.uint32)
PY
if [ -x "$maker" ] && "$maker" --make-seeds seeds > /dev/null 2>&1 && [ -f seeds/checkpoint.h5 ]; then
  have_checkpoint=1
  cp seeds/checkpoint.h5 flow.h5
  $py -c "
import h5py, numpy as np
with h5py.File('g4.h5', 'w') as f:
    f['delta'] = np.random.default_rng(1).normal(0, 0.5, (4, 4, 4)).astype(np.float32)
    f.attrs['box_size'] = 64.0; f.attrs['redshift'] = 0.0  # the seed checkpoint's training box
with h5py.File('far4.h5', 'w') as f:
    f['delta'] = np.full((4, 4, 4), 3e38, np.float32); f.attrs['box_size'] = 64.0
"
  rm -rf seeds
else
  have_checkpoint=0
  bad "no checkpoint: $maker --make-seeds failed (build the fuzz_io_readers target)"
fi
mkdir somedir
mkfifo fifo
printf 'sample:\n  checkpoint: flow.h5\n  count: 2\n  out: samples.h5\n' > sample.yaml
printf 'sample:\n  checkpoint: flow.h5\n  count: 1\n  out: /dev/null\n' > sample_devnull.yaml
printf 'sample:\n  checkpoint: flow.h5\n  count: 1\n  out: fifo\n' > sample_fifo.yaml
printf 'sample:\n  checkpoint: flow.h5\n  count: 1\n  out: flow.h5\n' > sample_self.yaml
printf 'sample:\n  checkpoint: flow.h5\n  count: 1\n  out: sample_conf.yaml\n' > sample_conf.yaml
sim_small=(--set simulation.particles_per_side=8 --set simulation.box_size=32 --set simulation.steps=2
           --set paint.grid=8 --set sets.train.count=1 --set sets.test.count=0)
printf 'output_dir: simout\n' > sim.yaml
mkdir simout && cp sim.yaml simout/train.h5  # a config that simulate's stack would overwrite

# The state of the folder: every name (hidden too), type and content hash; devices and FIFOs by
# type only.
state() {
  find . -mindepth 1 \( -type f -printf '%p f ' -exec md5sum {} \; \) -o \( -printf '%p %y\n' \) |
    sort
}
dev_state() { stat -c '%n %F %i' /dev/null /dev/full 2>/dev/null; }

# row NAME STATUS INPUT -- command...   (INPUT: the text that must follow "fieldflow: ")
row() {
  local name=$1 want=$2 input=$3; shift 4
  local before after devs_before devs_after status err lines
  before=$(state); devs_before=$(dev_state)
  err=$("$@" 2>&1 >/dev/null); status=$?
  after=$(state); devs_after=$(dev_state)
  lines=$(printf '%s' "$err" | awk 'END { print NR }')
  if [ "$status" -ne "$want" ]; then bad "$name: exit status $status, expected $want: $err"; return; fi
  if [ "$lines" -ne 1 ]; then bad "$name: $lines lines on stderr: '$err'"; return; fi
  case "$err" in
    "fieldflow: $input"*) ;;
    *) bad "$name: does not name '$input': '$err'"; return ;;
  esac
  if [ "$before" != "$after" ]; then
    bad "$name: files changed: $(diff <(echo "$before") <(echo "$after") | grep '^[<>]' | head -3)"
    return
  fi
  if [ "$devs_before" != "$devs_after" ]; then bad "$name: /dev/null or /dev/full changed"; return; fi
  ok
}
# succeeds NAME -- command...: exit 0 and nothing at all on stderr
succeeds() {
  local name=$1; shift 2
  local err; err=$("$@" 2>&1 >/dev/null)
  if [ $? -eq 0 ] && [ -z "$err" ]; then ok; else bad "$name: '$err'"; fi
}

# ---- device nodes: text outputs write through, HDF5 outputs refuse; nothing is replaced ----
succeeds pk-devnull -- "$bin" pk g.h5 --out /dev/null
[ -c /dev/null ] && ok || bad "/dev/null is no longer a character device"
row pk-devfull 1 "/dev/full: cannot write: No space left on device" -- "$bin" pk g.h5 --out /dev/full
row paint-devnull 1 "/dev/null: is a character device" -- "$bin" paint snap.hdf5 --grid 8 --out /dev/null
row paint-devfull 1 "/dev/full: is a character device" -- "$bin" paint snap.hdf5 --grid 8 --out /dev/full
row paint-devstdout 1 "/dev/stdout: is a character device" -- "$bin" paint snap.hdf5 --grid 8 --out /dev/stdout
out=$("$bin" pk g.h5 --out /dev/stdout 2>/dev/null | head -1)
[ "$out" = "k,pk,nmodes" ] && ok || bad "pk --out /dev/stdout (a pipe): '$out'"
if [ $have_checkpoint = 1 ]; then
  succeeds logp-devnull -- "$bin" logp --checkpoint flow.h5 g4.h5 --out /dev/null
  row logp-devfull 1 "/dev/full: cannot write" -- "$bin" logp --checkpoint flow.h5 g4.h5 --out /dev/full
  row sample-devnull 1 "/dev/null: is a character device" -- "$bin" sample sample_devnull.yaml
fi
row simulate-devnull 1 "/dev/null/settings.yaml" -- "$bin" simulate sim.yaml "${sim_small[@]}" --set output_dir=/dev/null

# ---- FIFOs: text outputs write through to a reader (refused without one), HDF5 refuses ----
row pk-fifo-no-reader 1 "fifo: is a FIFO that nobody reads from" -- "$bin" pk g.h5 --out fifo
cat fifo > from_fifo.csv &
reader=$!
for _ in $(seq 100); do "$bin" pk g.h5 --out fifo 2>/dev/null && break; sleep 0.05; done
wait $reader
[ "$(head -1 from_fifo.csv)" = "k,pk,nmodes" ] && [ -p fifo ] && ok || bad "pk --out fifo with a reader"
rm -f from_fifo.csv
row paint-fifo 1 "fifo: is a FIFO (named pipe)" -- "$bin" paint snap.hdf5 --grid 8 --out fifo
if [ $have_checkpoint = 1 ]; then
  row logp-fifo-no-reader 1 "fifo: is a FIFO that nobody reads from" -- "$bin" logp --checkpoint flow.h5 g4.h5 --out fifo
  row sample-fifo 1 "fifo: is a FIFO (named pipe)" -- "$bin" sample sample_fifo.yaml
fi

# ---- an output that is an input, by any name: refused before any work ----
ln -s g.h5 link.h5
ln g.h5 hard.h5
row pk-out-field 1 "g.h5: is also an input" -- "$bin" pk g.h5 --out g.h5
row pk-out-cross 1 "g8.h5: is also an input" -- "$bin" pk g.h5 --cross g8.h5 --out g8.h5
row pk-out-symlink 1 "link.h5: is also an input of this command (g.h5)" -- "$bin" pk g.h5 --out link.h5
row pk-out-hardlink 1 "hard.h5: is also an input of this command (g.h5)" -- "$bin" pk g.h5 --out hard.h5
row pk-out-dotted 1 "./somedir/../g.h5: is also an input" -- "$bin" pk g.h5 --out ./somedir/../g.h5
row paint-out-snapshot 1 "snap.hdf5: is also an input" -- "$bin" paint snap.hdf5 --grid 8 --out snap.hdf5
if [ $have_checkpoint = 1 ]; then
  row logp-out-grid 1 "g4.h5: is also an input" -- "$bin" logp --checkpoint flow.h5 g4.h5 --out g4.h5
  row logp-out-checkpoint 1 "flow.h5: is also an input" -- "$bin" logp --checkpoint flow.h5 g4.h5 --out flow.h5
  row sample-out-checkpoint 1 "flow.h5: is also an input" -- "$bin" sample sample_self.yaml
  row sample-out-config 1 "sample_conf.yaml: is also an input" -- "$bin" sample sample_conf.yaml
fi
row simulate-out-config 1 "simout/train.h5: is also an input" -- "$bin" simulate simout/train.h5 "${sim_small[@]}"

# ---- non-finite results are never printed ----
for f in huge32.h5 wild32.h5; do
  "$bin" pk $f --out "pk_$f.csv" 2> err.txt
  if [ $? -eq 0 ] && [ ! -s err.txt ] && ! grep -qiE 'nan|inf' "pk_$f.csv" && [ "$(wc -l < "pk_$f.csv")" -gt 3 ]; then ok
  else bad "pk $f: $(cat err.txt) $(head -3 "pk_$f.csv")"; fi
  rm -f "pk_$f.csv" err.txt
done
row pk-huge64 1 "huge64.h5: power spectrum: P(k) exceeds double precision" -- "$bin" pk huge64.h5 --out x.csv
row pk-huge64-stdout 1 "huge64.h5: power spectrum" -- "$bin" pk huge64.h5
row pk-huge64-cross 1 "huge64.h5: power spectrum" -- "$bin" pk huge64.h5 --cross huge64.h5 --out x.csv
if [ $have_checkpoint = 1 ]; then
  row logp-far 1 "far4.h5: " -- "$bin" logp --checkpoint flow.h5 far4.h5 --out x.csv
fi

# ---- standard output is checked ----
row pk-stdout-full 1 "standard output: cannot write: No space left on device" -- sh -c "'$bin' pk g.h5 > /dev/full"
if [ $have_checkpoint = 1 ]; then
  row logp-stdout-full 1 "standard output: cannot write" -- sh -c "'$bin' logp --checkpoint flow.h5 g4.h5 > /dev/full"
fi

# ---- the exit-status rule: 2 for the command line (with the --help hint), 1 for inputs ----
row grid-fraction 2 "--grid: expected a whole number from 2 to 4096, got 8.5 (fieldflow paint --help)" -- "$bin" paint snap.hdf5 --grid 8.5 --out x.h5
row grid-zero 2 "--grid: expected a whole number" -- "$bin" paint snap.hdf5 --grid 0 --out x.h5
row paint-mas 2 "--mas" -- "$bin" paint snap.hdf5 --grid 8 --mas none --out x.h5
row paint-interlace-odd 2 "--grid: interlacing needs an even grid size" -- "$bin" paint snap.hdf5 --grid 9 --interlace --out x.h5
row kbin-zero 2 "--kbin: expected a positive finite number, got 0 (fieldflow pk --help)" -- "$bin" pk g.h5 --kbin 0
row index-negative 2 "--index: expected a whole number" -- "$bin" pk g.h5 --index -1
row shot-and-particles 2 "--shot-noise excludes --particles" -- "$bin" pk g.h5 --shot-noise 1 --particles 5
row set-malformed 2 "--set: expected KEY=VALUE" -- "$bin" simulate sim.yaml --set nonsense
row unknown-option 2 "The following argument was not expected: --frobnicate (fieldflow pk --help)" -- "$bin" pk g.h5 --frobnicate
row unknown-subcommand 2 "juggle: unknown subcommand" -- "$bin" juggle
row index-beyond 1 "g.h5: --index 3 out of range" -- "$bin" pk g.h5 --index 3
row missing-file 1 "nothere.h5: no such file" -- "$bin" pk nothere.h5

# ---- memory: an absurd binning costs nothing, an absurd grid is refused before allocating ----
"$bin" pk g.h5 --kbin 5e-8 --out tiny_bins.csv 2> err.txt
rows=$(($(wc -l < tiny_bins.csv) - 1))
[ ! -s err.txt ] && [ $rows -gt 20 ] && [ $rows -lt 70 ] && ok || bad "pk --kbin 5e-8: $rows rows, $(cat err.txt)"
rm -f tiny_bins.csv err.txt
row paint-absurd-grid 1 "--grid: a 4096^3 grid needs" -- "$bin" paint snap.hdf5 --grid 4096 --out x.h5

# ---- misleading messages ----
row snapshot-folder 1 "somedir: is a folder" -- "$bin" paint somedir --grid 8 --out x.h5
row grid-uint8 1 "u8.h5: /delta holds uint8, expected float32 or float64" -- "$bin" pk u8.h5
row grid-float16 1 "f16.h5: /delta holds float16, expected float32 or float64" -- "$bin" pk f16.h5
row grid-complex 1 "c64.h5: /delta holds a compound type" -- "$bin" pk c64.h5
row omega-m 1 "sim.yaml: cosmology.omega_m: expected a number > 0 and <= 1" -- "$bin" simulate sim.yaml --set cosmology.omega_m=1.5

# ---- the settings layer (one rule for every config-driven command) ----
mkdir -p confdir
row config-is-directory 1 "confdir: is a directory" -- "$bin" simulate confdir
row integer-wraps 1 "sim.yaml: sets.train.count" -- "$bin" simulate sim.yaml --set sets.train.count=4294967299
row integer-not-whole 1 "sim.yaml: paint.grid: expected an integer" -- "$bin" simulate sim.yaml --set paint.grid=8.5
row set-empty-value 1 "sim.yaml: --set paint.grid=: empty value" -- "$bin" simulate sim.yaml --set paint.grid=
printf 'paint:\n  grid: 8\n  grid: 16\n' > dup.yaml
row duplicate-key 1 "dup.yaml: paint.grid: key given twice" -- "$bin" simulate dup.yaml
row output-dir-empty 1 "sim.yaml: output_dir" -- "$bin" simulate sim.yaml --set 'output_dir=""'
if [ "${have_checkpoint:-0}" = 1 ]; then
  printf 'sample:\n  checkpoint: flow.h5\n  out: s.h5\n' > samp.yaml
  row sample-count-wraps 1 "samp.yaml: sample.count" -- "$bin" sample samp.yaml --set sample.count=4294967299
fi
$py -c "
import h5py, time, sys
f = h5py.File('g8.h5', 'r+')   # holds HDF5's write lock
open('locked', 'w').close()
time.sleep(20)
" &
holder=$!
for _ in $(seq 200); do [ -e locked ] && break; sleep 0.05; done
rm -f locked
row locked 1 "g8.h5: is locked by another program" -- "$bin" pk g8.h5
kill $holder 2>/dev/null; wait $holder 2>/dev/null

# ---- names with control characters stay on one line, escaped ----
row newline-name 1 'bad\nname.h5: no such file' -- "$bin" pk $'bad\nname.h5'
row escape-name 1 'x\x1b[31m.h5: no such file' -- "$bin" pk $'x\e[31m.h5'

# ---- bk, report, denoise: the same rules ----
row bk-devfull 1 "/dev/full: cannot write: No space left on device" -- "$bin" bk g.h5 --out /dev/full
row bk-fifo-no-reader 1 "fifo: is a FIFO that nobody reads from" -- "$bin" bk g.h5 --out fifo
row bk-out-field 1 "g.h5: is also an input" -- "$bin" bk g.h5 --out g.h5
row bk-missing 1 "nothere.h5: no such file" -- "$bin" bk nothere.h5 --out x.csv
row bk-huge64 1 "huge64.h5: " -- "$bin" bk huge64.h5 --out x.csv
row bk-kbin-zero 2 "--kbin: " -- "$bin" bk g.h5 --kbin 0
printf 'report:\n  kind: reconstruction\n  out: rep\n  inputs: {results: [nothere.h5]}\n' > rep_missing.yaml
printf 'report:\n  kind: reconstruction\n  out: rep\n  inputs: {results: [g.h5]}\n' > rep_notresult.yaml
printf 'report:\n  kind: movie\n  out: rep\n' > rep_kind.yaml
printf 'report:\n  kind: training\n  out: rep\n  inputs: {fields: [g.h5]}\n' > rep_norun.yaml
row report-missing-result 1 "nothere.h5: no such file" -- "$bin" report rep_missing.yaml
row report-not-a-result 1 "g.h5: " -- "$bin" report rep_notresult.yaml
row report-kind 1 "rep_kind.yaml: report.kind: expected one of training, reconstruction" -- "$bin" report rep_kind.yaml
row report-run-dir 1 "rep_norun.yaml: report.inputs.run_dir: required when kind is training" -- "$bin" report rep_norun.yaml
if [ $have_checkpoint = 1 ]; then
  den() {  # den FILE EXTRA_LINES: a denoise config on the seed checkpoint's 4^3 training box
    printf 'denoise:\n  checkpoint: flow.h5\n  combined: {k_split_hmpc: 0.1}\n%s\n' "$2" > "$1"
  }
  base=$'  truth: {grid: g4.h5, index: 0}\n  noise: {sigma: 0.5, seed: 1}\n  mask: {kind: none}'
  den den_self.yaml "$base"$'\n  out: flow.h5'
  den den_sigma.yaml $'  truth: {grid: g4.h5, index: 0}\n  noise: {sigma: 0, seed: 1}\n  mask: {kind: none}\n  out: den.h5'
  den den_index.yaml $'  truth: {grid: g4.h5, index: 5}\n  noise: {sigma: 0.5, seed: 1}\n  mask: {kind: none}\n  out: den.h5'
  den den_devnull.yaml "$base"$'\n  out: /dev/null'
  row denoise-out-checkpoint 1 "flow.h5: is also an input" -- "$bin" denoise den_self.yaml
  row denoise-sigma-zero 1 "den_sigma.yaml: denoise.noise.sigma" -- "$bin" denoise den_sigma.yaml
  row denoise-index 1 "den_index.yaml: denoise.truth.index: 5 is out of range" -- "$bin" denoise den_index.yaml
  row denoise-devnull 1 "/dev/null: is a character device" -- "$bin" denoise den_devnull.yaml
fi

# ---- train: refused before anything is written (a run folder it created goes again) ----
$py - <<'PY'
import h5py, numpy as np
rng = np.random.default_rng(5)
def stack(name, values):
    with h5py.File(name, "w") as f:
        f["delta"] = values; f.attrs["box_size"] = 100.0; f.attrs["redshift"] = 0.0
stack("s8.h5", (rng.lognormal(0, 0.5, (6, 8, 8, 8)) - 1).astype(np.float32))
nan = (rng.lognormal(0, 0.5, (6, 8, 8, 8)) - 1).astype(np.float32); nan[2, 1, 1, 1] = np.nan
stack("nan8.h5", nan)
stack("flat8.h5", rng.normal(0, 0.3, (6, 8, 8, 4)).astype(np.float32))
stack("below8.h5", np.full((6, 8, 8, 8), -1.5, np.float32))
PY
cat > tr.yaml <<'EOF'
flow:
  grid: 8
  levels: {checkerboard_couplings: [2, 2], channel_couplings: [2, 0], hidden_checkerboard: [4, 8], hidden_channel: [8, 0]}
data: {train: s8.h5, preprocess: log1p}
train: {run_dir: run, steps: 2, batch: 2, report: false}
EOF
printf 'train:\n  steps: 2\n  steps: 3\n' > tr_dup.yaml
row train-config-directory 1 "confdir: is a directory" -- "$bin" train confdir
row train-missing-data 1 "nothere.h5: no such file" -- "$bin" train tr.yaml --set data.train=nothere.h5
row train-nan-field 1 "nan8.h5: /delta[2] has 1 non-finite value" -- "$bin" train tr.yaml --set data.train=nan8.h5
row train-nan-validation 1 "nan8.h5: /delta[2] has 1 non-finite value" -- "$bin" train tr.yaml --set data.validation=nan8.h5
row train-not-cubic 1 "flat8.h5: /delta has shape 6x8x8x4: the grid is not cubic" -- "$bin" train tr.yaml --set data.train=flat8.h5
row train-grid-mismatch 1 "s8.h5: holds a 8^3 grid, the flow models 16^3" -- "$bin" train tr.yaml --set flow.grid=16
row train-log1p-domain 1 "below8.h5[0]: log1p needs delta > -1 - eps" -- "$bin" train tr.yaml --set data.train=below8.h5
row train-batch-wraps 1 "tr.yaml: train.batch: expected an integer >= 1" -- "$bin" train tr.yaml --set train.batch=4294967298
row train-set-empty 1 "tr.yaml: --set train.lr=: empty value" -- "$bin" train tr.yaml --set train.lr=
row train-duplicate-key 1 "tr_dup.yaml: train.steps: key given twice" -- "$bin" train tr_dup.yaml
row train-data-fifo 1 "fifo: is not a regular file" -- "$bin" train tr.yaml --set data.train=fifo
row train-run-dir-devnull 1 "/dev/null: cannot create the run folder" -- "$bin" train tr.yaml --set train.run_dir=/dev/null
row train-run-dir-file 1 "g.h5: cannot create the run folder" -- "$bin" train tr.yaml --set train.run_dir=g.h5

# ---- progress never precedes the error on stderr ----
out=$("$bin" paint snap.hdf5 --grid 8 --out painted.h5 2>&1 >/dev/null)
[ -z "$out" ] && [ -f painted.h5 ] && ok || bad "paint writes progress on stderr: '$out'"
rm -f painted.h5

# ---- signals in the middle of a write: temporaries removed, status 128 + N, nothing left ----
interrupt() {  # interrupt NAME SIGNAL STATUS WATCHED_DIR -- command...
  local name=$1 sig=$2 want=$3 dir=$4; shift 5
  local before after status caught=0
  before=$(state)
  "$@" > /dev/null 2> sig_err.txt &
  local pid=$!
  for _ in $(seq 4000); do
    if ls -A "$dir" 2>/dev/null | grep -q '\.tmp\.'; then kill -s "$sig" $pid; caught=1; break; fi
    kill -0 $pid 2>/dev/null || break
    sleep 0.005
  done
  wait $pid; status=$?
  local err; err=$(cat sig_err.txt); rm -f sig_err.txt
  if [ $caught = 0 ]; then bad "$name: never saw a temporary file (status $status)"; return; fi
  if [ $status -ne "$want" ]; then bad "$name: status $status, expected $want: $err"; return; fi
  if find . -name '*.tmp.*' | grep -q .; then bad "$name: temporary left: $(find . -name '*.tmp.*')"; return; fi
  after=$(state)
  if [ "$before" != "$after" ] && [ "$dir" = . ]; then bad "$name: files changed"; return; fi
  ok
}
interrupt paint-sigint INT 130 . -- "$bin" paint snap.hdf5 --grid 384 --out big.h5
interrupt paint-sigterm TERM 143 . -- "$bin" paint snap.hdf5 --grid 384 --out big.h5
interrupt simulate-sigint INT 130 simsig/train/sim_0000 -- "$bin" simulate sim.yaml --set output_dir=simsig --set simulation.particles_per_side=64 --set simulation.steps=1 --set paint.grid=8 --set sets.train.count=1 --set sets.test.count=0 --set snapshots.precision=float64
# A rerun removes the stale temporaries of its own outputs (their writer is dead).
dead=$(sh -c 'echo $$')
touch ".g.csv.tmp.$dead.0"
"$bin" pk g.h5 --out g.csv 2>/dev/null
[ -f g.csv ] && [ ! -e ".g.csv.tmp.$dead.0" ] && ok || bad "a rerun left a stale temporary"
rm -f g.csv

finish
