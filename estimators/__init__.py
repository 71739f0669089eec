"""gradbench estimators: a registry of Monte Carlo gradient estimators following one contract.

    est = estimators.get(name, **hparams)                  # hyperparameters checked once, here
    surrogate = est(f, dist, num_samples=S)                # shape (S, *dist.batch_shape)
    surrogate.mean(0).sum().backward()                     # the gradient estimate lands in .grad

Importing the package registers every built-in estimator.
"""
from estimators.errors import NotApplicableError
from estimators.families import family_of
from estimators.hparams import HParam, HyperparameterError, at_least, greater_than, integer_at_least, interval, one_of
from estimators.registry import (
    REGISTRY,
    EstimatorSpec,
    UnknownEstimatorError,
    UnsupportedFamilyError,
    get,
    get_spec,
    list_estimators,
    register,
    unregister,
)

# Imported for their registrations.
from estimators import (  # noqa: E402,F401
    antithetic, control_variates, exact, group_baselines, gumbel_rao, implicit, measure_valued, pathwise, rebar,
    reinforce, reinmax, relaxed,
)

from estimators.registry import load_entry_points  # noqa: E402

# Estimators from installed plugins (entry-point group "gradbench.estimators"), after the built-ins.
PLUGINS = load_entry_points()

__all__ = [
    "REGISTRY", "EstimatorSpec", "NotApplicableError", "UnknownEstimatorError", "UnsupportedFamilyError",
    "family_of", "get", "get_spec", "list_estimators", "register", "unregister",
    "HParam", "HyperparameterError", "at_least", "greater_than", "integer_at_least", "interval", "one_of",
]
