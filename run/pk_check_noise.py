#!/usr/bin/env python3
"""How often a perfect model passes the P(k) check of issue 9: the mean P(k) of SAMPLES samples
within TOL of the mean of TEST test fields in every bin below k_N/2, when the samples scatter like
the fields of FIELDS.h5 (a perfect model's do). The noise floor of the check (docs/train.md "The
size of the test set").

    run/pk_check_noise.py BIN FIELDS.h5 [SAMPLES [TEST [TOL]]]     (defaults 64, 256, 0.05)

The two means are drawn as Gaussians with the fields' covariance of P(k) between bins over
SAMPLES and over TEST (200000 draws, seed 0), so TEST may exceed the number of fields.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare_fields import field_pks, half_nyquist  # noqa: E402


def relative_covariance(pk):
    """Covariance between bins of P(k) over its mean; pk [fields, bins]."""
    return np.atleast_2d(np.cov(pk / pk.mean(axis=0), rowvar=False))


def pass_rate(pk, samples, test, tol, draws=200000, seed=0):
    """Share of draws with |mean_s / mean_t - 1| < tol in every bin; pk [fields, bins]."""
    cov = relative_covariance(pk)
    return model_pass_rate(np.ones(len(cov)), cov, cov, samples, test, tol, draws, seed)


def model_pass_rate(ratio, cov_samples, cov_test, samples, test, tol, draws=200000, seed=0):
    """The same for a model whose mean P(k) is `ratio` times the truth's and whose samples' P(k)
    has the relative covariance cov_samples (the test fields': cov_test); also the median
    largest |ratio - 1|."""
    rng = np.random.default_rng(seed)
    s = rng.multivariate_normal(ratio, cov_samples / samples, size=draws)
    t = rng.multivariate_normal(np.ones(len(ratio)), cov_test / test, size=draws)
    worst = np.abs(s / t - 1).max(axis=1)
    return float(np.mean(worst < tol)), float(np.median(worst))


def main():
    if not 3 <= len(sys.argv) <= 6:
        sys.exit(__doc__)
    binary, fields = sys.argv[1:3]
    def argument(i, name, kind, default, valid):
        if len(sys.argv) <= i:
            return default
        try:
            value = kind(sys.argv[i])
        except ValueError:
            value = None
        if value is None or not valid(value):
            wanted = "an integer >= 1" if kind is int else "a number > 0"
            sys.exit(f"pk_check_noise: {name}: expected {wanted}, got {sys.argv[i]}")
        return value

    samples = argument(3, "SAMPLES", int, 64, lambda v: v >= 1)
    test = argument(4, "TEST", int, 256, lambda v: v >= 1)
    tol = argument(5, "TOL", float, 0.05, lambda v: v > 0)
    try:
        k_half_nyquist = half_nyquist(fields)
    except (OSError, KeyError) as e:
        sys.exit(f"pk_check_noise: {fields}: not a grid stack ({e})")
    k, pk = field_pks(binary, fields)
    if len(pk) < 3:
        sys.exit(f"pk_check_noise: {fields}: {len(pk)} fields, need at least 3 for a covariance")
    below = k < k_half_nyquist
    rate, median = pass_rate(pk[:, below], samples, test, tol)
    print(f"a perfect model ({samples} samples scattering like the {len(pk)} fields of {fields}) "
          f"passes the check against {test} test fields (each of the {int(below.sum())} bins "
          f"below k_N/2 within {tol:g}) {100 * rate:.0f}% of the time; median largest "
          f"|ratio - 1| {median:.3f}")


if __name__ == "__main__":
    main()
