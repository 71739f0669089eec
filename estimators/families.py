"""Distribution families, as the registry names them.

An estimator declares the families it supports by name. `Independent` is looked through, so
`Independent(Bernoulli(logits), 1)` (a vector of bits whose cost couples them) is a Bernoulli.
"""
from __future__ import annotations

import torch.distributions as D

# One name per torch class; `categorical_index` is torch's Categorical, whose integer samples
# cannot be relaxed onto the simplex (use OneHotCategorical for relaxed estimators).
FAMILY_BY_CLASS: dict[type, str] = {
    D.Bernoulli: "bernoulli",
    D.OneHotCategorical: "categorical",
    D.Categorical: "categorical_index",
    D.Normal: "normal",
    D.Gamma: "gamma",
    D.Beta: "beta",
    D.Dirichlet: "dirichlet",
    D.Laplace: "laplace",
    D.LogNormal: "lognormal",
}


def base_distribution(dist: D.Distribution) -> D.Distribution:
    """The distribution under any `Independent` wrappers."""
    while isinstance(dist, D.Independent):
        dist = dist.base_dist
    return dist


def family_of(dist: D.Distribution) -> str:
    base = base_distribution(dist)
    for cls in type(base).__mro__:
        if cls in FAMILY_BY_CLASS:
            return FAMILY_BY_CLASS[cls]
    return type(base).__name__.lower()
