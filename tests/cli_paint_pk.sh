#!/usr/bin/env bash
# fieldflow paint and pk end to end: snapshots in kpc/h and Mpc/h (one and two files), the CSV
# formats, P(k) against an independent numpy estimate, and every bad input refused with one line
# naming the input, a non-zero status and no output file left behind.
source "$(dirname "$0")/lib.sh" "$@"
need_h5py "test snapshots"
cd "$tmp" || exit 1

# ---- inputs: snapshots (Gadget HDF5) and hand-made grid files ----
$py - <<'PY'
import h5py, numpy as np
def snapshot(base, pos, box_file_units, scale, nfiles):
    parts = np.array_split(np.arange(len(pos)), nfiles)
    for i, idx in enumerate(parts):
        name = f"{base}.hdf5" if nfiles == 1 else f"{base}.{i}.hdf5"
        with h5py.File(name, "w") as f:
            h = f.create_group("Header")
            h.attrs["BoxSize"] = box_file_units
            this = np.zeros(6, np.uint32); this[1] = len(idx)
            tot = np.zeros(6, np.uint32); tot[1] = len(pos)
            h.attrs["NumPart_ThisFile"] = this
            h.attrs["NumPart_Total"] = tot
            h.attrs["NumPart_Total_HighWord"] = np.zeros(6, np.uint32)
            h.attrs["MassTable"] = np.array([0, 1.0, 0, 0, 0, 0])
            h.attrs["Time"] = 0.5; h.attrs["Redshift"] = 1.0
            h.attrs["NumFilesPerSnapshot"] = nfiles
            h.attrs["Omega0"] = 0.3; h.attrs["OmegaLambda"] = 0.7; h.attrs["HubbleParam"] = 0.7
            p = f.create_group("PartType1")
            p["Coordinates"] = (pos[idx] * scale).astype(np.float32)
            p["Velocities"] = np.zeros((len(idx), 3), np.float32)
            p["ParticleIDs"] = idx.astype(np.uint32)
n, L = 16, 100.0
g = (np.arange(n) + 0.5) * L / n
q = np.stack(np.meshgrid(g, g, g, indexing="ij"), -1).reshape(-1, 3)
rng = np.random.default_rng(1)
pos = (q + rng.normal(0, 2.0, q.shape)) % L
snapshot("snap_kpc", pos, L * 1000, 1000.0, 1)   # Quijote-like: kpc/h
snapshot("snap_mpc", pos, L, 1.0, 2)             # Mpc/h, split over two files
with h5py.File("empty_snap.hdf5", "w") as f:
    h = f.create_group("Header")
    h.attrs["BoxSize"] = 100.0
    h.attrs["NumPart_ThisFile"] = np.zeros(6, np.uint32)
    h.attrs["NumPart_Total"] = np.zeros(6, np.uint32)
    h.attrs["NumPart_Total_HighWord"] = np.zeros(6, np.uint32)
    h.attrs["MassTable"] = np.array([0, 1.0, 0, 0, 0, 0])
    h.attrs["Time"] = 1.0; h.attrs["Redshift"] = 0.0; h.attrs["NumFilesPerSnapshot"] = 1
    h.attrs["Omega0"] = 0.3; h.attrs["OmegaLambda"] = 0.7; h.attrs["HubbleParam"] = 0.7
with h5py.File("no_header.hdf5", "w") as f:
    f["x"] = np.zeros(3)
def grid(name, shape, box=100.0, dtype=np.float32, value=None):
    with h5py.File(name, "w") as f:
        d = rng.normal(0, 1, shape).astype(dtype)
        if value is not None: d.flat[5] = value
        f["delta"] = d
        if box is not None: f.attrs["box_size"] = box
        f.attrs["redshift"] = 0.0
grid("odd.h5", (15, 15, 15))
grid("g8.h5", (8, 8, 8))
grid("g16_box50.h5", (16, 16, 16), box=50.0)
grid("g16_f64.h5", (16, 16, 16), dtype=np.float64)
grid("nan.h5", (16, 16, 16), value=np.nan)
grid("nobox.h5", (16, 16, 16), box=None)
grid("flat.h5", (16, 16, 8))
members = rng.normal(0, 1, (2, 16, 16, 16)).astype(np.float32)
with h5py.File("stack.h5", "w") as f:
    f["delta"] = members; f.attrs["box_size"] = 100.0; f.attrs["redshift"] = 0.0
with h5py.File("member1.h5", "w") as f:
    f["delta"] = members[1]; f.attrs["box_size"] = 100.0; f.attrs["redshift"] = 0.0
with h5py.File("nodelta.h5", "w") as f:
    f["other"] = np.zeros((8, 8, 8)); f.attrs["box_size"] = 1.0
PY
echo "not an HDF5 file" > text.hdf5
cp text.hdf5 text.h5

