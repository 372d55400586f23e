"""run/pk_groups.py, samples against a reference ensemble: on stacks written by h5py, samples that
are the reference fields scaled by 1.1 have 1.21 of its mean P(k) in every bin, the same scatter,
and no group within 5%; the reference against itself has ratio 1, and with a loose tolerance
every whole group passes (the remainder is no group); `--test N` gives the scaled samples a pass
rate of 0 and the reference against itself that of a perfect model, higher for a larger test
set; the ratio and scatter equal a numpy estimate of the same bins. Bad arguments and
mismatched grids are refused with one line.
Usage: py_run_pk_groups.py FIELDFLOW_BINARY SOURCE_DIR (exit 77 = skipped)."""
import os
import subprocess
import sys
import tempfile

from checklib import check, finish, optional

h5py, np = optional("h5py", "numpy")

binary, source = sys.argv[1], sys.argv[2]
script = os.path.join(source, "run", "pk_groups.py")


def write(path, delta, box=64.0):
    with h5py.File(path, "w") as f:
        f.attrs["box_size"] = box
        f.attrs["redshift"] = 0.0
        f.create_dataset("delta", data=delta.astype(np.float32))


def run(*args):
    return subprocess.run([sys.executable, script, binary, *args], capture_output=True, text=True)


def values(out, label):
    line = next(l for l in out.splitlines() if l.strip().startswith(label))
    return np.array([float(x) for x in line[len(label) + 2:].split()])


rng = np.random.default_rng(3)
fields = rng.standard_normal((20, 16, 16, 16))
with tempfile.TemporaryDirectory() as tmp:
    ref_a, ref_b = os.path.join(tmp, "ref_a.h5"), os.path.join(tmp, "ref_b.h5")
    write(ref_a, fields[:12])
    write(ref_b, fields[12:])
    scaled = os.path.join(tmp, "scaled.h5")
    write(scaled, 1.1 * fields)
    out = run(scaled, "--ref", ref_a, "--ref", ref_b, "--group", "8")
    check("scaled samples run", out.returncode == 0, out.stderr)
    if out.returncode == 0:
        ratio = values(out.stdout, "ratio of mean P(k)")
        check(f"ratio 1.21 in every bin: {ratio}", np.allclose(ratio, 1.21, atol=1.5e-3))
        check("the same scatter", np.allclose(values(out.stdout, "scatter, samples"),
                                              values(out.stdout, "scatter, reference"), atol=1e-3))
        check("no group of 8 within 5%", "in every bin: 0 of 2" in out.stdout, out.stdout)
        check("no pass rate without --test", "test fields" not in out.stdout, out.stdout)
        out_test = run(scaled, "--ref", ref_a, "--ref", ref_b, "--group", "8", "--test", "64")
        check("scaled samples never pass against 64 test fields",
              "pass 0% of the time" in out_test.stdout, out_test.stdout + out_test.stderr)
        # The same bins by numpy: |k| in [i, i + 1) fundamentals, below k_N/2 (8 cells of 16).
        n = 16
        k1 = np.fft.fftfreq(n) * n
        kk = np.sqrt(k1[:, None, None] ** 2 + k1[None, :, None] ** 2 + k1[None, None, :] ** 2)
        power = np.abs(np.fft.fftn(fields, axes=(1, 2, 3))) ** 2
        bins = [(kk >= i) & (kk < i + 1) for i in range(1, 4)]
        per_field = np.array([[p[b].mean() for b in bins] for p in power])
        scatter = per_field.std(axis=0) / per_field.mean(axis=0)
        got = values(out.stdout, "scatter, reference")
        check(f"scatter against numpy: {got} vs {scatter}", len(got) == 3 and
              np.allclose(got, scatter, atol=6e-4))
    same = os.path.join(tmp, "same.h5")
    write(same, fields[:17])  # two groups of 8 and a remainder
    out = run(same, "--ref", ref_a, "--ref", ref_b, "--group", "8", "--tol", "10")
    check("every whole group passes a loose tolerance",
          out.returncode == 0 and "in every bin: 2 of 2" in out.stdout, out.stdout + out.stderr)
    out = run(ref_a, ref_b, "--ref", ref_a, "--ref", ref_b, "--group", "20")
    ratio = values(out.stdout, "ratio of mean P(k)") if out.returncode == 0 else None
    check("the reference against itself: ratio 1",
          ratio is not None and np.allclose(ratio, 1, atol=1e-6), out.stderr)
    rates = []
    for test in ("16", "256"):
        out = run(ref_a, ref_b, "--ref", ref_a, "--ref", ref_b, "--group", "20", "--test", test)
        line = next((l for l in out.stdout.splitlines() if "test fields" in l), "")
        numbers = [int(x.rstrip("%)")) for x in line.split()
                   if "%" in x and x.rstrip("%)").isdigit()]
        rates.append(numbers)
        check(f"the reference against itself passes as a perfect model ({test} test): {line}",
              len(numbers) == 2 and numbers[0] == numbers[1], out.stderr)
    check(f"a larger test set passes more often: {rates}",
          all(len(r) == 2 for r in rates) and rates[1][0] > rates[0][0])
    other = os.path.join(tmp, "other_box.h5")
    write(other, fields[:4], box=50.0)
    for args, what in (((scaled, "--ref", ref_a, "--group", "64"), "fewer than one group"),
                       ((scaled, "--ref", ref_a, "--group", "0"), "--group must be"),
                       ((scaled, "--ref", ref_a, "--tol", "-1"), "--tol > 0"),
                       ((scaled, "--ref", ref_a, "--test", "-1"), "--test >= 0"),
                       ((other, "--ref", ref_a, "--group", "2"), "k bins differ"),
                       ((scaled, "--ref", ref_a, "--ref", other), "other_box.h5: its k bins"),
                       ((os.path.join(tmp, "none.h5"), "--ref", ref_a), "none.h5")):
        out = run(*args)
        check(f"{' '.join(os.path.basename(x) for x in args)} refused with one line",
              out.returncode != 0 and len(out.stderr.strip().splitlines()) == 1 and
              what in out.stderr, out.stderr)

finish()
