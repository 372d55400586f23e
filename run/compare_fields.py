#!/usr/bin/env python3
"""P(k) (by `fieldflow pk`, mean over the fields of each stack, and its scatter from field to
field) and the one-point PDF of log10(1 + delta) of two stacked grid files, printed as tables:
samples against test fields.

    run/compare_fields.py BIN SAMPLES.h5 TEST.h5 [CHECKPOINT.h5]

Also P(k) of the samples mapped voxel by voxel (by rank) onto the test fields' one-point
distribution, which leaves the two-point error alone. With the flow's checkpoint (log1p
preprocessing), also the same comparison in the flow's own
variable y = (log(1 + delta + eps) - mean) / std (before the marginal map of a calibrated
checkpoint), the upper tail of y, and P(k) of delta with the
samples' delta capped at the test fields' largest delta: P(k) of delta is dominated by the few
densest voxels, so these separate an error in the bulk of the field from one in its tail.
"""
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np


def field_pks(binary, path):
    """k and each field's P(k) [fields, bins] of a stack, by `fieldflow pk --all`."""
    out = subprocess.run([binary, "pk", path, "--all", "--mas", "none"],
                         check=True, capture_output=True, text=True).stdout
    table = np.array([[float(x) for x in l.split(",")] for l in out.splitlines()[1:] if l])
    index = table[:, 0].astype(int)
    count = index.max() + 1
    pk = table[:, 2].reshape(count, -1)
    return table[index == 0, 1], pk


def half_nyquist(path):
    """k_N/2 in h/Mpc of a stack: pi N / (2 L)."""
    with h5py.File(path, "r") as f:
        return 0.5 * np.pi * f["delta"].shape[-1] / float(f.attrs["box_size"])


def mean_pk(binary, path):
    k, pk = field_pks(binary, path)
    count = len(pk)
    return k, pk.mean(axis=0), pk.std(axis=0) / np.sqrt(count), count


def pk_table(binary, samples, test, k_half_nyquist, what):
    """Prints the ratio table of two stacks' mean P(k); returns the largest |ratio - 1| below
    k_N/2."""
    k, ps, es, ns = mean_pk(binary, samples)
    _, pt, et, nt = mean_pk(binary, test)
    print(f"P(k) of {what}: mean of {ns} samples vs mean of {nt} test fields "
          f"(k_N/2 = {k_half_nyquist:.3f} h/Mpc)")
    # The scatter: the sd of one field's P(k) over the mean, of the samples and of the test
    # fields (a model whose samples scatter more fails the check more often; docs/train.md).
    print("  k [h/Mpc]   P_samples    P_test    ratio  (+- 1 sigma)   scatter: samples    test")
    worst = 0.0
    for i in range(len(k)):
        r = ps[i] / pt[i]
        err = r * np.hypot(es[i] / ps[i], et[i] / pt[i])
        mark = "*" if k[i] < k_half_nyquist else " "
        if k[i] < k_half_nyquist:
            worst = max(worst, abs(r - 1))
        scatter_s, scatter_t = es[i] * np.sqrt(ns) / ps[i], et[i] * np.sqrt(nt) / pt[i]
        print(f"  {k[i]:8.4f}{mark} {ps[i]:10.4g} {pt[i]:10.4g}  {r:6.3f}  +- {err:.3f}"
              f"     {scatter_s:16.3f} {scatter_t:7.3f}")
    print(f"  largest |ratio - 1| for k < k_N/2 (*): {worst:.3f}")
    return worst


def write_stack(path, fields, like):
    """A grid file with `like`'s root attributes (box, redshift) and `fields` as /delta."""
    with h5py.File(like, "r") as src, h5py.File(path, "w") as f:
        for name, value in src.attrs.items():
            f.attrs[name] = value
        f.create_dataset("delta", data=fields.astype(np.float32))