# ---- good runs ----
out=$("$bin" paint snap_kpc.hdf5 --grid 16 --out g.h5 2>&1)
if [ $? -eq 0 ] && [ -f g.h5 ] && printf '%s' "$out" | grep -q "kpc/h"; then ok; else bad "paint kpc/h: $out"; fi
out=$("$bin" paint snap_mpc.0.hdf5 --grid 16 --mas tsc --interlace --out sub/gt.h5 2>&1)
if [ $? -eq 0 ] && [ -f sub/gt.h5 ] && printf '%s' "$out" | grep -qi "mpc/h" &&
   printf '%s' "$out" | grep -q "2 file"; then ok; else bad "paint two files mpc/h interlaced: $out"; fi
out=$("$bin" paint snap_kpc --grid 16 --mas ngp --length-unit kpc/h --out gn.h5 2>&1)
if [ $? -eq 0 ] && [ -f gn.h5 ]; then ok; else bad "paint explicit unit, base name: $out"; fi

"$bin" pk g.h5 --mas cic > pk_stdout.csv 2> pk_stderr.txt
if [ $? -eq 0 ] && [ "$(head -1 pk_stdout.csv)" = "k,pk,nmodes" ] && [ "$(wc -l < pk_stdout.csv)" -gt 5 ]; then ok
else bad "pk to stdout: $(head -3 pk_stdout.csv) $(cat pk_stderr.txt)"; fi
out=$("$bin" pk g.h5 --mas cic --out pk.csv 2>&1)
if [ $? -eq 0 ] && [ -z "$out" ] && cmp -s pk.csv pk_stdout.csv; then ok; else bad "pk --out: $out"; fi
"$bin" pk g.h5 --cross gt.h5 > /dev/null 2>&1 && bad "pk --cross with a missing file succeeded" || ok
OMP_NUM_THREADS=1 "$bin" pk g.h5 --mas cic --out pk_1thread.csv 2> err.txt
OMP_NUM_THREADS=2 "$bin" pk g.h5 --mas cic --out pk_2threads.csv 2>> err.txt
if paste -d, pk_1thread.csv pk_2threads.csv | awk -F, 'NR > 1 { d = $2 - $5; if (d < 0) d = -d;
     if ($1 != $4 || $3 != $6 || d > 1e-6 * $2) bad = 1 } END { exit bad }'; then ok
else bad "pk with 1 and 2 threads differ: $(cat err.txt)"; fi
"$bin" pk g.h5 --cross sub/gt.h5 --mas cic --out cross.csv 2> err.txt
if [ $? -eq 0 ] && [ "$(head -1 cross.csv)" = "k,pk1,pk2,pk12,r,nmodes" ]; then ok; else bad "pk --cross: $(cat err.txt)"; fi
"$bin" pk g.h5 --cross g.h5 --out self.csv 2> err.txt
if awk -F, 'NR > 1 && ($5 < 0.9999999 || $5 > 1.0000001) { bad = 1 } END { exit bad }' self.csv; then ok
else bad "r of a field with itself is not 1"; fi
"$bin" pk g16_f64.h5 --kbin 2 --particles 4096 --out f64.csv 2> err.txt
if [ $? -eq 0 ] && [ "$(head -1 f64.csv)" = "k,pk,nmodes" ]; then ok; else bad "pk float64 --kbin --particles: $(cat err.txt)"; fi

"$bin" pk stack.h5 --index 1 --out stack1.csv 2> err.txt && "$bin" pk member1.h5 --out member1.csv 2>> err.txt
if [ $? -eq 0 ] && cmp -s stack1.csv member1.csv; then ok; else bad "pk --index of a stack: $(cat err.txt)"; fi
# --all: every member in one table, index first; each member's rows are its --index table.
"$bin" pk stack.h5 --all --out all.csv 2> err.txt && "$bin" pk stack.h5 --index 0 --out stack0.csv 2>> err.txt
if [ $? -eq 0 ] && [ "$(head -1 all.csv)" = "index,k,pk,nmodes" ] \
  && diff <(awk -F, 'NR > 1 && $1 == 0 {print substr($0, index($0, ",") + 1)}' all.csv) <(tail -n +2 stack0.csv) > /dev/null \
  && diff <(awk -F, 'NR > 1 && $1 == 1 {print substr($0, index($0, ",") + 1)}' all.csv) <(tail -n +2 stack1.csv) > /dev/null \
  && [ "$(awk -F, 'NR > 1 && $1 > 1' all.csv | wc -l)" -eq 0 ]; then ok; else bad "pk --all: $(cat err.txt)"; fi
"$bin" pk stack.h5 --cross stack.h5 --all --out cross_all.csv 2> err.txt \
  && "$bin" pk stack.h5 --cross stack.h5 --index 1 --out cross1.csv 2>> err.txt
