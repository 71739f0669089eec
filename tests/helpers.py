"""Helpers of the tests: drawing estimates through the harness (argument validation on), and z-tests.

Suite-wide false-failure rate. Every statistical check (one z-test, Bonferroni-corrected over its
coordinates, or one comparison of two estimates) runs at level ALPHA = 1e-6 with fixed seeds, and each
statistical test declares how many checks it makes with `@pytest.mark.statistical(checks=K)`. The
collection hook in conftest.py sums K over the collected tests and refuses a suite whose total exceeds
SUITE_FALSE_FAILURE_RATE / ALPHA = 1000 checks, so the chance that a correct implementation fails any
statistical test of a run is at most SUITE_FALSE_FAILURE_RATE = 1e-3 (union bound). Tolerances come from
standard errors at that level; where a check lacks power, N grows, the level never does.
"""
from __future__ import annotations

import contextlib

import pytest
import torch
from scipy import stats

import estimators
from benchmarks.harness import draw_estimates, warm_up
from benchmarks.tasks import get_problem

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
SUITE_FALSE_FAILURE_RATE = 1e-3
ALPHA = 1e-6
MAX_CHECKS = round(SUITE_FALSE_FAILURE_RATE / ALPHA)
Z = float(stats.norm.ppf(1 - ALPHA / 2))  # two-sided critical value of one scalar check
# A sweep row's statistics columns: the same seed gives them bit for bit, whatever the executor (or benchmarks.rerun).
STATISTICS = {"variance_trace", "variance_trace_lo", "variance_trace_hi", "variance_mean", "variance_max",
              "bias_norm", "bias_norm_lo", "bias_norm_hi", "bias_z_max", "bias_sq_debiased", "bias_significant",
              "mse", "mse_lo", "mse_hi", "cosine", "snr", "snr_lo", "snr_hi", "rel_bias", "rel_bias_lo",
              "rel_bias_hi", "nonfinite", "n_finite", "variance_x_fevals", "true_grad_norm", "exact_value"}


def samples_for(spec, wanted: int = 1) -> int:
    return max(wanted, spec.min_samples)


def draw(spec_name: str, problem_id: str, n: int, n_samples: int, seed: int = 0, device: str = "cpu",
         dtype=torch.float64, hparams: dict | None = None) -> torch.Tensor:
    """(n, P) estimates through the harness's drawer, with torch.distributions' argument validation on
    (it is off in the sweep); a stateful estimator is warmed up first, as in the sweep."""
    spec = estimators.get_spec(spec_name)
    problem = get_problem(problem_id)
    torch.manual_seed(seed)
    estimator = spec.make(**(hparams or {}))
    warm_up(spec, estimator, problem, n_samples, device, dtype, n, validate_args=True)
    return draw_estimates(estimator, problem, n, n_samples, device, dtype, validate_args=True)


def max_abs_z(estimates: torch.Tensor, target: torch.Tensor) -> float:
    """Largest |mean - target| / standard error over coordinates."""
    estimates = estimates.double()
    mean = estimates.mean(0)
    se = estimates.std(0) / estimates.shape[0] ** 0.5
    return float(((mean - target.double()).abs() / se.clamp_min(1e-300)).max())


def bonferroni_z(alpha: float, coordinates: int) -> float:
    """Critical |z| for a two-sided test at family-wise false-failure rate alpha over P coordinates."""
    return float(stats.norm.ppf(1 - alpha / (2 * coordinates)))


def variance_and_se(estimates: torch.Tensor) -> tuple[float, float]:
    """Trace of the sample covariance and its standard error (it is a mean of ||g_i - mean||^2)."""
    squared = (estimates - estimates.mean(0)).square().sum(-1)
    n = estimates.shape[0]
    return float(squared.sum() / (n - 1)), float(squared.std() / n ** 0.5)


@contextlib.contextmanager
def training_interrupted_at(call: int):
    """Inside the block, VAE.loss raises KeyboardInterrupt (a Ctrl-C) at its `call`-th call, evaluation
    calls included: a run stopped at a chosen point of its training."""
    from benchmarks.vae_model import VAE

    calls, original = [], VAE.loss

    def interrupted(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(VAE, "loss", interrupted)
        yield


def inside_and_apart(fig, texts) -> None:
    """Every text's box lies inside the figure, and no two of them overlap (in pixels)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    width, height = fig.canvas.get_width_height()
    boxes = [text.get_window_extent(renderer) for text in texts if text.get_text()]
    for box, text in zip(boxes, [t for t in texts if t.get_text()]):
        assert box.x0 >= -1 and box.y0 >= -1 and box.x1 <= width + 1 and box.y1 <= height + 1, text.get_text()
    for i, box in enumerate(boxes):
        for other in boxes[i + 1:]:
            assert not box.overlaps(other), (box, other)


def run_whose_every_cell_failed(out, monkeypatch):
    """A variance run at `out` whose one cell raised (a user's estimator that fails): exit 1, no rows."""
    import benchmarks.harness as harness
    import benchmarks.variance as variance

    def raises(cell, **kwargs):
        raise RuntimeError("boom in a user's estimator")

    monkeypatch.setattr(harness, "run_cell", raises)
    assert variance.main(["--estimators", "reinforce", "--objectives", "tucker-0.45", "--estimates", "300",
                          "--no-report", "--out", str(out)]) == 1
    return out
