#!/usr/bin/env python3
"""P(k) (by `fieldflow pk`, mean over the fields of each stack) and the one-point PDF of
log10(1 + delta) of two stacked grid files, printed as tables: samples against test fields.

    run/compare_fields.py BIN SAMPLES.h5 TEST.h5
"""
import subprocess
import sys

import h5py
import numpy as np


def mean_pk(binary, path):
    count = h5py.File(path, "r")["delta"].shape[0]
    rows = []
    for i in range(count):
        out = subprocess.run([binary, "pk", path, "--index", str(i), "--mas", "none"],
                             check=True, capture_output=True, text=True).stdout
        lines = [l for l in out.splitlines() if l and l[0].isdigit()]
        rows.append(np.array([[float(x) for x in l.split(",")] for l in lines]))
    k = rows[0][:, 0]
    pk = np.array([r[:, 1] for r in rows])
    return k, pk.mean(axis=0), pk.std(axis=0) / np.sqrt(count), count


def main():
    binary, samples, test = sys.argv[1:4]
    k, ps, es, ns = mean_pk(binary, samples)
    _, pt, et, nt = mean_pk(binary, test)
    with h5py.File(test, "r") as f:
        box = float(f.attrs["box_size"])
        n = f["delta"].shape[-1]
    k_half_nyquist = 0.5 * np.pi * n / box
    print(f"P(k): mean of {ns} samples vs mean of {nt} test fields (k_N/2 = {k_half_nyquist:.3f} h/Mpc)")
    print("  k [h/Mpc]   P_samples    P_test    ratio  (+- 1 sigma of the ratio)")
    worst = 0.0
    for i in range(len(k)):
        r = ps[i] / pt[i]
        err = r * np.hypot(es[i] / ps[i], et[i] / pt[i])
        mark = "*" if k[i] < k_half_nyquist else " "
        if k[i] < k_half_nyquist:
            worst = max(worst, abs(r - 1))
        print(f"  {k[i]:8.4f}{mark} {ps[i]:10.4g} {pt[i]:10.4g}  {r:6.3f}  +- {err:.3f}")
    print(f"  largest |ratio - 1| for k < k_N/2 (*): {worst:.3f}")
    with h5py.File(samples, "r") as f:
        s = np.log10(1.0 + np.maximum(f["delta"][...].ravel(), -1 + 1e-3))
    with h5py.File(test, "r") as f:
        t = np.log10(1.0 + np.maximum(f["delta"][...].ravel(), -1 + 1e-3))
    edges = np.linspace(-1.5, 1.5, 13)
    hs, _ = np.histogram(s, edges, density=True)
    ht, _ = np.histogram(t, edges, density=True)
    print("one-point PDF of log10(1 + delta): bin centre, samples, test")
    for c, a, b in zip(0.5 * (edges[1:] + edges[:-1]), hs, ht):
        print(f"  {c:6.2f}  {a:8.4f}  {b:8.4f}")
    print(f"  mean/std of delta: samples {np.mean(10**s - 1):.4f}/{np.std(10**s - 1):.4f}, "
          f"test {np.mean(10**t - 1):.4f}/{np.std(10**t - 1):.4f}")


if __name__ == "__main__":
    main()