def tail_diagnosis(binary, samples, test, checkpoint, k_half_nyquist):
    with h5py.File(checkpoint, "r") as f:
        numbers = f["numbers"].attrs
        eps, mean, std = (float(numbers[f"preprocessing.{x}"]) for x in ("eps", "mean", "std"))
        mapped = "arrays/preprocessing.marginal.t" in f
    with h5py.File(samples, "r") as f:
        ds = f["delta"][...].astype(np.float64)
    with h5py.File(test, "r") as f:
        dt = f["delta"][...].astype(np.float64)
    to_y = lambda d: (np.log(np.maximum(1.0 + d + eps, 1e-300)) - mean) / std
    ys, yt = to_y(ds), to_y(dt)
    with tempfile.TemporaryDirectory() as tmp:
        paths = {name: os.path.join(tmp, name + ".h5") for name in ("ys", "yt", "capped")}
        write_stack(paths["ys"], ys, test)
        write_stack(paths["yt"], yt, test)
        write_stack(paths["capped"], np.minimum(ds, dt.max()), test)
        pk_table(binary, paths["ys"], paths["yt"], k_half_nyquist,
                 f"y = (log(1 + delta + {eps:g}) - {mean:.4g}) / {std:.4g}, "
                 + ("the standardised value (the flow's variable is its marginal map of it)"
                    if mapped else "the flow's variable"))
        print(f"upper tail of y: quantile 0.999, 0.9999, max; samples "
              f"{np.quantile(ys, 0.999):.3f} {np.quantile(ys, 0.9999):.3f} {ys.max():.3f}, test "
              f"{np.quantile(yt, 0.999):.3f} {np.quantile(yt, 0.9999):.3f} {yt.max():.3f}; "
              f"share of sample voxels above the test fields' max: {np.mean(ys > yt.max()):.2e}")
        pk_table(binary, paths["capped"], test, k_half_nyquist,
                 f"delta with the samples capped at the test fields' max delta {dt.max():.4g} "
                 f"({np.mean(ds > dt.max()):.2e} of the sample voxels)")


def quantile_mapped(binary, samples, test, k_half_nyquist):
    """P(k) of the samples with their one-point distribution replaced by the test fields' (each
    voxel takes the test quantile of its rank among the sample voxels): what is left is the
    two-point error alone."""
    with h5py.File(samples, "r") as f:
        ds = f["delta"][...].astype(np.float64)
    with h5py.File(test, "r") as f:
        dt = np.sort(f["delta"][...].astype(np.float64).ravel())
    rank = np.empty(ds.size, dtype=np.int64)
    rank[np.argsort(ds.ravel(), kind="stable")] = np.arange(ds.size)
    mapped = dt[((rank + 0.5) / ds.size * dt.size).astype(np.int64)].reshape(ds.shape)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "mapped.h5")
        write_stack(path, mapped, test)
        pk_table(binary, path, test, k_half_nyquist,
                 "delta with the samples' one-point distribution mapped onto the test fields' "
                 "(quantile mapping: the two-point error alone)")


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    binary, samples, test = sys.argv[1:4]
    k_half_nyquist = half_nyquist(test)
    pk_table(binary, samples, test, k_half_nyquist, "delta")
    with h5py.File(samples, "r") as f:
        ds = f["delta"][...]
    with h5py.File(test, "r") as f:
        dt = f["delta"][...]
    field_means_s = ds.reshape(len(ds), -1).mean(axis=1)
    field_means_t = dt.reshape(len(dt), -1).mean(axis=1)
    s = np.log10(1.0 + np.maximum(ds.ravel(), -1 + 1e-3))
    t = np.log10(1.0 + np.maximum(dt.ravel(), -1 + 1e-3))
    edges = np.linspace(-1.5, 1.5, 13)
    hs, _ = np.histogram(s, edges, density=True)
    ht, _ = np.histogram(t, edges, density=True)
    print("one-point PDF of log10(1 + delta): bin centre, samples, test")
    for c, a, b in zip(0.5 * (edges[1:] + edges[:-1]), hs, ht):
        print(f"  {c:6.2f}  {a:8.4f}  {b:8.4f}")
    print(f"  mean/std of delta: samples {np.mean(10**s - 1):.4f}/{np.std(10**s - 1):.4f}, "
          f"test {np.mean(10**t - 1):.4f}/{np.std(10**t - 1):.4f}")
    # The k = 0 mode: a simulation's mean of delta is 0; a sample's is what the flow gives it.
    print(f"  a field's mean of delta, mean/std over fields: samples {field_means_s.mean():.4f}/"
          f"{field_means_s.std():.4f}, test {field_means_t.mean():.4f}/{field_means_t.std():.4f}")
    quantile_mapped(binary, samples, test, k_half_nyquist)
    if len(sys.argv) == 5:
        tail_diagnosis(binary, samples, test, sys.argv[4], k_half_nyquist)


if __name__ == "__main__":
    main()
