"""A reference gradient estimated by many samples of an unbiased estimator, chosen from the registry.

Where no closed form or enumeration exists (a Gaussian VAE, a user's own cost), the reference is the
mean of M independent estimates of an estimator registered as unbiased. Its standard error,
sqrt(E||g_ref - g_true||^2) = sqrt(trace Cov / M), is carried into every bias interval measured
against it (benchmarks.metrics.gradient_metrics, `reference_se`).
"""
from __future__ import annotations

import math
import zlib

import torch

import estimators
from estimators.families import FAMILY_BY_CLASS
from benchmarks.tasks.protocol import GradientProblem, Reference, forked_rng


def reference_estimator(family, n_samples: int = 10) -> estimators.EstimatorSpec:
    """The estimator a reference is estimated with, chosen from the registry's metadata only.

    Candidates: registered unbiased, stateless (its estimates are independent draws), not itself an
    enumeration, supporting the family (a name, or the distribution's class), with a per-sample cost that does not grow with the event
    size. Preference: fewest f-evaluations per estimate from n_samples samples (MuProp's extra evaluation
    at the mean counts); then the most specialised (fewest supported
    families: an estimator written for a family uses more of its structure, e.g. the pathwise
    gradient over the score function for a Normal); then a built-in baseline (a larger minimum S,
    e.g. leave-one-out over plain REINFORCE); then the name, so the choice is deterministic."""
    candidates = [spec for spec in estimators.list_estimators()
                  if spec.unbiased and not spec.stateful and not spec.is_reference and spec.supports(family)
                  and spec.f_evals_per_coordinate == 0]
    if not candidates:
        raise estimators.UnsupportedFamilyError(f"no registered unbiased estimator supports the {family!r} family, "
                                                "so no reference gradient can be estimated for it")
    # Specialisation: how many of the known torch families it serves (by name or by capability).
    return min(candidates, key=lambda s: (s.f_evals_per_estimate(n_samples),
                                          sum(s.supports(cls) for cls in FAMILY_BY_CLASS), -s.min_samples, s.name))


def estimated_reference(problem: GradientProblem, n_estimates: int = 2_000, n_samples: int = 10,
                        estimator: str | None = None, seed: int = 0, device: str = "cpu",
                        dtype: torch.dtype = torch.float32) -> Reference:
    """The mean of n_estimates estimates, each from n_samples samples, with its standard error.

    With a gradient map the standard error is measured in the mapped parameters, where the metrics
    are computed."""
    from benchmarks.harness import draw_estimates  # the harness imports the tasks

    spec = estimators.get_spec(estimator) if estimator else reference_estimator(problem.distribution_type, n_samples)
    n_samples = max(n_samples, spec.min_samples)
    # A stream of its own: with the measured estimates' seed, the same estimator would draw the very
    # samples the reference was made of, and their difference would be exactly 0.
    with forked_rng(zlib.crc32(f"reference|{problem.id}|{seed}".encode())):
        draws = draw_estimates(spec.make(), problem, n_estimates, n_samples, device, dtype)
    finite = torch.isfinite(draws).all(-1)
    if int(finite.sum()) < 2:
        raise ValueError(f"the reference for {problem.id!r} from {spec.name} has {int(finite.sum())} finite "
                         f"estimates of {len(draws)}; pass another estimator")
    dropped = len(draws) - int(finite.sum())
    draws = draws[finite]
    mean = draws.double().mean(0)
    centred = draws - mean.to(draws.dtype)
    squared = (problem.gradient_map.squared_norms(centred) if problem.gradient_map is not None
               else centred.square().sum(-1)).double()
    trace = float(squared.sum()) / (len(draws) - 1)
    return Reference(mean.cpu(), math.sqrt(trace / len(draws)),
                     f"{spec.name}, mean of {len(draws)} estimates x {n_samples} samples"
                     + (f" ({dropped} non-finite left out)" if dropped else ""))
