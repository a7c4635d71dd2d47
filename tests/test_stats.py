"""helpers.stats: the Wilson score interval."""

import math

import pytest

from helpers.stats import wilson_interval


def test_wilson_matches_the_formula_and_unpacks():
    k, n, z = 7, 20, 1.959963984540054
    p = k / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    low, high = wilson_interval(k, n)
    assert (low, high) == pytest.approx((centre - half, centre + half), abs=1e-9)
    assert wilson_interval(k, n).low == low


def test_wilson_stays_in_the_unit_interval_and_narrows_with_n():
    assert wilson_interval(0, 10).low == 0 and wilson_interval(10, 10).high == 1
    assert wilson_interval(0, 10).high > 0  # no successes in 10 does not prove a rate of 0
    small, large = wilson_interval(5, 10), wilson_interval(500, 1000)
    assert large.high - large.low < small.high - small.low


@pytest.mark.parametrize("successes, n", [(3, 0), (-1, 5), (6, 5)])
def test_wilson_refuses_counts_that_are_not_a_rate(successes, n):
    with pytest.raises(ValueError, match="successes <= n"):
        wilson_interval(successes, n)
