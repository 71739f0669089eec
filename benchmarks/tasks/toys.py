"""Toy problems E_{z ~ p_theta}[f(z)] whose exact value and gradient are known, at several points.

Each family knows its cost f and E[f] in closed form (or by enumerating the support) as a
differentiable function of theta, so its exact gradient is `torch.autograd.grad` of that closed
form in float64: bias is measured, not guessed. Each is measured at its historical symmetric point
(bare id, e.g. `tucker-0.45`) and at off-centre points (`tucker-0.45@theta=-2`): at logit 0 or
sigma 1 estimators degenerate (DisARM's variance on Tucker's toy at theta = 0 is exactly 0) and
several kinds of mistake cancel, while training moves theta away from there (the REBAR, RELAX and
ARM toy trajectories run theta towards -3..3).

Parameters are passed as a dict of tensors with a leading axis of N copies of theta; the
distribution has batch shape (N,), so one backward pass through `surrogate.mean(0).sum()` yields N
independent gradient estimates (one per row).

References for the settings:
    Tucker, G. et al. (2017). REBAR. NeurIPS (toy: E[(b - t)^2], t = 0.45, 0.499).
    Grathwohl, W. et al. (2018). Backpropagation through the void (RELAX). ICLR (same toy, Fig. 1).
    Yin, M., Zhou, M. (2019). ARM. ICLR (the toy's logit trajectories).
    Dong, Z., Mnih, A., Tucker, G. (2020). DisARM. NeurIPS.
    Mohamed, S. et al. (2020). Monte Carlo gradient estimation in machine learning. JMLR 21(132),
    section 3 (Gaussian costs (x - k)^2, exp(-k x^2), cos(k x)).
"""
from __future__ import annotations

import functools
import math

import torch
import torch.distributions as D

from benchmarks.tasks.protocol import ClosedFormProblem, InvalidPointError, Params
from benchmarks.tasks.registry import ProblemFamily, Span, add_family, format_value, point_id


def _bits(params: Params, validate_args) -> D.Distribution:
    # Independent: the cost couples the bits, so one sample is the whole vector.
    return D.Independent(D.Bernoulli(logits=params["logits"], validate_args=validate_args), 1)


# --- Bernoulli: Tucker et al.'s toy ---------------------------------------------------------------

def tucker(t: float, theta: float = 0.0, p: float | None = None) -> ClosedFormProblem:
    """E[(b - t)^2], b ~ Bernoulli(s), s = sigmoid(theta); exact gradient (1 - 2t) s (1 - s).

    The point is the logit theta, or the probability p = sigmoid(theta)."""
    family_id = f"tucker-{t}"
    point = {"theta": theta} if p is None else {"p": p}
    if p is not None:
        if not 0.0 < p < 1.0:
            raise InvalidPointError(f"point {family_id}@p={p:g}: p is the probability of b = 1 and must lie in "
                                    "(0, 1); or give the logit, e.g. @theta=-2")
        theta = math.log(p / (1 - p))
    problem_id, text = point_id(family_id, point, {"theta": 0.0})

    def expected(params):
        s = torch.sigmoid(params["logits"]).squeeze(-1)
        return s * (1 - t) ** 2 + (1 - s) * t ** 2

    return ClosedFormProblem(
        id=problem_id, family="bernoulli", eval_point=text,
        description=f"E[(b - {t})^2], one Bernoulli bit with logit theta = {theta:g} (Tucker et al. 2017)",
        point=lambda: {"logits": torch.tensor([theta])},
        make_distribution=_bits,
        cost=lambda z: ((z - t) ** 2).sum(-1),
        expected_cost=expected,
        # inf over theta: s -> 0 (t < 1/2) or s -> 1, the loss of a trajectory's end
        settings={"t": t, "theta": theta, "infimum": min(t ** 2, (1 - t) ** 2)},
    )



# --- Bernoulli: 128-bit polynomial -----------------------------------------------------------------

