"""Intervals for rates: the one Wilson score interval every chapter reports beside a success rate.

A rate measured on n cases is ``k / n``; with n in the tens, its uncertainty is as large as
the differences the chapters compare, so each rate is shown with a 95 % interval. The Wilson
score interval stays inside [0, 1] and keeps its coverage near 0 and 1, where the textbook
``p ± 1.96 √(p(1-p)/n)`` does not (Brown, Cai & DasGupta, 2001). scipy computes it.
"""

from __future__ import annotations

from scipy.stats import binomtest


def wilson_interval(successes: int, n: int, confidence: float = 0.95):
    """The Wilson score interval of ``successes`` out of ``n`` (scipy's ``binomtest``): a named tuple
    ``(low, high)`` — ``interval.low``, or ``low, high = wilson_interval(k, n)``."""
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"wilson_interval needs 0 <= successes <= n and n > 0, got {successes} of {n}")
    return binomtest(int(successes), int(n)).proportion_ci(confidence_level=confidence, method="wilson")