if [ $? -eq 0 ] && [ "$(head -1 cross_all.csv)" = "index,k,pk1,pk2,pk12,r,nmodes" ] \
  && diff <(awk -F, 'NR > 1 && $1 == 1 {print substr($0, index($0, ",") + 1)}' cross_all.csv) <(tail -n +2 cross1.csv) > /dev/null
then ok; else bad "pk --cross --all: $(cat err.txt)"; fi

# P(k) of the painted grid against an independent numpy estimate (full complex FFT, same
# conventions: L^3/N^6 |delta_k|^2 / prod sinc^4, bins floor(|k|/k_F) closed at |k| = k_N,
# |k| <= k_N, mean |k|).
if $py - <<'PY'
import h5py, numpy as np, sys
with h5py.File("g.h5") as f:
    d = f["delta"][...].astype(np.float64); L = float(f.attrs["box_size"])
n = d.shape[0]
dk = np.fft.fftn(d)
m = np.fft.fftfreq(n, 1.0 / n)
mx, my, mz = np.meshgrid(m, m, m, indexing="ij")
length = np.sqrt(mx**2 + my**2 + mz**2)
w = (np.sinc(mx / n) * np.sinc(my / n) * np.sinc(mz / n)) ** 2
p = L**3 / n**6 * np.abs(dk) ** 2 / w**2
keep = (length > 0) & (length <= n / 2)
bins = np.floor(length[keep]).astype(int)
bins[length[keep] == n / 2] = n // 2 - 1  # the last bin is closed: [k_N - k_F, k_N]
cnt = np.bincount(bins); pk = np.bincount(bins, p[keep]); kk = np.bincount(bins, length[keep])
ref = [(2 * np.pi / L * kk[i] / cnt[i], pk[i] / cnt[i], cnt[i]) for i in range(len(cnt)) if cnt[i] > 0]
got = np.loadtxt("pk.csv", delimiter=",", skiprows=1)
ok = len(got) == len(ref) and all(
    abs(g[0] - r[0]) < 1e-6 * r[0] and abs(g[1] - r[1]) < 1e-4 * r[1] and g[2] == r[2]
    for g, r in zip(got, ref))
sys.exit(0 if ok else 1)
PY
then ok; else bad "pk differs from the numpy estimate"; fi