def polynomial(p: float, bits: int = 128, target: float = 0.45, logits: float | Span = 0.0) -> ClosedFormProblem:
    """mean_d |z_d - 0.45|^p over 128 independent bits; per bit E = s 0.55^p + (1 - s) 0.45^p.

    The point: one logit for every bit, or a range lo..hi spread evenly over the bits (mixed signs)."""
    family_id = f"poly-{p:g}"
    problem_id, text = point_id(family_id, {"logits": logits}, {"logits": 0.0})
    values = (torch.linspace(logits.lo, logits.hi, bits) if isinstance(logits, Span)
              else torch.full((bits,), float(logits)))

    def expected(params):
        s = torch.sigmoid(params["logits"])
        return (s * (1 - target) ** p + (1 - s) * target ** p).mean(-1)

    settings = {"p": p, "bits": bits, "target": target, "theta": 0.0} if logits == 0.0 else \
        {"p": p, "bits": bits, "target": target, "logits": str(logits)}
    return ClosedFormProblem(
        id=problem_id, family="bernoulli", eval_point=text,
        description=f"mean over {bits} bits of |z_d - {target}|^{p:g}, logits {format_value(logits)}",
        point=lambda: {"logits": values.clone()},
        make_distribution=_bits,
        cost=lambda z: ((z - target).abs() ** p).mean(-1),
        expected_cost=expected,
        settings=settings,
    )


# --- Categorical: random quadratic over one-hot vectors ---------------------------------------------

def quadratic(k: int, seed: int | None = None, scale: float = 1.0) -> ClosedFormProblem:
    """z'Az + b'z over one-hot z in R^K, A = Q'Q, Q, b, logits ~ N(0, I) from a seeded generator.

    Exact by enumerating the K states: E = sum_k softmax(logits)_k (A_kk + b_k). f accepts any point
    of the simplex, so relaxed samples are costed by the same quadratic form. The point multiplies
    the seeded logits by `scale`: 3 makes the distribution peaked (most mass on one or two states),
    where the rare states' gradients are hard to estimate."""
    seed = k if seed is None else seed
    generator = torch.Generator().manual_seed(seed)
    q = torch.randn(k, k, generator=generator, dtype=torch.float64)
    a = q.T @ q
    b = torch.randn(k, generator=generator, dtype=torch.float64)
    logits = scale * torch.randn(k, generator=generator, dtype=torch.float64)
    problem_id, text = point_id(f"quadratic-{k}", {"scale": scale}, {"scale": 1.0})

    def cost(z):
        a_, b_ = a.to(z), b.to(z)
        return ((z @ a_) * z).sum(-1) + z @ b_  # z'Az; measured faster than einsum on CPU

    def expected(params):
        probs = torch.softmax(params["logits"], -1)
        return probs @ (torch.diagonal(a) + b).to(probs)

    return ClosedFormProblem(
        id=problem_id, family="categorical", eval_point=text, reference_method="enumeration",
        description=f"z'Az + b'z over one-hot z, K = {k}, A = Q'Q, Q, b, logits ~ N(0, I) x {scale:g}, seed {seed}",
        point=lambda: {"logits": logits.clone()},
        make_distribution=lambda params, v: D.OneHotCategorical(logits=params["logits"], validate_args=v),
        cost=cost,
        expected_cost=expected,
        settings={"k": k, "seed": seed} if scale == 1.0 else {"k": k, "seed": seed, "scale": scale},
    )


# --- Normal: Gaussian costs of Mohamed et al. (2020) -------------------------------------------------

def _normal(params, validate_args):
    return D.Normal(params["mu"], params["sigma"], validate_args=validate_args)


GAUSSIAN_COSTS = {
    # kind: (f, E[f] in (mu, sigma), f written out)
    "square": (lambda k: lambda x: (x - k) ** 2, lambda k, m, s: (m - k) ** 2 + s ** 2, "(x - {k})^2"),
    "exp": (lambda k: lambda x: torch.exp(-k * x ** 2),
            lambda k, m, s: torch.exp(-k * m ** 2 / (1 + 2 * k * s ** 2)) / torch.sqrt(1 + 2 * k * s ** 2),
            "exp(-{k} x^2)"),
    "cos": (lambda k: lambda x: torch.cos(k * x), lambda k, m, s: torch.cos(k * m) * torch.exp(-(k ** 2) * s ** 2 / 2),
            "cos({k} x)"),
}


