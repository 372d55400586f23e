#!/usr/bin/env python3
"""Many samples against a reference ensemble of simulations, bin by bin below k_N/2: the ratio of
the mean P(k) of delta, each side's scatter (the sd of one field's P(k) over the mean), and how
many disjoint groups of GROUP samples have every bin within TOL of the ensemble's mean (how often
issue 9's check of 64 samples would pass against a test set without noise of its own).

    run/pk_groups.py BIN SAMPLES.h5 [SAMPLES.h5 ...] --ref REF.h5 [--ref REF.h5 ...]
                     [--group 64] [--tol 0.05] [--test 256]

BIN is the fieldflow binary (P(k) by `fieldflow pk --all`, as run/compare_fields.py measures
it). `--test N` adds the pass rate of the check against N test fields, with each side's means
drawn as Gaussians (the samples': their mean and covariance; the test fields': the reference's
covariance about its mean), smoother than the group count. Stacks on each side are pooled in
the order given; groups are consecutive samples. Use training-side simulations as the
reference, never the test set.
"""
import argparse
import subprocess
import sys

import numpy as np

from compare_fields import field_pks, half_nyquist
from pk_check_noise import model_pass_rate, pass_rate, relative_covariance


def pooled_pks(binary, paths):
    """k below k_N/2 and every field's P(k) there [fields, bins], pooled over the stacks."""
    k_ref, rows = None, []
    for path in paths:
        try:
            k, pk = field_pks(binary, path)
        except subprocess.CalledProcessError as e:  # fieldflow's own one-line error
            raise ValueError(e.stderr.strip().removeprefix("fieldflow: ")) from None
        keep = k < half_nyquist(path)
        if k_ref is None:
            k_ref = k[keep]
        elif keep.sum() != len(k_ref) or not np.allclose(k[keep], k_ref, rtol=1e-6):
            raise ValueError(f"{path}: its k bins differ from {paths[0]}'s (grid or box)")
        rows.append(pk[:, keep])
    return k_ref, np.concatenate(rows)


def group_pass(samples_pk, reference_mean, group, tol):
    """Per disjoint group of `group` samples, the largest |mean P / reference - 1| over bins."""
    count = len(samples_pk) // group
    means = samples_pk[: count * group].reshape(count, group, -1).mean(axis=1)
    return np.abs(means / reference_mean - 1).max(axis=1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("binary")
    parser.add_argument("samples", nargs="+")
    parser.add_argument("--ref", action="append", required=True)
    parser.add_argument("--group", type=int, default=64)
    parser.add_argument("--tol", type=float, default=0.05)
    parser.add_argument("--test", type=int, default=0)
    a = parser.parse_args()
    if a.group < 1 or not a.tol > 0 or a.test < 0:
        sys.exit("pk_groups.py: --group must be >= 1, --tol > 0 and --test >= 0")
    try:
        k, ref = pooled_pks(a.binary, a.ref)
        k_s, samples = pooled_pks(a.binary, a.samples)
    except (OSError, KeyError, ValueError) as e:
        sys.exit(f"pk_groups.py: {e}")
    if len(k_s) != len(k) or not np.allclose(k_s, k, rtol=1e-6):
        sys.exit("pk_groups.py: the samples' k bins differ from the reference's (grid or box)")
    if len(samples) < a.group:
        sys.exit(f"pk_groups.py: {len(samples)} samples, fewer than one group of {a.group}")
    ref_mean, samples_mean = ref.mean(axis=0), samples.mean(axis=0)
    row = lambda v: " ".join(f"{x:6.3f}" for x in v)  # noqa: E731
    print(f"{len(samples)} samples against {len(ref)} reference fields, k < k_N/2")
    print(f"  k [h/Mpc]            {row(k)}")
    print(f"  ratio of mean P(k)   {row(samples_mean / ref_mean)}")
    print(f"  scatter, samples     {row(samples.std(axis=0) / samples_mean)}")
    print(f"  scatter, reference   {row(ref.std(axis=0) / ref_mean)}")
    largest = group_pass(samples, ref_mean, a.group, a.tol)
    print(f"  groups of {a.group} within {a.tol:g} in every bin: {(largest < a.tol).sum()} of "
          f"{len(largest)} (median largest |ratio - 1| {np.median(largest):.3f})")
    if a.test:
        model, _ = model_pass_rate(samples_mean / ref_mean, relative_covariance(samples),
                                   relative_covariance(ref), a.group, a.test, a.tol)
        perfect, _ = pass_rate(ref, a.group, a.test, a.tol)
        print(f"  against {a.test} test fields, {a.group} samples pass {100 * model:.0f}% of the "
              f"time (a perfect model: {100 * perfect:.0f}%)")


if __name__ == "__main__":
    main()
