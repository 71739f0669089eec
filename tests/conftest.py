"""Shared helpers for the tests: drawing estimates with argument validation on, and z-tests."""
from __future__ import annotations

import pytest
import torch
from scipy import stats

import estimators
from benchmarks.objectives import get_objective

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(autouse=True)
def _seeded_global_rng():
    """Every test starts from the same global RNG state, so a test that draws without its own
    generator gets the same numbers whichever tests ran before it (or whether it runs alone)."""
    torch.manual_seed(0)


def default_hparams(spec) -> dict:
    return dict(spec.hparams)


def samples_for(spec, wanted: int = 1) -> int:
    return max(wanted, spec.min_samples)


def draw(spec_name: str, objective_id: str, n: int, n_samples: int, seed: int = 0, device: str = "cpu",
         dtype=torch.float64, hparams: dict | None = None) -> torch.Tensor:
    """(n, P) estimates with torch.distributions' argument validation on (it is off in the harness)."""
    spec = estimators.get_spec(spec_name)
    objective = get_objective(objective_id)
    hparams = {**spec.hparams, **(hparams or {})}
    torch.manual_seed(seed)
    estimator = spec.make()
    for _ in range(spec.warmup_calls):
        _chunk(estimator, objective, min(n, spec.warmup_rows or n), n_samples, hparams, device, dtype)
    return _chunk(estimator, objective, n, n_samples, hparams, device, dtype)


def _chunk(estimator, objective, n, n_samples, hparams, device, dtype):
    params = objective.batched_point(n, device, dtype)
    surrogate = estimator(objective.cost, objective.distribution(params, validate_args=True),
                          num_samples=n_samples, **hparams)
    grads = torch.autograd.grad(surrogate.mean(0).sum(), list(params.values()), allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(n, -1)
                      for g, p in zip(grads, params.values())], dim=1)


def max_abs_z(estimates: torch.Tensor, target: torch.Tensor) -> float:
    """Largest |mean - target| / standard error over coordinates."""
    estimates = estimates.double()
    mean = estimates.mean(0)
    se = estimates.std(0) / estimates.shape[0] ** 0.5
    return float(((mean - target.double()).abs() / se.clamp_min(1e-300)).max())


def bonferroni_z(alpha: float, coordinates: int) -> float:
    """Critical |z| for a two-sided test at family-wise false-failure rate alpha over P coordinates."""
    return float(stats.norm.ppf(1 - alpha / (2 * coordinates)))


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param
