"""The exact gradient by enumerating a small discrete support; the reference the others are held to.

    E[f(z)] = sum_{c in support} p_theta(c) f(c)  =>  the surrogate's gradient is exact.

Bernoulli bits and one-hot categoricals (possibly under `Independent`) are enumerated jointly, so a
cost that couples the coordinates is handled. The support must have at most 2^14 configurations. Its cost is one f-evaluation per configuration
(`f_evals_per_state`), whatever S: every "sample" of its surrogate is the same exact expectation.
"""
from __future__ import annotations

import itertools
import math

import torch

from estimators.errors import NotApplicableError
from estimators.families import base_distribution, family_of
from estimators.registry import register

MAX_CONFIGURATIONS = 2 ** 14


def support_size(dist) -> tuple[int, int, int]:
    """(configurations, values per site, sites) of a Bernoulli or one-hot categorical event; the number
    of states `exact` enumerates, hence of cost evaluations behind its estimate."""
    family = family_of(dist)
    event_shape = dist.event_shape
    if family == "bernoulli":
        values_per_site, sites = 2, math.prod(event_shape)
    elif family == "categorical":
        values_per_site, sites = event_shape[-1], math.prod(event_shape[:-1])
    else:
        raise NotApplicableError(f"exact enumerates Bernoulli and one-hot categorical supports, got {family!r}")
    return values_per_site ** sites, values_per_site, sites


def joint_support(dist) -> torch.Tensor:
    """Every value of the event, shaped (C, *event_shape), for Bernoulli or one-hot categorical."""
    count, values_per_site, sites = support_size(dist)
    family = family_of(dist)
    base = base_distribution(dist)
    event_shape = dist.event_shape
    if count > MAX_CONFIGURATIONS:
        raise NotApplicableError(
            f"exact would enumerate {values_per_site}^{sites} configurations, more than 2^14 = "
            f"{MAX_CONFIGURATIONS}; use a sampling estimator")
    codes = torch.tensor(list(itertools.product(range(values_per_site), repeat=sites)),
                         device=base.logits.device).reshape(count, sites)
    if family == "bernoulli":
        return codes.to(base.logits.dtype).reshape(count, *event_shape)
    classes = torch.arange(values_per_site, device=codes.device)
    return (codes.unsqueeze(-1) == classes).to(base.logits.dtype).reshape(count, *event_shape)


@register(
    "exact",
    families=("bernoulli", "categorical"),
    unbiased=True,
    f_evals=0,
    f_evals_per_state=1,
    is_reference=True,
    summary="exact expectation by enumerating the support (reference, at most 2^14 configurations)",
    reference="-",
)
def exact(f, dist, num_samples: int = 1) -> torch.Tensor:
    """surrogate_s = sum_c p(c) f(c) for every s: the exact expected cost and its exact gradient."""
    support = joint_support(dist)
    shape = (support.shape[0], *dist.batch_shape, *dist.event_shape)
    configurations = support.reshape(support.shape[0], *([1] * len(dist.batch_shape)), *dist.event_shape)
    configurations = configurations.expand(shape)
    expected = (dist.log_prob(configurations).exp() * f(configurations)).sum(0)
    return expected.expand(num_samples, *expected.shape)
