"""Tasks: each module yields gradient problems (benchmarks.tasks.protocol) for the one harness.

    toys   closed-form toy problems at symmetric and off-centre points, registered by id
    reparameterisable   the AEVB paper's reparameterisable families (Exponential, Cauchy, Laplace,
           Student-t, Logistic, LogNormal) plus Uniform and Poisson, outside the default sweep
    vae    a trained VAE at a checkpoint, as a problem in its encoder's parameters
    sequences   an autoregressive (GRU) policy over token sequences with sparse, additive, non-additive and
           KL-penalised rewards, exact by enumeration, outside the default sweep (`--objectives 'seq-*'`)

Importing the package registers the toy problems.
"""
from benchmarks.tasks.protocol import (  # noqa: F401
    ClosedFormProblem, GradientMap, GradientProblem, InvalidPointError, Reference,
)
from benchmarks.tasks.registry import (  # noqa: F401
    FAMILIES, PROBLEMS, UnknownProblemError, get_problem, list_problems,
)
from benchmarks.tasks import toys  # noqa: E402,F401  (registers the toy problems)
from benchmarks.tasks import reparameterisable  # noqa: E402,F401  (AEVB's reparameterisable kinds, not in the default)
from benchmarks.tasks import sequences  # noqa: E402,F401  (sequence policies, not in the default)
from benchmarks.tasks.reference import estimated_reference, reference_estimator  # noqa: E402,F401
