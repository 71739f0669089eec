import math

import numpy as np
import pytest
import torch
from scipy import stats

from benchmarks.metrics import gradient_metrics
from tests.helpers import ALPHA


def test_point_values_match_definitions():
    torch.manual_seed(0)
    g = torch.randn(500, 3, dtype=torch.float64) * torch.tensor([1.0, 2.0, 0.5]) + torch.tensor([0.1, 0.0, -0.2])
    true = torch.tensor([0.0, 0.0, 0.0], dtype=torch.float64)
    row = gradient_metrics(g, true)
    variance = g.var(0)
    assert row["variance_trace"] == pytest.approx(float(variance.sum()))
    assert row["variance_mean"] == pytest.approx(float(variance.sum()) / 3)
    assert row["variance_max"] == pytest.approx(float(variance.max()))
    bias = g.mean(0) - true
    assert row["bias_norm"] == pytest.approx(float(bias.norm()))
    assert row["bias_sq_debiased"] == pytest.approx(float(bias.square().sum() - variance.sum() / 500))
    assert row["mse"] == pytest.approx(float((g - true).square().sum(-1).mean()))
    assert row["snr"] == pytest.approx(float(g.mean(0).square().sum() / variance.sum()))
    assert row["bias_z_max"] == pytest.approx(float((bias.abs() / (variance / 500).sqrt()).max()))
    assert math.isnan(row["rel_bias"])  # ||g*|| = 0
    for name in ("variance_trace", "mse", "snr", "bias_norm"):
        assert row[f"{name}_lo"] <= row[name] <= row[f"{name}_hi"]


def test_bootstrap_interval_agrees_with_scipy():
    rng = np.random.default_rng(1)
    g = rng.normal(size=(400, 2)) * [1.0, 3.0]
    row = gradient_metrics(torch.from_numpy(g), torch.zeros(2, dtype=torch.float64), resamples=4000)
    reference = stats.bootstrap((g,), lambda x, axis: x.var(axis=axis, ddof=1).sum(axis=0), method="percentile",
                                n_resamples=4000, random_state=2, axis=0, vectorized=True).confidence_interval
    width = reference.high - reference.low
    assert row["variance_trace_lo"] == pytest.approx(reference.low, abs=0.1 * width)
    assert row["variance_trace_hi"] == pytest.approx(reference.high, abs=0.1 * width)


@pytest.mark.statistical(checks=1)
def test_bias_interval_covers_zero_bias_and_detects_real_bias():
    """Coverage of the bias bound over 1,000 seeded repetitions. A correct bound covers with probability
    >= 95% (it is conservative), so the count covered is at least Bin(1000, 0.95): one one-sided check at
    level ALPHA (its 1e-6 quantile, 914; a bound covering 90% of the time fails it)."""
    repetitions = 1000
    covered = 0
    for seed in range(repetitions):
        torch.manual_seed(seed)
        g = torch.randn(300, 16, dtype=torch.float64)
        row = gradient_metrics(g, torch.zeros(16, dtype=torch.float64), resamples=10)
        covered += row["bias_norm_lo"] == 0.0
    assert covered >= stats.binom.ppf(ALPHA, repetitions, 0.95), covered
    torch.manual_seed(0)
    g = torch.randn(2000, 4, dtype=torch.float64) + 0.5
    row = gradient_metrics(g, torch.zeros(4, dtype=torch.float64))
    assert row["bias_norm_lo"] <= 1.0 <= row["bias_norm_hi"] and row["bias_significant"]


def test_nonfinite_estimates_are_counted_and_left_out():
    g = torch.ones(10, 2, dtype=torch.float64)
    g[3, 1] = float("nan")
    g[7, 0] = float("inf")
    row = gradient_metrics(g, torch.ones(2, dtype=torch.float64))
    assert row["nonfinite"] == 2 and row["n_finite"] == 8
    assert row["variance_trace"] == 0.0 and row["bias_norm"] == 0.0 and not row["bias_significant"]


def test_an_estimated_reference_widens_the_bias_interval_by_its_standard_error():
    """|observed - true bias| <= ||mean - E g|| + ||g_ref - g_true||: with reference_se the radius is the
    mean's at level 0.975 plus se / sqrt(0.025) (Markov), and the other figures do not change."""
    from benchmarks.metrics import gradient_metrics, mean_error_radius

    torch.manual_seed(0)
    estimates = torch.randn(500, 3, dtype=torch.float64) + 1.0
    target = torch.ones(3, dtype=torch.float64)
    plain = gradient_metrics(estimates, target)
    widened = gradient_metrics(estimates, target, reference_se=0.01)
    radius = mean_error_radius(estimates - estimates.mean(0), 0.975) + 0.01 / 0.025 ** 0.5
    assert widened["bias_norm_hi"] == pytest.approx(widened["bias_norm"] + radius)
    assert widened["bias_norm_hi"] > plain["bias_norm_hi"]
    assert widened["variance_trace"] == plain["variance_trace"] and widened["mse_lo"] == plain["mse_lo"]