def gaussian(kind: str, k: float, mu: float = 1.0, sigma: float = 1.0) -> ClosedFormProblem:
    """E[f(x)], x ~ N(mu, sigma^2), gradient in (mu, sigma):

    square: E[(x - k)^2]   = (mu - k)^2 + sigma^2
    exp:    E[exp(-k x^2)] = exp(-k mu^2 / (1 + 2 k sigma^2)) / sqrt(1 + 2 k sigma^2)
    cos:    E[cos(k x)]    = cos(k mu) exp(-k^2 sigma^2 / 2)
    """
    make_cost, closed_form, written = GAUSSIAN_COSTS[kind]
    problem_id, text = point_id(f"gauss-{kind}-{k:g}", {"mu": mu, "sigma": sigma}, {"mu": 1.0, "sigma": 1.0})
    return ClosedFormProblem(
        id=problem_id, family="normal", eval_point=text,
        description=f"E[{written.format(k=f'{k:g}')}], x ~ N(mu, sigma^2) at mu = {mu:g}, sigma = {sigma:g}",
        point=lambda: {"mu": torch.tensor(mu), "sigma": torch.tensor(sigma)},
        make_distribution=_normal,
        cost=make_cost(k),
        expected_cost=lambda params: closed_form(k, params["mu"], params["sigma"]),
        # inf over (mu, sigma > 0) of E[f]: square 0 (mu = k, sigma -> 0), exp 0 (sigma -> infinity),
        # cos -1 (k mu = pi, sigma -> 0); the excess loss of a trajectory is measured from it.
        settings={"kind": kind, "k": k, "mu": mu, "sigma": sigma, "infimum": {"square": 0.0, "exp": 0.0, "cos": -1.0}[kind]},
    )


# --- Gamma, Beta, Dirichlet: reparameterised only implicitly -----------------------------------------

def gamma_square(k: float = 2.0, concentration: float = 3.0, rate: float = 2.0) -> ClosedFormProblem:
    """E[(x - k)^2], x ~ Gamma(alpha, beta) = alpha / beta^2 + (alpha / beta - k)^2, gradient in (alpha, beta)."""
    problem_id, text = point_id(f"gamma-square-{k:g}", {"concentration": concentration, "rate": rate},
                                {"concentration": 3.0, "rate": 2.0})
    return ClosedFormProblem(
        id=problem_id, family="gamma", eval_point=text,
        description=f"E[(x - {k:g})^2], x ~ Gamma(concentration {concentration:g}, rate {rate:g})",
        point=lambda: {"concentration": torch.tensor(concentration), "rate": torch.tensor(rate)},
        make_distribution=lambda p, v: D.Gamma(p["concentration"], p["rate"], validate_args=v),
        cost=lambda x: (x - k) ** 2,
        expected_cost=lambda p: p["concentration"] / p["rate"] ** 2 + (p["concentration"] / p["rate"] - k) ** 2,
        settings={"k": k, "concentration": concentration, "rate": rate},
    )


def beta_square(k: float = 0.3, a: float = 2.0, b: float = 3.0) -> ClosedFormProblem:
    """E[(x - k)^2], x ~ Beta(a, b) = ab / ((a + b)^2 (a + b + 1)) + (a / (a + b) - k)^2."""
    problem_id, text = point_id(f"beta-square-{k:g}", {"a": a, "b": b}, {"a": 2.0, "b": 3.0})

    def expected(p):
        a_, b_ = p["concentration1"], p["concentration0"]
        total = a_ + b_
        return a_ * b_ / (total ** 2 * (total + 1)) + (a_ / total - k) ** 2

    return ClosedFormProblem(
        id=problem_id, family="beta", eval_point=text,
        description=f"E[(x - {k:g})^2], x ~ Beta({a:g}, {b:g})",
        point=lambda: {"concentration1": torch.tensor(a), "concentration0": torch.tensor(b)},
        make_distribution=lambda p, v: D.Beta(p["concentration1"], p["concentration0"], validate_args=v),
        cost=lambda x: (x - k) ** 2,
        expected_cost=expected,
        settings={"k": k, "a": a, "b": b},
    )


def dirichlet_quadratic(alpha=(1.0, 2.0, 3.0, 4.0)) -> ClosedFormProblem:
    """E[sum_k c_k x_k^2], x ~ Dirichlet(alpha), c_k = k; E[x_k^2] = alpha_k (alpha_k + 1) / (alpha_0 (alpha_0 + 1))."""
    alpha = tuple(float(a) for a in alpha)
    weights = torch.arange(1, len(alpha) + 1, dtype=torch.float64)
    problem_id, text = point_id(f"dirichlet-quadratic-{len(alpha)}", {"alpha": alpha}, {"alpha": (1.0, 2.0, 3.0, 4.0)})

    def expected(p):
        a = p["concentration"]
        total = a.sum(-1, keepdim=True)
        return (weights.to(a) * a * (a + 1) / (total * (total + 1))).sum(-1)

    return ClosedFormProblem(
        id=problem_id, family="dirichlet", eval_point=text,
        description=f"E[sum_k k x_k^2], x ~ Dirichlet({', '.join(f'{a:g}' for a in alpha)})",
        point=lambda: {"concentration": torch.tensor(alpha)},
        make_distribution=lambda p, v: D.Dirichlet(p["concentration"], validate_args=v),
        cost=lambda x: (weights.to(x) * x ** 2).sum(-1),
        expected_cost=expected,
        settings={"alpha": list(alpha), "weights": weights.tolist()},
    )


