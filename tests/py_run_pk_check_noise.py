"""run/pk_check_noise.py, the P(k) check's noise floor: its pass rate against the analytic one
for one bin (the ratio of two Gaussian means, to first order a Gaussian of variance
sigma^2 (1/S + 1/T)), and end to end on a stack of white-noise fields written by h5py (the rate
grows with the test set; a stack too small for a covariance is refused with one line).
Usage: py_run_pk_check_noise.py FIELDFLOW_BINARY SOURCE_DIR (exit 77 = skipped)."""
import math
import os
import re
import subprocess
import sys
import tempfile

from checklib import check, finish, optional

h5py, np = optional("h5py", "numpy")

binary, source = sys.argv[1], sys.argv[2]
sys.path.insert(0, os.path.join(source, "run"))
from pk_check_noise import pass_rate  # noqa: E402


# One bin, relative sd 0.2 per field: the ratio's sd is 0.2 sqrt(1/S + 1/T) to first order.
rng = np.random.default_rng(1)
pk = 1.0 + 0.2 * rng.standard_normal((4000, 1))
sigma = pk[:, 0].std(ddof=1) / pk[:, 0].mean()
for samples, test, tol in ((64, 16, 0.05), (64, 256, 0.03)):
    rate, _ = pass_rate(pk, samples, test, tol)
    expected = math.erf(tol / (sigma * math.sqrt(1 / samples + 1 / test)) / math.sqrt(2))
    check(f"one bin, {samples} vs {test}, tol {tol}: {rate:.3f} vs analytic {expected:.3f}",
          abs(rate - expected) < 0.01)
# Independent bins multiply.
pk3 = 1.0 + 0.2 * rng.standard_normal((20000, 3))
rate1, _ = pass_rate(pk3[:, :1], 64, 64, 0.04)
rate3, _ = pass_rate(pk3, 64, 64, 0.04)
check(f"three independent bins: {rate3:.3f} vs {rate1:.3f}^3", abs(rate3 - rate1**3) < 0.01)

script = os.path.join(source, "run", "pk_check_noise.py")
with tempfile.TemporaryDirectory() as tmp:
    stack = os.path.join(tmp, "fields.h5")
    with h5py.File(stack, "w") as f:
        f.attrs["box_size"] = 64.0
        f.attrs["redshift"] = 0.0
        f.create_dataset("delta", data=rng.standard_normal((12, 8, 8, 8)).astype(np.float32))
    rates = []
    for test in ("4", "64"):
        out = subprocess.run([sys.executable, script, binary, stack, "16", test],
                             capture_output=True, text=True)
        found = re.search(r"passes .* (\d+)% of the time", out.stdout)
        check(f"end to end, {test} test fields: {out.stdout.strip()}",
              out.returncode == 0 and found, out.stderr)
        rates.append(int(found.group(1)) if found else -1)
    check(f"more test fields pass more often: {rates}", rates[1] > rates[0])
    with h5py.File(stack, "a") as f:
        del f["delta"]
        f.create_dataset("delta", data=np.zeros((2, 8, 8, 8), np.float32))
    out = subprocess.run([sys.executable, script, binary, stack], capture_output=True, text=True)
    check("two fields refused with one line", out.returncode != 0 and
          len(out.stderr.strip().splitlines()) == 1 and "need at least 3" in out.stderr, out.stderr)
    for args, what in (([stack, "0"], "SAMPLES: expected an integer >= 1, got 0"),
                       ([stack, "64", "x"], "TEST: expected an integer >= 1, got x"),
                       ([stack, "64", "64", "-1"], "TOL: expected a number > 0, got -1"),
                       ([os.path.join(tmp, "none.h5")], "not a grid stack")):
        out = subprocess.run([sys.executable, script, binary, *args], capture_output=True,
                             text=True)
        check(f"{args[1:] or args} refused with one line", out.returncode != 0 and
              len(out.stderr.strip().splitlines()) == 1 and what in out.stderr, out.stderr)

finish()
