"""The registered problems' ids without building them (the problems hold torch tensors: registering them imports
torch, 1.4 s here), so that a mistyped `--objectives` (variance) or `--problems` (trajectory) is refused right after
parsing, like any other argument error, with the registry's message.

The ids are written out below; tests/test_cli.py keeps them equal to benchmarks.tasks.registry's and prints the
lines to paste here when a family or a point is added. Plugins (`--import`, installed entry points) may register
problems of their own: with any of them the registry decides, later. A point of a family that is not registered
(`tucker-0.45@theta=0.7`) is checked here for its family only; the family checks the point itself.
"""
from __future__ import annotations

import fnmatch
import importlib.metadata
import sys

from benchmarks.estimator_names import ENTRY_POINT_GROUP, unknown_name_message

# benchmarks.tasks.registry.FAMILIES, in registration order
FAMILIES = (
    'tucker-0.45', 'tucker-0.499', 'tucker-0.49', 'tucker-0.501', 'tucker-0.51', 'poly-1.5', 'poly-2', 'poly-3',
    'quadratic-4', 'quadratic-8', 'quadratic-12', 'gauss-square-3', 'gauss-exp-1', 'gauss-cos-2',
    'gamma-square-2', 'beta-square-0.3', 'dirichlet-quadratic-4', 'exponential-square-8', 'cauchy-lorentz-1',
    'laplace-square-3', 'studentt-cos-1', 'logistic-square-3', 'lognormal-square-3', 'uniform-square-1',
    'poisson-exp-1', 'seq-sparse', 'seq-count', 'seq-modsum', 'seq-kl',
)

# benchmarks.tasks.registry.PROBLEMS: every registered point
PROBLEMS = (
    'tucker-0.45', 'tucker-0.45@theta=-2', 'tucker-0.45@theta=1', 'tucker-0.499', 'tucker-0.499@theta=-2',
    'tucker-0.49', 'tucker-0.501', 'tucker-0.51', 'poly-1.5', 'poly-2', 'poly-2@logits=-3..3', 'poly-3',
    'quadratic-4', 'quadratic-4@scale=3', 'quadratic-8', 'quadratic-8@scale=2', 'quadratic-12',
    'quadratic-12@scale=1.5', 'gauss-square-3', 'gauss-square-3@mu=-0.5,sigma=0.5', 'gauss-exp-1',
    'gauss-exp-1@mu=-0.5,sigma=0.5', 'gauss-cos-2', 'gauss-cos-2@mu=-0.5,sigma=0.5', 'gamma-square-2',
    'gamma-square-2@concentration=0.5,rate=1', 'beta-square-0.3', 'beta-square-0.3@a=0.5,b=4',
    'dirichlet-quadratic-4', 'dirichlet-quadratic-4@alpha=[0.3,0.5,2,5]', 'exponential-square-8',
    'exponential-square-8@rate=2', 'cauchy-lorentz-1', 'cauchy-lorentz-1@loc=0.5,scale=0.5', 'laplace-square-3',
    'laplace-square-3@loc=-0.5,scale=0.5', 'studentt-cos-1', 'studentt-cos-1@loc=-0.5,scale=0.5',
    'logistic-square-3', 'logistic-square-3@loc=-0.5,scale=0.5', 'lognormal-square-3',
    'lognormal-square-3@mu=-0.5,sigma=0.4', 'uniform-square-1', 'uniform-square-1@low=-0.5,high=2',
    'poisson-exp-1', 'poisson-exp-1@rate=4', 'seq-sparse', 'seq-sparse@steps=10', 'seq-count',
    'seq-count@steps=10', 'seq-modsum', 'seq-modsum@steps=10', 'seq-kl',
)

# benchmarks.tasks.registry.ALIASES: the explicit form of each symmetric point
ALIASES = (
    'tucker-0.45@theta=0', 'tucker-0.499@theta=0', 'tucker-0.49@theta=0', 'tucker-0.501@theta=0',
    'tucker-0.51@theta=0', 'poly-1.5@logits=0', 'poly-2@logits=0', 'poly-3@logits=0', 'quadratic-4@scale=1',
    'quadratic-8@scale=1', 'quadratic-12@scale=1', 'gauss-square-3@mu=1,sigma=1', 'gauss-exp-1@mu=1,sigma=1',
    'gauss-cos-2@mu=1,sigma=1', 'gamma-square-2@concentration=3,rate=2', 'beta-square-0.3@a=2,b=3',
    'dirichlet-quadratic-4@alpha=[1,2,3,4]', 'exponential-square-8@rate=1', 'cauchy-lorentz-1@loc=0,scale=1',
    'laplace-square-3@loc=0,scale=1', 'studentt-cos-1@loc=0,scale=1', 'logistic-square-3@loc=0,scale=1',
    'lognormal-square-3@mu=0,sigma=0.25', 'uniform-square-1@low=0,high=1', 'poisson-exp-1@rate=1',
    'seq-sparse@steps=0', 'seq-count@steps=0', 'seq-modsum@steps=0', 'seq-kl@steps=10',
)


def unknown_problem_messages(patterns: list[str] | None, imports: list[str]) -> list[str]:
    """The registry's message for each pattern that names no registered problem (benchmarks.tasks.registry's
    list_problems, which raises the first of them), where that is known without torch: none when other problems
    may exist (--import, an installed entry point, or the registry already imported here)."""
    if not patterns or imports or "benchmarks.tasks.registry" in sys.modules \
            or importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        return []
    return [message for message in map(problem_message, patterns) if message]


POINT_HINT = ". A point of a family is written '<family>@key=value', e.g. 'tucker-0.45@theta=-2'"


def problem_message(pattern: str) -> str | None:
    """What list_problems([pattern]) says when it refuses a pattern it can refuse without building a point
    (tests/test_cli.py compares the two); None for a pattern it takes, or one whose point the family checks."""
    if any(fnmatch.fnmatchcase(name, pattern) for name in PROBLEMS + ALIASES):
        return None
    family, at, point = pattern.partition("@")
    if not at or any(c in pattern for c in "*?"):  # a name or a glob: matched against the registered ids
        return unknown_name_message("problem", pattern, list(PROBLEMS))
    if not point:
        return unknown_name_message("problem", pattern, list(PROBLEMS)) + POINT_HINT
    if family not in FAMILIES:
        return unknown_name_message("problem family", family, list(FAMILIES))
    return None
