"""The exact gradient by enumerating a small discrete support; the reference the others are held to.

    E[f(z)] = sum_{c in support} p_theta(c) f(c)  =>  the surrogate's gradient is exact.

Bernoulli bits and one-hot categoricals (possibly under `Independent`) are enumerated jointly, so a
cost that couples the coordinates is handled. The support must have at most 2^14 configurations.
"""
from __future__ import annotations

import itertools
import math

import torch

from estimators.errors import NotApplicableError, check_num_samples
from estimators.families import base_distribution, family_of
from estimators.registry import register

MAX_CONFIGURATIONS = 2 ** 14


def joint_support(dist) -> torch.Tensor:
    """Every value of the event, shaped (C, *event_shape), for Bernoulli or one-hot categorical."""
    family = family_of(dist)
    base = base_distribution(dist)
    event_shape = dist.event_shape
    if family == "bernoulli":
        values_per_site, sites = 2, math.prod(event_shape)
    elif family == "categorical":
        values_per_site, sites = event_shape[-1], math.prod(event_shape[:-1])
    else:
        raise NotApplicableError(f"exact enumerates Bernoulli and one-hot categorical supports, got {family!r}")
    count = values_per_site ** sites
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
    is_reference=True,
    summary="exact expectation by enumerating the support (reference, at most 2^14 configurations)",
    reference="-",
)
def exact(f, dist, num_samples: int = 1) -> torch.Tensor:
    """surrogate_s = sum_c p(c) f(c) for every s: the exact expected cost and its exact gradient."""
    check_num_samples(num_samples, 1, "exact")
    support = joint_support(dist)
    shape = (support.shape[0], *dist.batch_shape, *dist.event_shape)
    configurations = support.reshape(support.shape[0], *([1] * len(dist.batch_shape)), *dist.event_shape)
    configurations = configurations.expand(shape)
    expected = (dist.log_prob(configurations).exp() * f(configurations)).sum(0)
    return expected.expand(num_samples, *expected.shape)
