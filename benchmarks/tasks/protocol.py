"""The gradient-problem protocol: what every task hands the harness.

A gradient problem is "a distribution with parameters theta, a cost f, and the gradient
grad_theta E_{z ~ p_theta}[f(z)] it is measured against":

    id, family, version      the versioned name (`tucker-0.45@theta=-2`) and torch family it measures
    point()                  the parameters at the evaluation point, a dict of tensors
    distribution(params, v)  the distribution from *batched* parameters (a leading axis of N copies)
    cost_for(dist)           the cost f(z) -> (S, *batch) for samples of that distribution
    deterministic_cost(p)    an optional term of the objective that needs no sampling (a VAE's
                             analytic KL), added to the surrogate before differentiating
    batch_mean               the cost of a data batch is averaged over it (a minibatch loss), not summed
    reference()              the gradient to measure against, its standard error and how it was made
    gradient_map             optional: the map from a gradient in theta to the parameters the user
                             cares about (a VAE's encoder weights), applied through Gram matrices

The harness expands the point to an (N, ...) leaf, so one backward pass of the surrogate yields N
independent estimates, and `benchmarks.metrics.gradient_metrics` turns them into the same figures
for every task. A user's own model is measured through the same protocol: build a
`GradientProblem` with a reference from `estimated_reference` (or a closed form) and call
`benchmarks.measure`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import re
from typing import Callable, Protocol

import torch
import torch.distributions as D

from estimators.errors import NotApplicableError
from estimators.families import base_distribution

Params = dict[str, torch.Tensor]


@dataclasses.dataclass(frozen=True)
class Reference:
    """The gradient a problem's estimates are compared with.

    `gradient` is flat, float64, in the order of `point()`. `standard_error` is
    sqrt(E||g_ref - g_true||^2) in the space the metrics are computed in (after the gradient map, if
    any): 0 for a closed form or an enumeration, sqrt(trace Cov / M) for the mean of M estimates.
    `value` is E[f] at the point, where it is known exactly."""

    gradient: torch.Tensor
    standard_error: float
    method: str
    value: float | None = None


class GradientMap(Protocol):
    """A linear map J^T from gradients in the distribution's parameters to the user's parameters.

    Only inner products of mapped vectors are needed: `gram(v)` returns the (M, M) matrix
    <J^T v_i, J^T v_j> for M flat vectors v (rows), and `squared_norms(v)` its diagonal, without
    forming parameter-sized vectors."""

    def gram(self, vectors: torch.Tensor) -> torch.Tensor: ...

    def squared_norms(self, vectors: torch.Tensor) -> torch.Tensor: ...


class InvalidPointError(ValueError):
    """An evaluation point outside its family's support (negative sigma, a probability outside (0, 1))."""


@dataclasses.dataclass(frozen=True, eq=False)
class GradientProblem:
    """One gradient problem. Subclasses override `reference` (and `cost_for`, `deterministic_cost`)."""

    id: str
    family: str
    description: str
    point: Callable[[], Params]
    make_distribution: Callable[[Params, bool | None], D.Distribution]
    cost: Callable[[torch.Tensor], torch.Tensor] | None = None
    settings: dict = dataclasses.field(default_factory=dict)
    version: int = 1
    eval_point: str = ""
    reference_fn: Callable[[], Reference] | None = None
    gradient_map: GradientMap | None = None
    # The distribution's batch shape beyond the estimates' axis is a data batch whose costs are averaged
    # (a training loss over a minibatch) rather than summed.
    batch_mean: bool = False

    def distribution(self, params: Params, validate_args: bool | None = None) -> D.Distribution:
        return self.make_distribution(params, validate_args)

    def cost_for(self, dist: D.Distribution) -> Callable[[torch.Tensor], torch.Tensor]:
        """f for samples of `dist` (a cost that reads the distribution, e.g. log q(z), overrides this)."""
        return self.cost

    def deterministic_cost(self, params: Params) -> torch.Tensor | None:
        return None

    def estimates_per_chunk(self, n_samples: int, device: str) -> int | None:
        """Estimates per vectorised chunk, for a problem whose cost is much heavier per sample element
        than a toy's (a decoder network); None: the harness sizes chunks by sample elements."""
        return None

    def reference(self) -> Reference:
        if self.reference_fn is None:
            raise NotImplementedError(f"problem {self.id!r} has no reference gradient; give reference_fn, e.g. "
                                      "functools.partial(estimated_reference, problem)")
        return _cached_reference(self)

    def with_estimated_reference(self, n_estimates: int = 20_000, n_samples: int = 10, estimator: str | None = None,
                                 seed: int = 0) -> "GradientProblem":
        """This problem with a reference estimated (once, when first needed) from n_estimates estimates of
        n_samples samples each, by `estimator` or the unbiased estimator the registry's metadata picks."""
        from benchmarks.tasks.reference import estimated_reference  # it draws through the harness

        def reference() -> Reference:
            return estimated_reference(problem, n_estimates, n_samples, estimator, seed)

        problem = dataclasses.replace(self, reference_fn=reference)
        return problem

    def batched_point(self, n: int, device="cpu", dtype=torch.float32) -> Params:
        """N copies of theta, each a leaf that requires grad: row i receives estimate i."""
        return {name: value.to(device=device, dtype=dtype).expand(n, *value.shape).clone().requires_grad_()
                for name, value in self.point().items()}

    def exact_gradient(self) -> torch.Tensor:
        return self.reference().gradient

    def exact_value(self) -> float:
        value = self.reference().value
        return math.nan if value is None else value

    @property
    def n_params(self) -> int:
        return sum(v.numel() for v in self.point().values())

    @property
    def distribution_type(self) -> type:
        """The torch class of the distribution (under any Independent): what estimators' capabilities
        (has_rsample, log_prob) are read from."""
        return type(base_distribution(self.distribution(self.batched_point(1), validate_args=False)))

    @property
    def support_size(self) -> int | None:
        """How many values one sample can take, for a Bernoulli or one-hot categorical event (what an
        enumeration visits); None for other families."""
        from estimators.exact import support_size  # the count lives with the enumeration

        try:
            return support_size(self.distribution(self.batched_point(1), validate_args=False))[0]
        except NotApplicableError:
            return None

    @property
    def sample_numel(self) -> int:
        """Elements of one sample z (for sizing chunks)."""
        dist = self.distribution(self.batched_point(1), validate_args=False)
        return max(1, math.prod(dist.batch_shape[1:]) * math.prod(dist.event_shape))

    def record(self) -> dict:
        """Everything needed to reproduce the problem: settings and the evaluation point."""
        return {**self.settings, "point": {k: v.tolist() for k, v in self.point().items()}}


