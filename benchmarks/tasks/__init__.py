"""Tasks: each module yields gradient problems (benchmarks.tasks.protocol) for the one harness.

    toys   closed-form toy problems at symmetric and off-centre points, registered by id
    vae    a trained VAE at a checkpoint, as a problem in its encoder's parameters

Importing the package registers the toy problems.
"""
from benchmarks.tasks.protocol import (  # noqa: F401
    ClosedFormProblem, GradientMap, GradientProblem, InvalidPointError, Reference,
)
from benchmarks.tasks.registry import (  # noqa: F401
    FAMILIES, PROBLEMS, UnknownProblemError, get_problem, list_problems,
)
from benchmarks.tasks import toys  # noqa: E402,F401  (registers the toy problems)
from benchmarks.tasks.reference import estimated_reference, reference_estimator  # noqa: E402,F401