def _dirichlet_at(alpha=(1.0, 2.0, 3.0, 4.0)):
    alpha = (alpha,) if isinstance(alpha, float) else tuple(alpha)
    if len(alpha) != 4:
        raise InvalidPointError(f"point dirichlet-quadratic-4@alpha={format_value(alpha)}: alpha needs "
                                f"4 concentrations, got {len(alpha)}; e.g. @alpha=[0.3,0.5,2,5]")
    return dirichlet_quadratic(alpha)


# Registered points. The default sweep measures every family's symmetric point and one off-centre point
# per distribution family (first in each list below): with all of them it took 70-78 s on 2 idle cores,
# against a budget of a minute; with these 20 problems, 50 s (measured side by side, torch 2.13).
for _t in (0.45, 0.499):
    add_family(ProblemFamily(f"tucker-{_t}", functools.partial(tucker, _t), {"theta": 0.0},
                             "theta (the logit) or p (the probability)", extra_keys=("p",)),
               [{"theta": -2.0}] if _t == 0.45 else [],
               [{"theta": 1.0}] if _t == 0.45 else [{"theta": -2.0}])
# ARM's toy targets (Yin & Zhou 2019), for the optimisation trajectories; not in the default sweep.
for _t in (0.49, 0.501, 0.51):
    add_family(ProblemFamily(f"tucker-{_t}", functools.partial(tucker, _t), {"theta": 0.0},
                             "theta (the logit) or p (the probability)", extra_keys=("p",)), default=False)
for _p in (1.5, 2.0, 3.0):
    add_family(ProblemFamily(f"poly-{_p:g}", functools.partial(polynomial, _p), {"logits": 0.0},
                             "logits: one value for all bits, or lo..hi spread over the bits", span_keys=("logits",)),
               more_points=[{"logits": Span(-3.0, 3.0)}] if _p == 2.0 else [])
# Peaked categorical points: the scale is chosen per K so that the rarest state keeps a probability of
# at least 1e-3 (0.008, 0.0018, 0.0016), which 10^4 samples still see; at quadratic-12@scale=3 one state has
# 1e-5, and a sweep's or a test's N = 2 x 10^4 draws would mostly not see it at all.
for _k, _scale in ((4, 3.0), (8, 2.0), (12, 1.5)):
    add_family(ProblemFamily(f"quadratic-{_k}", functools.partial(quadratic, _k), {"scale": 1.0},
                             "scale (multiplies the seeded logits)"),
               [{"scale": _scale}] if _k == 4 else [], [] if _k == 4 else [{"scale": _scale}])
for _kind, _k in (("square", 3.0), ("exp", 1.0), ("cos", 2.0)):
    add_family(ProblemFamily(f"gauss-{_kind}-{_k:g}", functools.partial(gaussian, _kind, _k),
                             {"mu": 1.0, "sigma": 1.0}),
               [{"mu": -0.5, "sigma": 0.5}] if _kind == "square" else [],
               [] if _kind == "square" else [{"mu": -0.5, "sigma": 0.5}])
add_family(ProblemFamily("gamma-square-2", gamma_square, {"concentration": 3.0, "rate": 2.0}),
           [{"concentration": 0.5, "rate": 1.0}])
add_family(ProblemFamily("beta-square-0.3", beta_square, {"a": 2.0, "b": 3.0}), [{"a": 0.5, "b": 4.0}])
add_family(ProblemFamily("dirichlet-quadratic-4", _dirichlet_at, {"alpha": (1.0, 2.0, 3.0, 4.0)},
                         "alpha, a list of 4 concentrations [a1,a2,a3,a4]"), [{"alpha": (0.3, 0.5, 2.0, 5.0)}])