# ---- bad input: status != 0, first line names the input and problem, no output left ----
expect_error() {  # expect_error NAME PATTERN OUTPUT -- command...
  local name=$1 pattern=$2 output=$3; shift 4
  local before after status err
  before=$(ls -A | sort)
  err=$("$@" 2>&1 >/dev/null); status=$?
  after=$(ls -A | sort)
  if [ $status -eq 0 ]; then bad "$name: exit status 0"; return; fi
  # the first line that is not paint's progress report is the error
  if ! printf '%s\n' "$err" | grep -v '^fieldflow paint: ' | head -1 | grep -qE -- "$pattern"; then
    bad "$name: '$err'"; return
  fi
  if [ -n "$output" ] && [ -e "$output" ]; then bad "$name: $output left behind"; return; fi
  if [ "$before" != "$after" ]; then bad "$name: files changed: $after"; return; fi
  ok
}
one_line() {  # errors of fieldflow itself (not of option parsing) are exactly one line
  local name=$1; shift
  local err; err=$("$@" 2>&1 >/dev/null | grep -v '^fieldflow paint: ')
  if [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] && printf '%s' "$err" | grep -q "^fieldflow: "; then ok
  else bad "$name: not one line: '$err'"; fi
}
expect_error paint-missing "missing_snap" x.h5 -- "$bin" paint missing_snap.hdf5 --grid 8 --out x.h5
one_line paint-missing-one-line "$bin" paint missing_snap.hdf5 --grid 8 --out x.h5
expect_error paint-not-hdf5 "text.hdf5" x.h5 -- "$bin" paint text.hdf5 --grid 8 --out x.h5
expect_error paint-no-header "no_header.hdf5.*Header" x.h5 -- "$bin" paint no_header.hdf5 --grid 8 --out x.h5
expect_error paint-no-particles "empty_snap.hdf5.*particles" x.h5 -- "$bin" paint empty_snap.hdf5 --grid 8 --out x.h5
expect_error paint-grid-zero "--grid" x.h5 -- "$bin" paint snap_kpc.hdf5 --grid 0 --out x.h5
expect_error paint-grid-text "--grid" x.h5 -- "$bin" paint snap_kpc.hdf5 --grid many --out x.h5
expect_error paint-grid-missing "--grid" x.h5 -- "$bin" paint snap_kpc.hdf5 --out x.h5
expect_error paint-out-missing "--out" "" -- "$bin" paint snap_kpc.hdf5 --grid 8
expect_error paint-mas "--mas" x.h5 -- "$bin" paint snap_kpc.hdf5 --grid 8 --mas pcs --out x.h5
expect_error paint-mas-none "--mas" x.h5 -- "$bin" paint snap_kpc.hdf5 --grid 8 --mas none --out x.h5
expect_error paint-unit "--length-unit.*furlong" x.h5 -- "$bin" paint snap_kpc.hdf5 --grid 8 --length-unit furlong --out x.h5
one_line paint-unit-one-line "$bin" paint snap_kpc.hdf5 --grid 8 --length-unit furlong --out x.h5
expect_error paint-interlace-odd "--grid.*even" x.h5 -- "$bin" paint snap_kpc.hdf5 --grid 9 --interlace --out x.h5
expect_error paint-out-unwritable "x.h5" "" -- "$bin" paint snap_kpc.hdf5 --grid 8 --out text.h5/x.h5
expect_error pk-missing "missing.h5" out.csv -- "$bin" pk missing.h5 --out out.csv
one_line pk-missing-one-line "$bin" pk missing.h5 --out out.csv
expect_error pk-not-hdf5 "text.h5" out.csv -- "$bin" pk text.h5 --out out.csv
expect_error pk-no-delta "nodelta.h5.*delta" out.csv -- "$bin" pk nodelta.h5 --out out.csv
expect_error pk-no-box "nobox.h5.*box_size" out.csv -- "$bin" pk nobox.h5 --out out.csv
expect_error pk-not-cubic "flat.h5.*cubic" out.csv -- "$bin" pk flat.h5 --out out.csv
expect_error pk-nan "nan.h5" out.csv -- "$bin" pk nan.h5 --out out.csv
expect_error pk-odd "odd.h5.*odd" out.csv -- "$bin" pk odd.h5 --out out.csv
one_line pk-odd-one-line "$bin" pk odd.h5 --out out.csv
expect_error pk-cross-size "g8.h5.*grid size" out.csv -- "$bin" pk g.h5 --cross g8.h5 --out out.csv
expect_error pk-cross-box "g16_box50.h5.*box size" out.csv -- "$bin" pk g.h5 --cross g16_box50.h5 --out out.csv
expect_error pk-cross-missing "nothere.h5" out.csv -- "$bin" pk g.h5 --cross nothere.h5 --out out.csv
expect_error pk-kbin-zero "--kbin" out.csv -- "$bin" pk g.h5 --kbin 0 --out out.csv
expect_error pk-kbin-negative "--kbin" out.csv -- "$bin" pk g.h5 --kbin -2 --out out.csv
expect_error pk-kbin-text "--kbin" out.csv -- "$bin" pk g.h5 --kbin wide --out out.csv
expect_error pk-mas "--mas" out.csv -- "$bin" pk g.h5 --mas quadratic --out out.csv
expect_error pk-shot-negative "--shot-noise" out.csv -- "$bin" pk g.h5 --shot-noise -1 --out out.csv
expect_error pk-shot-and-particles "--shot-noise" out.csv -- "$bin" pk g.h5 --shot-noise 1 --particles 10 --out out.csv
expect_error pk-particles-negative "--particles" out.csv -- "$bin" pk g.h5 --particles -5 --out out.csv
expect_error pk-index "g.h5.*index" out.csv -- "$bin" pk g.h5 --index 3 --out out.csv
expect_error pk-index-stack "stack.h5.*index" out.csv -- "$bin" pk stack.h5 --index 2 --out out.csv
expect_error pk-index-negative "--index" out.csv -- "$bin" pk g.h5 --index -1 --out out.csv
expect_error pk-all-and-index "--all" out.csv -- "$bin" pk stack.h5 --all --index 1 --out out.csv
expect_error pk-all-cross-count "member1.h5.*--all.*1 field" out.csv -- "$bin" pk stack.h5 --cross member1.h5 --all --out out.csv
expect_error pk-field-missing "field" out.csv -- "$bin" pk --out out.csv
cp g.h5 keep.h5
expect_error pk-out-is-input "keep.h5: is also an input" "" -- "$bin" pk keep.h5 --out keep.h5
if cmp -s g.h5 keep.h5; then ok; else bad "pk --out onto its input changed the input"; fi
cp snap_kpc.hdf5 snap_keep.hdf5
expect_error paint-out-is-input "snap_keep.hdf5: is also an input" "" -- "$bin" paint snap_keep.hdf5 --grid 8 --out snap_keep.hdf5
if cmp -s snap_kpc.hdf5 snap_keep.hdf5; then ok; else bad "paint --out onto its snapshot changed it"; fi
expect_error pk-out-unwritable "x.csv" "" -- "$bin" pk g.h5 --out text.h5/x.csv

# ---- help ----
"$bin" paint --help | grep -q -- "--interlace" && ok || bad "paint --help"
"$bin" pk --help | grep -q -- "--cross" && ok || bad "pk --help"

finish
