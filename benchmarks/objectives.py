"""Toy objectives E_{z ~ p_theta}[f(z)] whose exact value and gradient are known.

Each objective knows its family, its evaluation point theta, the cost f, and E[f] in closed form
(or by enumerating the support) as a differentiable function of theta, so its exact gradient is
`torch.autograd.grad` of that closed form in float64: bias is measured, not guessed.

Parameters are passed as a dict of tensors with a leading axis of N copies of theta; the
distribution has batch shape (N,), so one backward pass through `surrogate.mean(0).sum()` yields N
independent gradient estimates (one per row).

References for the settings:
    Tucker, G. et al. (2017). REBAR. NeurIPS (toy: E[(b - t)^2], t = 0.45, 0.499).
    Grathwohl, W. et al. (2018). Backpropagation through the void (RELAX). ICLR (same toy).
    Dong, Z., Mnih, A., Tucker, G. (2020). DisARM. NeurIPS.
    Mohamed, S. et al. (2020). Monte Carlo gradient estimation in machine learning. JMLR 21(132),
    section 3 (Gaussian costs (x - k)^2, exp(-k x^2), cos(k x)).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable

import torch
import torch.distributions as D

from estimators.registry import _unknown, matching_names

Params = dict[str, torch.Tensor]


class UnknownObjectiveError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


@dataclasses.dataclass(frozen=True)
class Objective:
    """One toy problem. `point` is theta; `settings` are the constants recorded with every result."""

    id: str
    family: str
    description: str
    point: Callable[[], Params]
    make_distribution: Callable[[Params, bool], D.Distribution]
    cost: Callable[[torch.Tensor], torch.Tensor]
    expected_cost: Callable[[Params], torch.Tensor]
    settings: dict = dataclasses.field(default_factory=dict)

    def distribution(self, params: Params, validate_args: bool | None = None) -> D.Distribution:
        return self.make_distribution(params, validate_args)

    def batched_point(self, n: int, device="cpu", dtype=torch.float32) -> Params:
        """N copies of theta, each a leaf that requires grad: row i receives estimate i."""
        return {name: value.to(device=device, dtype=dtype).expand(n, *value.shape).clone().requires_grad_()
                for name, value in self.point().items()}

    def exact_gradient(self) -> torch.Tensor:
        """grad_theta E[f], flattened in the order of `point()`, in float64."""
        params = {name: value.to(torch.float64).requires_grad_() for name, value in self.point().items()}
        grads = torch.autograd.grad(self.expected_cost(params), list(params.values()))
        return torch.cat([g.reshape(-1) for g in grads])

    def exact_value(self) -> float:
        return float(self.expected_cost({k: v.to(torch.float64) for k, v in self.point().items()}))

    @property
    def n_params(self) -> int:
        return sum(v.numel() for v in self.point().values())

    @property
    def sample_numel(self) -> int:
        """Elements of one sample z (for sizing chunks)."""
        dist = self.distribution(self.batched_point(1), validate_args=False)
        return max(1, math.prod(dist.event_shape))

    def record(self) -> dict:
        """Everything needed to reproduce the objective: settings and the evaluation point."""
        return {**self.settings, "point": {k: v.tolist() for k, v in self.point().items()}}


OBJECTIVES: dict[str, Objective] = {}


def add(objective: Objective) -> Objective:
    if objective.id in OBJECTIVES:
        raise ValueError(f"objective {objective.id!r} is already defined")
    OBJECTIVES[objective.id] = objective
    return objective


def get_objective(objective_id: str) -> Objective:
    try:
        return OBJECTIVES[objective_id]
    except KeyError:
        raise UnknownObjectiveError(_unknown("objective", objective_id, list(OBJECTIVES))) from None


def list_objectives(patterns: list[str] | None = None) -> list[Objective]:
    if not patterns:
        return list(OBJECTIVES.values())
    return [OBJECTIVES[i] for i in matching_names(patterns, list(OBJECTIVES), UnknownObjectiveError, "objective")]


def _bits(params: Params, validate_args) -> D.Distribution:
    # Independent: the cost couples the bits, so one sample is the whole vector.
    return D.Independent(D.Bernoulli(logits=params["logits"], validate_args=validate_args), 1)


# --- Bernoulli: Tucker et al.'s toy ---------------------------------------------------------------

def tucker(t: float) -> Objective:
    """E[(b - t)^2], b ~ Bernoulli(sigmoid(theta)), theta = 0; exact gradient (1 - 2t) s (1 - s)."""

    def expected(params):
        s = torch.sigmoid(params["logits"]).squeeze(-1)
        return s * (1 - t) ** 2 + (1 - s) * t ** 2

    return Objective(
        id=f"tucker-{t}", family="bernoulli",
        description=f"E[(b - {t})^2], one Bernoulli bit with logit theta = 0 (Tucker et al. 2017)",
        point=lambda: {"logits": torch.zeros(1)},
        make_distribution=_bits,
        cost=lambda z: ((z - t) ** 2).sum(-1),
        expected_cost=expected,
        settings={"t": t, "theta": 0.0},
    )


# --- Bernoulli: 128-bit polynomial -----------------------------------------------------------------

def polynomial(p: float, bits: int = 128, target: float = 0.45) -> Objective:
    """mean_d |z_d - 0.45|^p over 128 independent bits at logits 0; per bit E = s 0.55^p + (1 - s) 0.45^p."""

    def expected(params):
        s = torch.sigmoid(params["logits"])
        return (s * (1 - target) ** p + (1 - s) * target ** p).mean(-1)

    return Objective(
        id=f"poly-{p:g}", family="bernoulli",
        description=f"mean over {bits} bits of |z_d - {target}|^{p:g}, logits 0",
        point=lambda: {"logits": torch.zeros(bits)},
        make_distribution=_bits,
        cost=lambda z: ((z - target).abs() ** p).mean(-1),
        expected_cost=expected,
        settings={"p": p, "bits": bits, "target": target, "theta": 0.0},
    )


# --- Categorical: random quadratic over one-hot vectors ---------------------------------------------

def quadratic(k: int, seed: int | None = None) -> Objective:
    """z'Az + b'z over one-hot z in R^K, A = Q'Q, Q, b, logits ~ N(0, I) from a seeded generator.

    Exact by enumerating the K states: E = sum_k softmax(logits)_k (A_kk + b_k). f accepts any point
    of the simplex, so relaxed samples are costed by the same quadratic form.
    """
    seed = k if seed is None else seed
    generator = torch.Generator().manual_seed(seed)
    q = torch.randn(k, k, generator=generator, dtype=torch.float64)
    a = q.T @ q
    b = torch.randn(k, generator=generator, dtype=torch.float64)
    logits = torch.randn(k, generator=generator, dtype=torch.float64)

    def cost(z):
        a_, b_ = a.to(z), b.to(z)
        return ((z @ a_) * z).sum(-1) + z @ b_  # z'Az; measured faster than einsum on CPU

    def expected(params):
        probs = torch.softmax(params["logits"], -1)
        return probs @ (torch.diagonal(a) + b).to(probs)

    return Objective(
        id=f"quadratic-{k}", family="categorical",
        description=f"z'Az + b'z over one-hot z, K = {k}, A = Q'Q, Q, b, logits ~ N(0, I), seed {seed}",
        point=lambda: {"logits": logits.clone()},
        make_distribution=lambda params, v: D.OneHotCategorical(logits=params["logits"], validate_args=v),
        cost=cost,
        expected_cost=expected,
        settings={"k": k, "seed": seed},
    )


# --- Normal: Gaussian costs of Mohamed et al. (2020) -------------------------------------------------

def _normal(params, validate_args):
    return D.Normal(params["mu"], params["sigma"], validate_args=validate_args)


def gaussian(kind: str, k: float, mu: float = 1.0, sigma: float = 1.0) -> Objective:
    """E[f(x)], x ~ N(mu, sigma^2) at mu = sigma = 1, gradient in (mu, sigma):

    square: E[(x - k)^2]   = (mu - k)^2 + sigma^2
    exp:    E[exp(-k x^2)] = exp(-k mu^2 / (1 + 2 k sigma^2)) / sqrt(1 + 2 k sigma^2)
    cos:    E[cos(k x)]    = cos(k mu) exp(-k^2 sigma^2 / 2)
    """
    costs = {
        "square": (lambda x: (x - k) ** 2,
                   lambda m, s: (m - k) ** 2 + s ** 2),
        "exp": (lambda x: torch.exp(-k * x ** 2),
                lambda m, s: torch.exp(-k * m ** 2 / (1 + 2 * k * s ** 2)) / torch.sqrt(1 + 2 * k * s ** 2)),
        "cos": (lambda x: torch.cos(k * x),
                lambda m, s: torch.cos(k * m) * torch.exp(-(k ** 2) * s ** 2 / 2)),
    }
    cost, closed_form = costs[kind]
    return Objective(
        id=f"gauss-{kind}-{k:g}", family="normal",
        description=f"E[{ {'square': f'(x - {k:g})^2', 'exp': f'exp(-{k:g} x^2)', 'cos': f'cos({k:g} x)'}[kind] }], "
                    f"x ~ N(mu, sigma^2) at mu = {mu:g}, sigma = {sigma:g}",
        point=lambda: {"mu": torch.tensor(mu), "sigma": torch.tensor(sigma)},
        make_distribution=_normal,
        cost=cost,
        expected_cost=lambda params: closed_form(params["mu"], params["sigma"]),
        settings={"kind": kind, "k": k, "mu": mu, "sigma": sigma},
    )


# --- Gamma, Beta, Dirichlet: reparameterised only implicitly -----------------------------------------

def gamma_square(k: float = 2.0, concentration: float = 3.0, rate: float = 2.0) -> Objective:
    """E[(x - k)^2], x ~ Gamma(alpha, beta) = alpha / beta^2 + (alpha / beta - k)^2, gradient in (alpha, beta)."""
    return Objective(
        id=f"gamma-square-{k:g}", family="gamma",
        description=f"E[(x - {k:g})^2], x ~ Gamma(concentration {concentration:g}, rate {rate:g})",
        point=lambda: {"concentration": torch.tensor(concentration), "rate": torch.tensor(rate)},
        make_distribution=lambda p, v: D.Gamma(p["concentration"], p["rate"], validate_args=v),
        cost=lambda x: (x - k) ** 2,
        expected_cost=lambda p: p["concentration"] / p["rate"] ** 2 + (p["concentration"] / p["rate"] - k) ** 2,
        settings={"k": k, "concentration": concentration, "rate": rate},
    )


def beta_square(k: float = 0.3, a: float = 2.0, b: float = 3.0) -> Objective:
    """E[(x - k)^2], x ~ Beta(a, b) = ab / ((a + b)^2 (a + b + 1)) + (a / (a + b) - k)^2."""

    def expected(p):
        a_, b_ = p["concentration1"], p["concentration0"]
        total = a_ + b_
        return a_ * b_ / (total ** 2 * (total + 1)) + (a_ / total - k) ** 2

    return Objective(
        id=f"beta-square-{k:g}", family="beta",
        description=f"E[(x - {k:g})^2], x ~ Beta({a:g}, {b:g})",
        point=lambda: {"concentration1": torch.tensor(a), "concentration0": torch.tensor(b)},
        make_distribution=lambda p, v: D.Beta(p["concentration1"], p["concentration0"], validate_args=v),
        cost=lambda x: (x - k) ** 2,
        expected_cost=expected,
        settings={"k": k, "a": a, "b": b},
    )


def dirichlet_quadratic(alpha=(1.0, 2.0, 3.0, 4.0)) -> Objective:
    """E[sum_k c_k x_k^2], x ~ Dirichlet(alpha), c_k = k; E[x_k^2] = alpha_k (alpha_k + 1) / (alpha_0 (alpha_0 + 1))."""
    weights = torch.arange(1, len(alpha) + 1, dtype=torch.float64)

    def expected(p):
        a = p["concentration"]
        total = a.sum(-1, keepdim=True)
        return (weights.to(a) * a * (a + 1) / (total * (total + 1))).sum(-1)

    return Objective(
        id=f"dirichlet-quadratic-{len(alpha)}", family="dirichlet",
        description=f"E[sum_k k x_k^2], x ~ Dirichlet({', '.join(f'{a:g}' for a in alpha)})",
        point=lambda: {"concentration": torch.tensor(alpha)},
        make_distribution=lambda p, v: D.Dirichlet(p["concentration"], validate_args=v),
        cost=lambda x: (weights.to(x) * x ** 2).sum(-1),
        expected_cost=expected,
        settings={"alpha": list(alpha), "weights": weights.tolist()},
    )


for _t in (0.45, 0.499):
    add(tucker(_t))
for _p in (1.5, 2.0, 3.0):
    add(polynomial(_p))
for _k in (4, 8, 12):
    add(quadratic(_k))
add(gaussian("square", 3.0))
add(gaussian("exp", 1.0))
add(gaussian("cos", 2.0))
add(gamma_square())
add(beta_square())
add(dirichlet_quadratic())
