"""Distribution families, as the registry names them.

An estimator declares the families it supports by name. `Independent` is looked through, so
`Independent(Bernoulli(logits), 1)` (a vector of bits whose cost couples them) is a Bernoulli.
"""
from __future__ import annotations

import torch.distributions as D
from torch.distributions import constraints

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
    D.Exponential: "exponential",
    D.Cauchy: "cauchy",
    D.StudentT: "studentt",
    D.Uniform: "uniform",
    D.Poisson: "poisson",
}


# Families of distributions defined outside torch (a task's own, such as benchmarks.tasks.autoregressive's
# sequence policy) join with register_family; estimators name them in `families` like any other.
# A class there may relax its own sampling path: `relaxed_sample(num_samples, kind, tau)` (see
# estimators.relaxed), which is what the relaxed estimators that list its family call.


def register_family(cls: type, name: str) -> None:
    """Name a distribution class that torch does not ship (a task's own) as a family. A name already given
    to another class, or a class already named otherwise, is an error (a module imported again replaces its
    own class)."""
    if not (isinstance(cls, type) and issubclass(cls, D.Distribution)):
        raise TypeError(f"register_family needs a torch.distributions.Distribution subclass, got {cls!r}")
    for known, known_name in list(FAMILY_BY_CLASS.items()):
        same_class = (known.__module__, known.__qualname__) == (cls.__module__, cls.__qualname__)
        if known_name == name and not same_class:
            raise ValueError(f"family name {name!r} is already taken by {known.__qualname__}; pick another name")
        if same_class and known_name != name:
            raise ValueError(f"{cls.__qualname__} is already registered as family {known_name!r}")
        if same_class:
            del FAMILY_BY_CLASS[known]
    FAMILY_BY_CLASS[cls] = name


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


# --- Capabilities: what an estimator may declare it needs instead of listing families ---------------

def _overrides(cls: type, method: str) -> bool:
    return getattr(cls, method, None) is not getattr(D.Distribution, method)


def _support_moves_with_parameters(cls: type) -> bool:
    """True when the support is a continuous set that depends on the parameters (Uniform(low, high),
    Pareto): there the score-function identity misses the boundary term and REINFORCE is biased. A
    discrete support that depends only on a size (Categorical's number of classes) does not count."""
    support = getattr(cls, "support", None)
    if not constraints.is_dependent(support):
        return False
    try:
        return not support.is_discrete
    except NotImplementedError:  # declared without is_discrete: assume the worst
        return True


def has_rsample(cls: type) -> bool:
    """Reparameterised sampling: torch's `has_rsample` (location-scale, inverse CDF, implicit, transformed)."""
    return bool(getattr(cls, "has_rsample", False))


def has_log_density(cls: type) -> bool:
    """`sample` and `log_prob`, on a support that does not move with the parameters."""
    samples = _overrides(cls, "sample") or _overrides(cls, "rsample")
    return samples and _overrides(cls, "log_prob") and not _support_moves_with_parameters(cls)


def has_relaxable_support(cls: type) -> bool:
    """A discrete support with a continuous relaxation: Bernoulli bits (the binary Concrete on [0, 1]) and
    one-hot categoricals (the Concrete on the simplex). Not torch's integer Categorical: its samples are
    not points of the simplex."""
    return issubclass(cls, (D.Bernoulli, D.OneHotCategorical))


CAPABILITIES = {
    "rsample": has_rsample,
    "log_prob": has_log_density,
    "relaxable": has_relaxable_support,
}
CAPABILITY_TEXT = {
    "rsample": "reparameterised sampling (has_rsample)",
    "log_prob": "sample and log_prob on a support that does not move with the parameters",
    "relaxable": "a discrete support it can relax (Bernoulli, OneHotCategorical)",
}


def distribution_class(target) -> type | None:
    """The torch class behind a distribution instance, a class, or a family name (None if unknown)."""
    if isinstance(target, D.Distribution):
        return type(base_distribution(target))
    if isinstance(target, type):
        return target
    for cls, name in FAMILY_BY_CLASS.items():
        if name == target:
            return cls
    return None


def family_name(target) -> str:
    """The family name of a distribution instance, a class, or a family name."""
    if isinstance(target, D.Distribution):
        return family_of(target)
    if isinstance(target, type):
        for cls in target.__mro__:
            if cls in FAMILY_BY_CLASS:
                return FAMILY_BY_CLASS[cls]
        return target.__name__.lower()
    return str(target)
