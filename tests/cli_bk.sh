#!/usr/bin/env bash
# fieldflow bk end to end: the CSV header, B, Q, P and the triangle counts against an independent
# numpy implementation of Pylians3's estimator (numpy.fft, shells |k - k_i| < k_F), --kbin, --mas,
# --index, a 64^3 field in seconds, and bad inputs refused with one line and no output file.
source "$(dirname "$0")/lib.sh" "$@"
need_h5py "test grids"
cd "$tmp" || exit 1

$py - <<'PY'
import h5py, numpy as np
rng = np.random.default_rng(3)
def lognormal(n, seed):
    r = np.random.default_rng(seed)
    g = r.normal(size=(n, n, n))
    gk = np.fft.rfftn(g)
    kx = np.fft.fftfreq(n) * n; kz = np.fft.rfftfreq(n) * n
    k = np.sqrt(kx[:, None, None]**2 + kx[None, :, None]**2 + kz[None, None, :]**2)
    gk *= np.where(k > 0, np.maximum(k, 1)**-1.2, 0)
    g = np.fft.irfftn(gk, s=(n, n, n)); g *= 0.6 / g.std()
    return np.exp(g - g.var() / 2) - 1
with h5py.File("f16.h5", "w") as f:
    f["delta"] = np.stack([lognormal(16, 1), lognormal(16, 2)]).astype(np.float64)
    f.attrs["box_size"] = 100.0; f.attrs["redshift"] = 0.0
with h5py.File("f64.h5", "w") as f:
    f["delta"] = lognormal(64, 4).astype(np.float32)
    f.attrs["box_size"] = 256.0; f.attrs["redshift"] = 0.0
with h5py.File("odd.h5", "w") as f:
    f["delta"] = np.zeros((9, 9, 9), np.float32)
    f.attrs["box_size"] = 100.0; f.attrs["redshift"] = 0.0
PY

# numpy reference: Pylians3's Bk for the equilateral shells, k = 0 excluded (docs/statistics.md).
check() {  # file index kbin mas csv
  $py - "$@" <<'PY'
import sys, csv, h5py, numpy as np
path, index, w, mas, out = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
with h5py.File(path) as f:
    d = f["delta"][...]; L = f.attrs["box_size"]
d = d[index] if d.ndim == 4 else d
n = d.shape[0]
dk = np.fft.fftn(d.astype(np.float64))
m = np.fft.fftfreq(n) * n
p = {"none": 0, "ngp": 1, "cic": 2, "tsc": 3}[mas]
win = np.sinc(m / n) ** p  # numpy sinc(x) = sin(pi x)/(pi x)
dk /= win[:, None, None] * win[None, :, None] * win[None, None, :]
kn = np.sqrt(m[:, None, None]**2 + m[None, :, None]**2 + m[None, None, :]**2)
rows = list(csv.DictReader(open(out)))
assert list(rows[0].keys()) == ["k", "bk", "qk", "pk", "ntriangles"], rows[0].keys()
expected = []
i = 1
while i * w <= n / 2 + 1e-9:
    shell = (kn > 0) & (kn >= (i - 1) * w - 1e-9) & (kn < (i + 1) * w - 1e-9)
    d1 = np.fft.ifftn(np.where(shell, dk, 0)).real
    i1 = np.fft.ifftn(shell.astype(float)).real
    tri = (i1**3).sum() * n**6  # normalised inverse: sum i1^3 = N^-6 x triplets
    if tri > 0.5:
        B = (d1**3).sum() / (i1**3).sum() * L**6 / n**9
        P = (np.abs(dk[shell])**2).mean() * L**3 / n**6
        expected.append((2 * np.pi / L * i * w, B, B / (3 * P * P), P, round(tri)))
    i += 1
assert len(rows) == len(expected), (len(rows), len(expected))
for r, e in zip(rows, expected):
    got = [float(r[c]) for c in ["k", "bk", "qk", "pk", "ntriangles"]]
    for g, x, name in zip(got, e, ["k", "bk", "qk", "pk", "ntriangles"]):
        assert abs(g - x) <= 1e-6 * max(abs(x), 1e-30) + 1e-12, (name, g, x)
print(f"{len(rows)} shells agree with numpy")
PY
}

for args in "f16.h5 0 1 none" "f16.h5 1 1 none" "f16.h5 0 2 cic"; do
  set -- $args
  if "$bin" bk "$1" --index "$2" --kbin "$3" --mas "$4" --out "bk_$2_$3_$4.csv" > /dev/null &&
     check "$1" "$2" "$3" "$4" "bk_$2_$3_$4.csv"; then ok; else bad "bk $args against numpy"; fi
done
# Standard output carries the same CSV.
"$bin" bk f16.h5 > stdout.csv && cmp -s stdout.csv bk_0_1_none.csv && ok || bad "stdout differs from --out"
# 64^3 takes seconds.
start=$(date +%s.%N)
"$bin" bk f64.h5 --out bk64.csv > /dev/null && ok || bad "bk 64^3"
seconds=$(echo "$(date +%s.%N) - $start" | bc)
echo "bk of 64^3: $seconds s"
(( $(echo "$seconds < 20" | bc) )) && ok || bad "bk of 64^3 took $seconds s"
check f64.h5 0 1 none bk64.csv > /dev/null && ok || bad "64^3 against numpy"

# Bad inputs: one line "fieldflow: ...", status 1, no output file.
refuse() {  # expected-text args...
  local want=$1; shift
  rm -f out.csv
  local err; err=$("$bin" bk "$@" 2>&1 >/dev/null); local status=$?
  if [ $status -eq 1 ] && [ "$(echo "$err" | wc -l)" -eq 1 ] && [[ "$err" == *"$want"* ]] && [ ! -e out.csv ]; then
    ok
  else
    bad "bk $* -> status $status: $err"
  fi
}
refuse "odd.h5: grid size 9 is odd; Fourier statistics need an even grid size" odd.h5 --out out.csv
refuse "f16.h5: --index 2 out of range: the file holds 2 fields" f16.h5 --index 2 --out out.csv
# A command-line mistake exits 2 (README "Errors"), with the --help hint.
for w in 0 0.1; do
  err=$("$bin" bk f16.h5 --kbin $w --out out.csv 2>&1 >/dev/null)
  [[ $? -eq 2 && "$err" == "fieldflow: --kbin: expected a shell width of at least 0.25 (units of k_F), got $w (fieldflow bk --help)" && ! -e out.csv ]] && ok || bad "bk --kbin $w: $err"
done
refuse "missing.h5" missing.h5 --out out.csv
cp f16.h5 same.h5
err=$("$bin" bk same.h5 --out same.h5 2>&1); [[ $? -eq 1 && "$err" == "fieldflow: same.h5: is also an input of this command; refusing to overwrite it" ]] && ok || bad "output over input: $err"

finish
[ "$fail" -eq 0 ]
