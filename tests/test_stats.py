"""Tests of crosssell.stats against textbook values, independent libraries and simulation.

Each reference value names its source in a comment.  Simulations are seeded, so every number
asserted here is reproducible.
"""

from __future__ import annotations

import doctest
import math
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint
from statsmodels.stats.weightstats import DescrStatsW

from crosssell import stats
from crosssell.errors import ParameterError
from crosssell.stats import (
    adjust_pvalues,
    bootstrap_interval,
    difference_interval,
    lift_test,
    mean_from_moments,
    mean_interval,
    nps,
    nps_interval,
    ratio_of_sums,
    rmst,
    spearman_interval,
    wilson_interval,
    z_value,
)

Z95 = 1.959963984540054  # scipy.stats.norm.ppf(0.975)


def moments(x: np.ndarray, y: np.ndarray, axis: int = -1) -> dict:
    """The aggregates the engine returns for ratio_of_sums, from per-customer arrays."""
    return {
        "n": x.shape[axis],
        "sum_y": y.sum(axis),
        "sum_x": x.sum(axis),
        "sum_yy": (y * y).sum(axis),
        "sum_xx": (x * x).sum(axis),
        "sum_xy": (x * y).sum(axis),
    }


def simulate_products(reps: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Known model: x = 1 + Poisson(2) products held, y | x ~ Binomial(x, 0.3) add-ons.

    E[y] / E[x] = 0.3 · E[x] / E[x] = 0.3 exactly, whatever the distribution of x.
    """
    rng = np.random.default_rng(seed)
    x = 1 + rng.poisson(2.0, size=(reps, n))
    y = rng.binomial(x, 0.3)
    return x.astype(float), y.astype(float)


TRUE_RATIO = 0.3


# --------------------------------------------------------------------------------------------
# docstring examples run
# --------------------------------------------------------------------------------------------


def test_docstring_examples_run():
    result = doctest.testmod(stats, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 13
    assert result.failed == 0


# --------------------------------------------------------------------------------------------
# z_value and ci validation
# --------------------------------------------------------------------------------------------


def test_z_value_known_quantiles():
    # standard normal table: 90 % -> 1.644854, 95 % -> 1.959964, 99 % -> 2.575829
    assert z_value(0.90) == pytest.approx(1.6448536269514722, rel=1e-12)
    assert z_value(0.95) == pytest.approx(Z95, rel=1e-12)
    assert z_value(0.99) == pytest.approx(2.5758293035489004, rel=1e-12)
    assert isinstance(z_value(0.95), float)


BAD_CIS = [0, 1, 0.0, 1.0, -0.1, 1.5, 95, float("nan"), True, "0.95", None, [0.95]]


@pytest.mark.parametrize("bad", BAD_CIS)
def test_z_value_rejects_bad_ci(bad):
    with pytest.raises(ParameterError, match="ci"):
        z_value(bad)


CI_CALLS = {
    "wilson_interval": lambda ci: wilson_interval(3, 10, ci=ci),
    "mean_interval": lambda ci: mean_interval(1.0, 1.0, 10, ci=ci),
    "mean_from_moments": lambda ci: mean_from_moments(n=3, sum_y=6, sum_yy=14, ci=ci),
    "ratio_of_sums": lambda ci: ratio_of_sums(
        n=3, sum_y=8, sum_x=4, sum_yy=24, sum_xx=6, sum_xy=10, ci=ci
    ),
    "difference_interval": lambda ci: difference_interval(1, 0.1, 2, 0.1, ci=ci),
    "bootstrap_interval": lambda ci: bootstrap_interval([1.0, 2.0, 3.0], n_boot=10, ci=ci),
    "nps": lambda ci: nps([10, 5, 8], ci=ci),
    "nps_interval": lambda ci: nps_interval(5, 2, 10, ci=ci),
    "spearman_interval": lambda ci: spearman_interval([1, 2, 3, 4, 5], [1, 3, 2, 5, 4], ci=ci),
    "lift_test": lambda ci: lift_test(10, 20, 25, 100, ci=ci),
}


@pytest.mark.parametrize("name", sorted(CI_CALLS))
@pytest.mark.parametrize("bad", [0.0, 1.0, -0.5, 1.2, float("nan"), "95%"])
def test_every_function_rejects_bad_ci(name, bad):
    with pytest.raises(ParameterError):
        CI_CALLS[name](bad)


@pytest.mark.parametrize("name", sorted(CI_CALLS))
def test_every_function_accepts_other_ci(name):
    # a 90 % interval is valid everywhere and never wider than the 95 % one
    narrow, wide = CI_CALLS[name](0.90), CI_CALLS[name](0.95)
    if isinstance(narrow, tuple):
        narrow = dict(zip(("low", "high"), narrow, strict=True))
        wide = dict(zip(("low", "high"), wide, strict=True))
    assert narrow["low"] >= wide["low"] - 1e-12
    assert narrow["high"] <= wide["high"] + 1e-12


# --------------------------------------------------------------------------------------------
# Wilson
# --------------------------------------------------------------------------------------------


def test_wilson_newcombe_1998_example():
    # Newcombe (1998), Stat Med 17:857-872, Table I, method 3 (score interval, no continuity
    # correction): 81/263 -> 0.2553 to 0.3662.
    low, high = wilson_interval(81, 263)
    assert low == pytest.approx(0.2553, abs=5e-5)
    assert high == pytest.approx(0.3662, abs=5e-5)


def test_wilson_newcombe_1998_small_examples():
    # Newcombe (1998) Table I, method 3: 15/148 -> 0.0624-0.1605, 0/20 -> 0.0000-0.1611,
    # 1/29 -> 0.0061-0.1718.
    low, high = wilson_interval(np.array([15, 0, 1]), np.array([148, 20, 29]))
    np.testing.assert_allclose(low, [0.0624, 0.0, 0.0061], atol=5e-5)
    np.testing.assert_allclose(high, [0.1605, 0.1611, 0.1718], atol=5e-5)


def test_wilson_matches_statsmodels_on_random_inputs():
    rng = np.random.default_rng(42)
    n = rng.integers(1, 5000, size=500)
    x = rng.integers(0, n + 1)
    for ci in (0.8, 0.95, 0.99):
        low, high = wilson_interval(x, n, ci=ci)
        ref_low, ref_high = proportion_confint(x, n, alpha=1 - ci, method="wilson")
        np.testing.assert_allclose(low, ref_low, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(high, ref_high, rtol=1e-10, atol=1e-12)


def test_wilson_shapes_and_empty_groups():
    low, high = wilson_interval(3, 10)
    assert isinstance(low, float) and isinstance(high, float)

    s_x = pd.Series([0, 5, 0], index=["a", "b", "c"])
    s_n = pd.Series([10, 10, 0], index=["a", "b", "c"])
    low, high = wilson_interval(s_x, s_n)
    assert isinstance(low, pd.Series) and list(low.index) == ["a", "b", "c"]
    assert low["a"] == 0.0  # 0 successes: the lower bound is exactly 0
    assert math.isnan(low["c"]) and math.isnan(high["c"])  # n == 0: NaN, not an error

    low, high = wilson_interval(np.array([[1, 2], [3, 4]]), 10)
    assert low.shape == (2, 2)


def test_wilson_all_successes_upper_bound_is_one():
    low, high = wilson_interval(20, 20)
    assert high == 1.0
    # Newcombe (1998) Table I, 0/20 mirrored: 20/20 -> 0.8389 to 1
    assert low == pytest.approx(1 - 0.1611, abs=5e-5)


def test_wilson_errors():
    with pytest.raises(ParameterError, match="successes must not exceed n"):
        wilson_interval(11, 10)
    with pytest.raises(ParameterError, match="n must not be negative"):
        wilson_interval(0, -1)
    with pytest.raises(ParameterError, match="successes must not be negative"):
        wilson_interval(-1, 10)
    with pytest.raises(ParameterError, match="index"):
        wilson_interval(pd.Series([1, 2], index=[0, 1]), pd.Series([5, 5], index=[1, 2]))
    with pytest.raises(ParameterError):
        wilson_interval([1, 2, 3], [5, 5])  # shapes do not broadcast
    with pytest.raises(ParameterError):
        wilson_interval("a", 5)


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=10**7),
    frac=st.floats(min_value=0, max_value=1),
    ci=st.floats(min_value=0.5, max_value=0.999),
)
def test_wilson_property_inside_unit_interval_and_contains_phat(n, frac, ci):
    x = int(round(frac * n))
    low, high = wilson_interval(x, n, ci=ci)
    assert 0.0 <= low <= x / n <= high <= 1.0


# --------------------------------------------------------------------------------------------
# means
# --------------------------------------------------------------------------------------------


def test_mean_interval_matches_scipy_t_interval():
    mean, sd, n = 2.5, 1.3, np.array([2, 5, 30, 1000])
    low, high = mean_interval(mean, sd, n)
    ref = sps.t.interval(0.95, n - 1, loc=mean, scale=sd / np.sqrt(n))
    np.testing.assert_allclose(low, ref[0], rtol=1e-12)
    np.testing.assert_allclose(high, ref[1], rtol=1e-12)


def test_mean_interval_small_groups_are_nan_and_errors():
    low, high = mean_interval([1.0, 1.0, 1.0], [0.5, 0.5, 0.5], [0, 1, 2])
    assert np.isnan(low[:2]).all() and np.isnan(high[:2]).all()
    assert np.isfinite(low[2]) and np.isfinite(high[2])
    with pytest.raises(ParameterError, match="sd"):
        mean_interval(1.0, -0.1, 10)
    with pytest.raises(ParameterError, match="n must not be negative"):
        mean_interval(1.0, 1.0, -3)


def test_mean_from_moments_matches_raw_data_and_statsmodels():
    rng = np.random.default_rng(7)
    y = rng.poisson(2.2, size=137).astype(float)
    r = mean_from_moments(n=y.size, sum_y=y.sum(), sum_yy=(y * y).sum())
    assert r["estimate"] == pytest.approx(y.mean(), rel=1e-12)
    assert r["sd"] == pytest.approx(y.std(ddof=1), rel=1e-10)
    assert r["se"] == pytest.approx(y.std(ddof=1) / np.sqrt(y.size), rel=1e-10)
    ref_low, ref_high = DescrStatsW(y).tconfint_mean(alpha=0.05)
    assert r["low"] == pytest.approx(ref_low, rel=1e-10)
    assert r["high"] == pytest.approx(ref_high, rel=1e-10)


def test_mean_from_moments_vectorised_over_groups():
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"tier": rng.choice(["1", "2", "3+"], size=600), "y": rng.random(600)})
    agg = (
        frame.assign(yy=frame.y**2)
        .groupby("tier")
        .agg(n=("y", "size"), sum_y=("y", "sum"), sum_yy=("yy", "sum"))
    )
    out = pd.DataFrame(mean_from_moments(n=agg.n, sum_y=agg.sum_y, sum_yy=agg.sum_yy))
    assert list(out.index) == ["1", "2", "3+"]
    for tier, group in frame.groupby("tier"):
        low, high = DescrStatsW(group.y.to_numpy()).tconfint_mean()
        assert out.loc[tier, "estimate"] == pytest.approx(group.y.mean(), rel=1e-12)
        assert out.loc[tier, "low"] == pytest.approx(low, rel=1e-9)
        assert out.loc[tier, "high"] == pytest.approx(high, rel=1e-9)


def test_mean_from_moments_empty_and_single_and_constant():
    r = mean_from_moments(n=np.array([0, 1, 5]), sum_y=[0, 3, 10], sum_yy=[0, 9, 20])
    assert np.isnan(r["estimate"][0]) and np.isnan(r["se"][0])  # empty group
    assert r["estimate"][1] == 3.0 and np.isnan(r["se"][1])  # one customer: no spread
    assert r["estimate"][2] == 2.0 and r["sd"][2] == 0.0  # five 2s: variance exactly 0
    assert r["low"][2] == r["high"][2] == 2.0
    assert not np.isinf(np.concatenate([v for v in r.values()])).any()
    with pytest.raises(ParameterError):
        mean_from_moments(n=-1, sum_y=0, sum_yy=0)
    with pytest.raises(ParameterError):
        mean_from_moments(n=3, sum_y=0, sum_yy=-1)


# --------------------------------------------------------------------------------------------
# ratio of sums (delta method)
# --------------------------------------------------------------------------------------------


def test_ratio_of_sums_equals_formula_on_raw_data():
    # Var(R) ≈ (s_y² − 2 R s_xy + R² s_x²) / (n x̄²), computed the textbook way from the rows.
    x, y = simulate_products(1, 250, seed=11)
    x, y = x[0], y[0]
    r_hat = y.sum() / x.sum()
    s_xy = np.cov(x, y, ddof=1)[0, 1]
    var = (y.var(ddof=1) - 2 * r_hat * s_xy + r_hat**2 * x.var(ddof=1)) / (x.size * x.mean() ** 2)
    out = ratio_of_sums(**moments(x, y))
    assert out["estimate"] == pytest.approx(r_hat, rel=1e-12)
    assert out["se"] == pytest.approx(np.sqrt(var), rel=1e-9)
    half = sps.t.ppf(0.975, x.size - 1) * np.sqrt(var)
    assert out["low"] == pytest.approx(r_hat - half, rel=1e-9)
    assert out["high"] == pytest.approx(r_hat + half, rel=1e-9)


def test_ratio_of_sums_with_x_one_is_the_mean():
    rng = np.random.default_rng(5)
    y = rng.poisson(1.7, size=80).astype(float)
    x = np.ones_like(y)
    out = ratio_of_sums(**moments(x, y))
    mean = mean_from_moments(n=y.size, sum_y=y.sum(), sum_yy=(y * y).sum())
    assert out["estimate"] == pytest.approx(y.mean(), rel=1e-12)
    assert out["se"] == pytest.approx(y.std(ddof=1) / np.sqrt(y.size), rel=1e-10)
    assert out["low"] == pytest.approx(mean["low"], rel=1e-10)
    assert out["high"] == pytest.approx(mean["high"], rel=1e-10)


def test_ratio_of_sums_se_matches_large_simulation():
    # 20,000 seeded samples of 100 customers: the spread of R across samples is what the
    # delta-method SE claims (within 3 %; the Monte-Carlo error of an SD from 20k draws is 0.5 %).
    x, y = simulate_products(20_000, 100, seed=1)
    out = ratio_of_sums(**moments(x, y))
    empirical_sd = np.std(out["estimate"], ddof=1)
    assert np.mean(out["se"]) == pytest.approx(empirical_sd, rel=0.03)
    assert np.mean(out["estimate"]) == pytest.approx(TRUE_RATIO, abs=0.002)


def test_ratio_of_sums_coverage():
    # 400 seeded samples from the known model: the 95 % interval covers the true ratio 0.3 in
    # 92-98 % of them (binomial SD of a 95 % rate over 400 samples is 1.1 points).
    x, y = simulate_products(400, 120, seed=2024)
    out = ratio_of_sums(**moments(x, y))
    covered = (out["low"] <= TRUE_RATIO) & (TRUE_RATIO <= out["high"])
    assert 0.92 <= covered.mean() <= 0.98


def test_ratio_of_sums_vectorised_over_series_groups():
    x, y = simulate_products(3, 50, seed=9)
    agg = pd.DataFrame(moments(x, y), index=pd.Index(["2023Q1", "2023Q2", "2023Q3"], name="q"))
    out = pd.DataFrame(ratio_of_sums(**{c: agg[c] for c in agg.columns}))
    assert list(out.columns) == ["estimate", "se", "low", "high"]
    assert out.index.equals(agg.index)
    for i, q in enumerate(agg.index):
        single = ratio_of_sums(**moments(x[i], y[i]))
        assert out.loc[q, "se"] == pytest.approx(single["se"], rel=1e-12)


def test_ratio_of_sums_empty_and_degenerate_groups_are_nan_not_inf():
    out = ratio_of_sums(
        n=np.array([0, 1, 4]),
        sum_y=[0, 2, 3],
        sum_x=[0, 1, 0],
        sum_yy=[0, 4, 5],
        sum_xx=[0, 1, 0],
        sum_xy=[0, 2, 0],
    )
    values = np.concatenate(list(out.values()))
    assert not np.isinf(values).any()
    assert np.isnan(out["estimate"][0])  # no customers
    assert out["estimate"][1] == 2.0 and np.isnan(out["se"][1])  # one customer: no spread
    assert np.isnan(out["estimate"][2])  # empty denominator


def test_ratio_of_sums_errors():
    good = {"n": 3, "sum_y": 8, "sum_x": 4, "sum_yy": 24, "sum_xx": 6, "sum_xy": 10}
    for key in ("n", "sum_yy", "sum_xx"):
        with pytest.raises(ParameterError, match=key):
            ratio_of_sums(**{**good, key: -1})
    with pytest.raises(TypeError):  # keyword-only: positional sums are too easy to mix up
        ratio_of_sums(3, 8, 4, 24, 6, 10)


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.tuples(st.integers(1, 12), st.integers(0, 30)), min_size=2, max_size=60),
    ci=st.floats(min_value=0.5, max_value=0.999),
)
def test_ratio_of_sums_property_interval_contains_estimate(rows, ci):
    x = np.array([r[0] for r in rows], dtype=float)
    y = np.array([r[1] for r in rows], dtype=float)
    out = ratio_of_sums(**moments(x, y), ci=ci)
    assert out["se"] >= 0
    assert out["low"] <= out["estimate"] <= out["high"]
    assert out["estimate"] == pytest.approx(y.sum() / x.sum())


# --------------------------------------------------------------------------------------------
# difference of independent estimates
# --------------------------------------------------------------------------------------------


def test_difference_interval_hand_example():
    # est2 − est1 = 0.12 − 0.20 = −0.08; se = √(0.02² + 0.015²) = √0.000625 = 0.025;
    # 95 %: −0.08 ± 1.959964 · 0.025 = (−0.128999, −0.031001); z = 3.2 -> p = 0.0013743
    d = difference_interval(0.20, 0.02, 0.12, 0.015)
    assert d["estimate"] == pytest.approx(-0.08)
    assert d["se"] == pytest.approx(0.025)
    assert d["low"] == pytest.approx(-0.08 - Z95 * 0.025)
    assert d["high"] == pytest.approx(-0.08 + Z95 * 0.025)
    assert d["p_value"] == pytest.approx(0.0013742758758316, rel=1e-9)
    assert d["excludes_zero"] is True


def test_difference_interval_vectorised_and_nan():
    d = difference_interval(
        np.array([0.0, 0.0, np.nan]), np.array([1.0, 0.1, 0.1]), np.array([1.0, 1.0, 1.0]), 0.1
    )
    assert d["excludes_zero"].tolist() == [False, True, False]  # NaN never "excludes zero"
    assert np.isnan(d["low"][2]) and np.isnan(d["p_value"][2])
    with pytest.raises(ParameterError, match="se1"):
        difference_interval(0, -0.1, 1, 0.1)
    with pytest.raises(ParameterError, match="se2"):
        difference_interval(0, 0.1, 1, -0.1)


@settings(max_examples=200, deadline=None)
@given(
    e1=st.floats(-1e6, 1e6),
    e2=st.floats(-1e6, 1e6),
    s1=st.floats(0, 1e3),
    s2=st.floats(0, 1e3),
    ci=st.floats(min_value=0.5, max_value=0.999),
)
def test_difference_interval_property_symmetric(e1, e2, s1, s2, ci):
    d = difference_interval(e1, s1, e2, s2, ci=ci)
    r = difference_interval(e2, s2, e1, s1, ci=ci)
    # symmetric around the estimate …
    assert d["high"] - d["estimate"] == pytest.approx(d["estimate"] - d["low"], rel=1e-9, abs=1e-6)
    # … and swapping the two estimates mirrors the interval
    assert r["estimate"] == pytest.approx(-d["estimate"])
    assert r["low"] == pytest.approx(-d["high"], rel=1e-9, abs=1e-6)
    assert bool(r["excludes_zero"]) == bool(d["excludes_zero"])
    # the flag and the p-value tell the same story at the matching level
    d95 = difference_interval(e1, s1, e2, s2, ci=0.95)
    if d95["se"] > 0:
        assert bool(d95["excludes_zero"]) == (d95["p_value"] < 0.05)


# --------------------------------------------------------------------------------------------
# bootstrap
# --------------------------------------------------------------------------------------------


def test_bootstrap_mean_close_to_t_interval_and_reproducible():
    rng = np.random.default_rng(0)
    y = rng.normal(10.0, 2.0, size=400)
    r = bootstrap_interval(y, n_boot=2000, seed=1)
    t_low, t_high = DescrStatsW(y).tconfint_mean()
    width = t_high - t_low
    assert r["estimate"] == pytest.approx(y.mean())
    assert r["n_boot"] == 2000
    assert r["low"] == pytest.approx(t_low, abs=0.05 * width)
    assert r["high"] == pytest.approx(t_high, abs=0.05 * width)
    assert r["se"] == pytest.approx(y.std(ddof=1) / np.sqrt(y.size), rel=0.08)
    assert bootstrap_interval(y, n_boot=2000, seed=1) == r  # same seed, same numbers
    assert bootstrap_interval(y, n_boot=2000, seed=2)["low"] != r["low"]


def test_bootstrap_dataframe_ratio_agrees_with_delta_method():
    x, y = simulate_products(1, 300, seed=4)
    frame = pd.DataFrame({"x": x[0], "y": y[0]})
    r = bootstrap_interval(frame, lambda d: d.y.sum() / d.x.sum(), n_boot=1500, seed=3)
    delta = ratio_of_sums(**moments(x[0], y[0]))
    assert r["estimate"] == pytest.approx(delta["estimate"])
    assert r["se"] == pytest.approx(delta["se"], rel=0.1)


def test_bootstrap_cluster_resampling_widens_for_correlated_rows():
    # 40 households of 10 customers who all share the household's value: effectively 40
    # observations, so the cluster bootstrap is about √10 ≈ 3.2 times wider than the naive one.
    rng = np.random.default_rng(8)
    household = np.repeat(np.arange(40), 10)
    y = rng.normal(size=40)[household]
    naive = bootstrap_interval(y, n_boot=1000, seed=0)
    cluster = bootstrap_interval(y, n_boot=1000, seed=0, groups=household)
    ratio = (cluster["high"] - cluster["low"]) / (naive["high"] - naive["low"])
    assert 2.5 < ratio < 4.0
    # Series groups with string labels work the same way
    labels = pd.Series([f"h{h}" for h in household])
    again = bootstrap_interval(y, n_boot=1000, seed=0, groups=labels)
    assert again["se"] == pytest.approx(cluster["se"], rel=0.2)


def test_bootstrap_counts_only_finite_replicates():
    values = np.array([0.0, 0.0, 0.0, 0.0, 1.0])

    def share_of_ones_or_nan(v):  # undefined when no 1 was drawn, as a ratio with Σx = 0
        return np.nan if v.sum() == 0 else v.mean()

    r = bootstrap_interval(values, share_of_ones_or_nan, n_boot=1000, seed=0)
    # P(no 1 in 5 draws) = 0.8⁵ = 0.328, so about 670 of 1000 replicates are finite
    assert 600 < r["n_boot"] < 740
    assert np.isfinite(r["low"]) and np.isfinite(r["high"])


def test_bootstrap_empty_and_errors():
    r = bootstrap_interval([])
    assert r["n_boot"] == 0 and all(np.isnan(r[k]) for k in ("estimate", "low", "high", "se"))
    with pytest.raises(ParameterError, match="n_boot"):
        bootstrap_interval([1.0, 2.0], n_boot=0)
    with pytest.raises(ParameterError, match="n_boot"):
        bootstrap_interval([1.0, 2.0], n_boot=10.5)
    with pytest.raises(ParameterError, match="statistic"):
        bootstrap_interval([1.0, 2.0], statistic="mean")
    with pytest.raises(ParameterError, match="single number"):
        bootstrap_interval([1.0, 2.0], statistic=lambda v: v, n_boot=5)
    with pytest.raises(ParameterError, match="groups"):
        bootstrap_interval([1.0, 2.0, 3.0], groups=[1, 2], n_boot=5)
    with pytest.raises(ParameterError, match="scalar"):
        bootstrap_interval(3.0)


# --------------------------------------------------------------------------------------------
# NPS
# --------------------------------------------------------------------------------------------


def test_nps_hand_example():
    # scores 10 10 9 9 9 | 8 7 | 6 2 0 (n = 10): 5 promoters, 2 passives, 3 detractors
    # NPS = 100 · (5/10 − 3/10) = 20
    # SE  = 100 · √((0.5 + 0.3 − 0.2²) / 10) = 100 · √0.076 = 27.5680975…
    # 95 %: 20 ± 1.959964 · 27.568098 = (−34.0331, 74.0331)
    r = nps([10, 10, 9, 9, 9, 8, 7, 6, 2, 0])
    assert (r["n"], r["promoters"], r["passives"], r["detractors"]) == (10, 5, 2, 3)
    assert r["estimate"] == pytest.approx(20.0)
    assert r["se"] == pytest.approx(100 * math.sqrt(0.076), rel=1e-12)
    assert r["se"] == pytest.approx(27.5680975, rel=1e-8)
    assert r["low"] == pytest.approx(20 - Z95 * 27.5680975, rel=1e-7)
    assert r["high"] == pytest.approx(20 + Z95 * 27.5680975, rel=1e-7)


def test_nps_se_is_the_se_of_a_plus_minus_one_score():
    # NPS is 100 × the mean of +1 (promoter), 0 (passive), −1 (detractor); its variance is
    # p_P + p_D − (p_P − p_D)², which the closed form must reproduce.
    rng = np.random.default_rng(12)
    scores = rng.integers(0, 11, size=733)
    v = np.where(scores >= 9, 1.0, np.where(scores <= 6, -1.0, 0.0))
    r = nps(scores)
    assert r["estimate"] == pytest.approx(100 * v.mean())
    assert r["se"] == pytest.approx(100 * v.std(ddof=0) / np.sqrt(v.size), rel=1e-12)


def test_nps_missing_and_errors():
    r = nps(pd.Series([10, np.nan, 3, None], dtype=float))
    assert r["n"] == 2 and r["missing"] == 2 and r["estimate"] == 0.0
    empty = nps([])
    assert empty["n"] == 0 and np.isnan(empty["estimate"]) and np.isnan(empty["low"])
    with pytest.raises(ParameterError, match="between 0 and 10"):
        nps([5, 11])
    with pytest.raises(ParameterError, match="between 0 and 10"):
        nps([-1, 5])
    with pytest.raises(ParameterError):
        nps(["great"])


def test_nps_interval_vectorised_edges_and_errors():
    r = nps_interval(np.array([10, 0, 0, 3]), np.array([0, 10, 0, 1]), np.array([10, 10, 0, 10]))
    assert r["estimate"][0] == 100.0 and r["se"][0] == 0.0 and r["high"][0] == 100.0
    assert r["estimate"][1] == -100.0 and r["low"][1] == -100.0
    assert np.isnan(r["estimate"][2]) and np.isnan(r["se"][2])  # no respondents
    assert (r["low"][3] >= -100) and (r["high"][3] <= 100)
    with pytest.raises(ParameterError, match="promoters \\+ detractors must not exceed n"):
        nps_interval(6, 5, 10)
    with pytest.raises(ParameterError, match="detractors must not be negative"):
        nps_interval(1, -1, 10)
    with pytest.raises(ParameterError, match="n must not be negative"):
        nps_interval(0, 0, -10)


# --------------------------------------------------------------------------------------------
# Spearman
# --------------------------------------------------------------------------------------------


def test_spearman_matches_scipy_and_bonett_wright_interval():
    rng = np.random.default_rng(21)
    x = rng.integers(1, 6, size=200)  # products held (many ties)
    y = np.clip(np.round(2 + 0.4 * x + rng.normal(0, 1, size=200)), 1, 5)  # CSAT 1-5
    r = spearman_interval(x, y)
    ref = sps.spearmanr(x, y)
    assert r["estimate"] == pytest.approx(ref.statistic, rel=1e-12)
    assert r["p_value"] == pytest.approx(ref.pvalue, rel=1e-9)
    assert r["n"] == 200
    # Fisher z with Bonett & Wright (2000) SE: √((1 + rho²/2) / (n − 3))
    rho = ref.statistic
    se = math.sqrt((1 + rho**2 / 2) / 197)
    assert r["low"] == pytest.approx(math.tanh(math.atanh(rho) - Z95 * se), rel=1e-10)
    assert r["high"] == pytest.approx(math.tanh(math.atanh(rho) + Z95 * se), rel=1e-10)
    assert r["low"] < r["estimate"] < r["high"]


def test_spearman_interval_narrows_with_n():
    rng = np.random.default_rng(22)
    x = rng.normal(size=2000)
    y = x + rng.normal(size=2000)
    widths = []
    for n in (30, 300, 2000):
        r = spearman_interval(x[:n], y[:n])
        assert r["low"] < r["estimate"] < r["high"]
        widths.append(r["high"] - r["low"])
    assert widths[0] > widths[1] > widths[2]


def test_spearman_missing_small_constant_and_errors():
    r = spearman_interval(pd.Series([1, 2, np.nan, 4, 5, 6]), [1, 3, 2, np.nan, 5, 4])
    assert r["n"] == 4  # two incomplete pairs dropped
    assert r["estimate"] == pytest.approx(sps.spearmanr([1, 2, 5, 6], [1, 3, 5, 4]).statistic)
    three = spearman_interval([1, 2, 3], [1, 3, 2])
    assert np.isfinite(three["estimate"]) and np.isnan(three["low"])  # n − 3 = 0
    const = spearman_interval([1, 2, 3, 4, 5], [2, 2, 2, 2, 2])
    assert np.isnan(const["estimate"]) and np.isnan(const["p_value"]) and np.isnan(const["low"])
    perfect = spearman_interval([1, 2, 3, 4, 5], [2, 4, 6, 8, 10])
    assert perfect["estimate"] == pytest.approx(1.0) and perfect["low"] <= 1.0
    with pytest.raises(ParameterError, match="same length"):
        spearman_interval([1, 2, 3], [1, 2])


# --------------------------------------------------------------------------------------------
# multiple testing
# --------------------------------------------------------------------------------------------


def test_adjust_pvalues_nan_hand_example():
    # BH over the 3 non-missing p-values, sorted 0.01, 0.03, 0.04 (m = 3):
    #   0.01·3/1 = 0.03, 0.03·3/2 = 0.045, 0.04·3/3 = 0.04; step-up minimum from the top:
    #   0.04, min(0.045, 0.04) = 0.04, min(0.03, 0.04) = 0.03  -> back in input order.
    out = adjust_pvalues(np.array([0.01, np.nan, 0.04, 0.03]))
    np.testing.assert_allclose(out, [0.03, np.nan, 0.04, 0.04], equal_nan=True)


def test_adjust_pvalues_matches_statsmodels_and_keeps_series_index():
    rng = np.random.default_rng(30)
    p = rng.random(50) ** 3
    for method in ("fdr_bh", "bonferroni", "holm", "fdr_by"):
        np.testing.assert_allclose(
            adjust_pvalues(p, method=method), multipletests(p, method=method)[1]
        )
    s = pd.Series([0.2, np.nan, 0.01], index=["x", "y", "z"], name="p")
    out = adjust_pvalues(s, method="bonferroni")
    assert isinstance(out, pd.Series) and list(out.index) == ["x", "y", "z"]
    np.testing.assert_allclose(out.to_numpy(), [0.4, np.nan, 0.02], equal_nan=True)


def test_adjust_pvalues_edges_and_errors():
    assert np.isnan(adjust_pvalues([np.nan, np.nan])).all()
    assert adjust_pvalues([]).shape == (0,)
    assert adjust_pvalues(0.2) == pytest.approx(0.2)
    with pytest.raises(ParameterError, match="between 0 and 1"):
        adjust_pvalues([0.5, 1.2])
    with pytest.raises(ParameterError, match="method"):
        adjust_pvalues([0.5], method="nonsense")
    with pytest.raises(ParameterError, match="method"):
        adjust_pvalues([np.nan], method="nonsense")


# --------------------------------------------------------------------------------------------
# lift
# --------------------------------------------------------------------------------------------


def test_lift_hand_example():
    # n = 100 customers, 20 own A, 25 own B, 10 own both.
    # lift = 10·100 / (20·25) = 1000 / 500 = 2
    # Var(log lift) = 1/10 − 1/20 − 1/25 + (2·2 − 1)/100 = 0.1 − 0.05 − 0.04 + 0.03 = 0.04
    # se_log = 0.2; 95 %: 2·exp(∓1.959964·0.2) = 2·exp(∓0.3919928) = (1.351418, 2.959854)
    r = lift_test(10, 20, 25, 100)
    assert r["estimate"] == 2.0
    assert r["se_log"] == pytest.approx(0.2, rel=1e-12)
    assert r["low"] == pytest.approx(2 * math.exp(-Z95 * 0.2), rel=1e-12)
    assert r["high"] == pytest.approx(2 * math.exp(Z95 * 0.2), rel=1e-12)
    assert r["low"] == pytest.approx(1.351418, abs=1e-6)
    assert r["high"] == pytest.approx(2.959854, abs=1e-6)
    # P(X ≥ 10), X ~ Hypergeometric(N=100, K=20, draws=25)
    assert r["p_value"] == pytest.approx(sps.hypergeom.sf(9, 100, 20, 25), rel=1e-12)


def test_lift_large_counts_do_not_overflow_and_are_exact():
    # 1,000,000 × 10,000,000 = 10¹³ overflows 32 bits (and would in int32 inputs)
    n_ab, n_a, n_b, n = 1_000_000, 3_000_000, 3_000_000, 10_000_000
    r = lift_test(np.int32(n_ab), np.int32(n_a), np.int32(n_b), np.int32(n))
    assert r["estimate"] == float(Fraction(n_ab * n, n_a * n_b))  # 10/9, correctly rounded
    assert r["estimate"] == pytest.approx(10 / 9)
    assert r["p_value"] == 0.0  # 1,000,000 observed against 900,000 expected
    assert r["low"] < r["estimate"] < r["high"]

    arrays = lift_test(
        np.array([n_ab, 900_000], dtype=np.int32),
        np.array([n_a, n_a], dtype=np.int32),
        np.array([n_b, n_b], dtype=np.int32),
        np.int32(n),
    )
    assert arrays["estimate"][0] == float(Fraction(n_ab * n, n_a * n_b))
    assert arrays["estimate"][1] == 1.0


def test_lift_beyond_float_exact_range_is_still_exact():
    # n² > 2**53: the products no longer fit a float64 exactly, so Python ints take over.
    n_ab, n_a, n_b, n = 10**9 + 7, 3 * 10**9, 2 * 10**9 + 3, 4 * 10**9 + 1
    r = lift_test(n_ab, n_a, n_b, n)
    assert r["estimate"] == float(Fraction(n_ab * n, n_a * n_b))


@pytest.mark.parametrize(
    "n_ab, n_a, n_b, n",
    [(10, 20, 25, 100), (3, 10, 12, 50), (0, 5, 5, 20), (40, 100, 120, 500), (7, 7, 9, 9)],
)
def test_lift_pvalue_equals_fisher_exact_greater(n_ab, n_a, n_b, n):
    table = [[n_ab, n_a - n_ab], [n_b - n_ab, n - n_a - n_b + n_ab]]
    ref = sps.fisher_exact(table, alternative="greater").pvalue
    assert lift_test(n_ab, n_a, n_b, n)["p_value"] == pytest.approx(ref, rel=1e-10)


def test_lift_vectorised_matches_single_calls_and_keeps_index():
    pairs = pd.DataFrame(
        {"n_ab": [10, 3, 40], "n_a": [20, 10, 100], "n_b": [25, 12, 120]},
        index=pd.Index(["A+B", "A+C", "B+C"], name="pair"),
    )
    out = pd.DataFrame(lift_test(pairs.n_ab, pairs.n_a, pairs.n_b, 500))
    assert out.index.equals(pairs.index)
    for pair, row in pairs.iterrows():
        single = lift_test(row.n_ab, row.n_a, row.n_b, 500)
        for key, value in single.items():
            assert out.loc[pair, key] == pytest.approx(value, rel=1e-12)


def test_lift_log_se_matches_multinomial_simulation():
    # Cells (both, A only, B only, neither) drawn as a multinomial with n fixed: the spread of
    # log(lift) across 20,000 seeded samples matches the delta-method se_log within 3 %.
    rng = np.random.default_rng(17)
    n = 2000
    cells = rng.multinomial(n, [0.05, 0.10, 0.15, 0.70], size=20_000)
    n_ab, n_a, n_b = cells[:, 0], cells[:, 0] + cells[:, 1], cells[:, 0] + cells[:, 2]
    r = lift_test(n_ab, n_a, n_b, n)
    assert np.median(r["se_log"]) == pytest.approx(np.std(np.log(r["estimate"])), rel=0.03)
    covered = (r["low"] <= 0.05 / (0.15 * 0.20)) & (0.05 / (0.15 * 0.20) <= r["high"])
    assert 0.93 <= covered.mean() <= 0.97


def test_lift_empty_and_zero_cells():
    r = lift_test(
        np.array([0, 0, 0, 0]), np.array([0, 5, 5, 0]), np.array([5, 0, 5, 0]), [20, 20, 20, 0]
    )
    assert np.isnan(r["estimate"][[0, 1, 3]]).all() and np.isnan(r["p_value"][[0, 1, 3]]).all()
    # no co-owners: lift 0, lower bound 0, no upper bound from the log-scale interval
    assert r["estimate"][2] == 0.0 and r["low"][2] == 0.0 and np.isnan(r["high"][2])
    assert r["p_value"][2] == 1.0
    assert not np.isinf(np.concatenate(list(r.values()))).any()


def test_lift_errors():
    with pytest.raises(ParameterError, match="n_ab must not exceed n_a"):
        lift_test(21, 20, 25, 100)
    with pytest.raises(ParameterError, match="n_ab must not exceed n_b"):
        lift_test(21, 30, 20, 100)
    with pytest.raises(ParameterError, match="n_a must not exceed n"):
        lift_test(10, 120, 25, 100)
    with pytest.raises(ParameterError, match="n_a \\+ n_b - n_ab must not exceed n"):
        lift_test(10, 60, 60, 100)
    with pytest.raises(ParameterError, match="n must not be negative"):
        lift_test(0, 0, 0, -1)
    with pytest.raises(ParameterError, match="whole counts"):
        lift_test(10.5, 20, 25, 100)
    with pytest.raises(ParameterError, match="whole counts"):
        lift_test(np.nan, 20, 25, 100)
    with pytest.raises(ParameterError, match="integer counts"):
        lift_test(True, 20, 25, 100)
    assert lift_test(10.0, 20.0, 25.0, 100.0)["estimate"] == 2.0  # whole floats are fine


# --------------------------------------------------------------------------------------------
# RMST
# --------------------------------------------------------------------------------------------


def test_rmst_hand_example():
    # S(t) = 1 on [0, 2), 0.8 on [2, 5), 0.5 on [5, 7), 0.2 from 7 on.
    # tau = 6:  2·1 + 3·0.8 + 1·0.5           = 2 + 2.4 + 0.5       = 4.9
    # tau = 10: 2·1 + 3·0.8 + 2·0.5 + 3·0.2   = 2 + 2.4 + 1 + 0.6   = 6.0
    # tau = 1:  1·1 = 1;  tau = 5 (on a step): 2 + 3·0.8 = 4.4;  tau = 0: 0
    times, surv = [2, 5, 7], [0.8, 0.5, 0.2]
    assert rmst(times, surv, 6) == pytest.approx(4.9)
    assert rmst(times, surv, 10) == pytest.approx(6.0)
    np.testing.assert_allclose(rmst(times, surv, np.array([0, 1, 5, 6, 10])), [0, 1, 4.4, 4.9, 6.0])
    out = rmst(times, surv, pd.Series([6.0, 10.0], index=["6m", "10m"]))
    assert list(out.index) == ["6m", "10m"] and out["6m"] == pytest.approx(4.9)


def test_rmst_matches_fine_grid_on_a_kaplan_meier_curve():
    from statsmodels.duration.survfunc import SurvfuncRight

    rng = np.random.default_rng(40)
    event_time = rng.exponential(12.0, size=300)
    censor = rng.uniform(0, 24, size=300)
    sf = SurvfuncRight(np.minimum(event_time, censor), (event_time <= censor).astype(int))
    tau = 18.0
    grid = np.linspace(0, tau, 180_001)
    idx = np.searchsorted(sf.surv_times, grid, side="right") - 1
    curve = np.where(idx < 0, 1.0, sf.surv_prob[np.clip(idx, 0, None)])
    left_riemann = np.sum(curve[:-1] * np.diff(grid))  # exact up to one grid step per jump
    assert rmst(sf.surv_times, sf.surv_prob, tau) == pytest.approx(left_riemann, abs=2e-3)


def test_rmst_ties_no_events_and_errors():
    # a repeated time takes the last survival value at that time
    assert rmst([2, 2, 4], [0.9, 0.6, 0.3], 5) == pytest.approx(2 + 2 * 0.6 + 1 * 0.3)
    assert rmst([], [], 12) == 12.0  # nobody churned: everyone stays the whole horizon
    assert rmst([0, 3], [0.5, 0.25], 4) == pytest.approx(3 * 0.5 + 0.25)  # step at time 0
    with pytest.raises(ParameterError, match="same length"):
        rmst([1, 2], [0.5], 3)
    with pytest.raises(ParameterError, match="sorted"):
        rmst([3, 1], [0.9, 0.5], 3)
    with pytest.raises(ParameterError, match="non-negative"):
        rmst([-1, 1], [0.9, 0.5], 3)
    with pytest.raises(ParameterError, match="between 0 and 1"):
        rmst([1, 2], [1.2, 0.5], 3)
    with pytest.raises(ParameterError, match="tau must not be negative"):
        rmst([1, 2], [0.9, 0.5], -1)


# --------------------------------------------------------------------------------------------
# phreg: statsmodels' Cox model with risk sets indexed by numpy


def _survival_data(seed: int, n: int, *, strata: bool, entry: bool):
    rng = np.random.default_rng(seed)
    time = rng.integers(1, 40, size=n).astype(float)  # whole days: many ties
    status = (rng.random(n) < 0.4).astype(int)
    exog = np.column_stack([rng.integers(0, 2, size=n), rng.normal(size=n)])
    kw = {}
    if strata:
        kw["strata"] = rng.choice(["a", "b", "c"], size=n)
    if entry:
        kw["entry"] = np.floor(time * rng.random(n))  # may equal time: zero-length rows
    return time, status, exog, kw


@pytest.mark.parametrize(("strata", "entry"), [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_fast_risk_sets_equal_statsmodels(seed, strata, entry):
    from statsmodels.duration.hazard_regression import PHSurvivalTime

    time, status, exog, kw = _survival_data(seed, 400, strata=strata, entry=entry)
    offset = np.linspace(0, 1, len(time))
    args = (time, status, exog, kw.get("strata"), kw.get("entry"), offset)
    ref, fast = PHSurvivalTime(*args), stats._fast_survival_time()(*args)
    assert (fast.nstrat, fast.nstrat_orig, fast.n_obs) == (ref.nstrat, ref.nstrat_orig, ref.n_obs)
    assert list(fast.stratum_names) == list(ref.stratum_names)
    for name in ("stratum_rows", "time_s", "status_s", "entry_s", "exog_s", "offset_s", "ufailt"):
        for a, b in zip(getattr(fast, name), getattr(ref, name), strict=True):
            np.testing.assert_array_equal(a, b, err_msg=name)
    for name in ("ufailt_ix", "risk_enter", "risk_exit"):
        for per_a, per_b in zip(getattr(fast, name), getattr(ref, name), strict=True):
            assert len(per_a) == len(per_b), name
            for a, b in zip(per_a, per_b, strict=True):
                assert a.dtype == b.dtype == np.int32, name
                np.testing.assert_array_equal(a, b, err_msg=name)


@pytest.mark.parametrize("ties", ["breslow", "efron"])
def test_phreg_fits_exactly_as_statsmodels(ties):
    from statsmodels.duration.hazard_regression import PHReg, PHSurvivalTime

    time, status, exog, kw = _survival_data(7, 600, strata=True, entry=True)
    ref = PHReg(time, exog, status=status, ties=ties, **kw).fit()
    got = stats.phreg(time, exog, status=status, ties=ties, **kw).fit()
    np.testing.assert_allclose(got.params, ref.params, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.bse, ref.bse, rtol=0, atol=1e-12)
    # the patch is undone: statsmodels' own class is back
    from statsmodels.duration import hazard_regression as hr

    assert hr.PHSurvivalTime is PHSurvivalTime


def test_phreg_keeps_statsmodels_errors():
    time, status, exog, _ = _survival_data(8, 50, strata=False, entry=False)
    with pytest.raises(ValueError, match="entry times may not occur after"):
        stats.phreg(time, exog, status=status, entry=time + 1)
    with pytest.raises(ValueError, match="non-negative"):
        stats.phreg(time - 100, exog, status=status)
