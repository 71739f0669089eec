"""gradbench estimators: a registry of Monte Carlo gradient estimators following one contract.

    surrogate = est(f, dist, num_samples=S, **hparams)    # shape (S, *dist.batch_shape)
    surrogate.mean(0).sum().backward()                     # the gradient estimate lands in .grad

Importing the package registers every built-in estimator.
"""
from estimators.errors import NotApplicableError
from estimators.families import family_of
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
    antithetic, control_variates, exact, gumbel_rao, implicit, measure_valued, pathwise, rebar, reinforce, reinmax,
    relaxed,
)

__all__ = [
    "REGISTRY", "EstimatorSpec", "NotApplicableError", "UnknownEstimatorError", "UnsupportedFamilyError",
    "family_of", "get", "get_spec", "list_estimators", "register", "unregister",
]