@contextlib.contextmanager
def forked_rng(seed: int):
    """Seed torch's generators inside the block and restore every one of them (CPU and each CUDA
    device: torch.manual_seed seeds them all) afterwards."""
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


@functools.lru_cache(maxsize=256)
def _cached_reference(problem: GradientProblem) -> Reference:
    # Problems are immutable and hashed by identity, so a reference is computed once per problem.
    return problem.reference_fn()


@dataclasses.dataclass(frozen=True, eq=False)
class ClosedFormProblem(GradientProblem):
    """A problem with E[f] in closed form (or by enumerating the support) as a differentiable
    function of theta: its exact gradient is `torch.autograd.grad` of that function in float64."""

    expected_cost: Callable[[Params], torch.Tensor] | None = None
    reference_method: str = "closed form"

    def reference(self) -> Reference:
        return _closed_form_reference(self)


@functools.lru_cache(maxsize=256)
def _closed_form_reference(problem: ClosedFormProblem) -> Reference:
    params = {name: value.to(torch.float64).requires_grad_() for name, value in problem.point().items()}
    value = problem.expected_cost(params)
    grads = torch.autograd.grad(value, list(params.values()))
    return Reference(torch.cat([g.reshape(-1) for g in grads]).detach(), 0.0, problem.reference_method, float(value.detach()))


def check_in_support(problem: GradientProblem) -> GradientProblem:
    """Build the distribution at the point with torch's argument checks on; a value outside the
    family's support raises InvalidPointError naming the parameter, its constraint and the value."""
    params = {k: v.to(torch.float64) for k, v in problem.point().items()}
    for name, value in params.items():
        if not torch.isfinite(value).all():
            raise InvalidPointError(f"point {problem.id!r}: {name} = {value.tolist()} is not finite")
    try:
        problem.distribution({k: v.unsqueeze(0) for k, v in params.items()}, validate_args=True)
    except ValueError as error:
        given = f" (the point gives {problem.eval_point})" if problem.eval_point else ""
        raise InvalidPointError(f"point {problem.id!r} is outside the {problem.family} family's support: "
                                f"{constraint_message(error)}{given}") from None
    return problem


def readable_constraint(constraint: str) -> str:
    """'GreaterThan(lower_bound=0.0)' as '> 0', 'Interval(lower_bound=0.0, upper_bound=1.0)' as 'in [0, 1]';
    a constraint not listed here as torch writes it."""
    kind = constraint.split("(", 1)[0]
    if kind == "IndependentConstraint":  # every coordinate alike: the inner constraint says it
        return readable_constraint(constraint.split("(", 1)[1].rsplit(",", 1)[0])
    bounds = re.findall(r"_bound=(?:tensor\(\[)?([-+0-9.e]+)", constraint)  # a number, or a 1-element tensor
    forms = {"GreaterThan": "> {}", "GreaterThanEq": ">= {}", "LessThan": "< {}", "Interval": "in [{}, {}]",
             "HalfOpenInterval": "in [{}, {})"}
    if kind in forms and len(bounds) == forms[kind].count("{}"):
        return forms[kind].format(*(f"{float(b):g}" for b in bounds))
    return f"within {constraint}"


def constraint_message(error: ValueError) -> str:
    # torch's message: "Expected parameter scale (Tensor of shape ...) of distribution Normal(...) to
    # satisfy the constraint GreaterThan(lower_bound=0.0), but found invalid values: ..."
    text = str(error)
    if "to satisfy the constraint" in text:
        name = text.split("Expected parameter ", 1)[-1].split(" ", 1)[0]
        constraint = text.split("to satisfy the constraint ", 1)[1].split(", but found", 1)[0]
        return f"its {name} must be {readable_constraint(constraint)}"
    return text.splitlines()[0]
