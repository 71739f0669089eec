"""Toy problems on the AEVB paper's three kinds of reparameterisable distributions, with exact gradients.

Kingma & Welling (2014, section 2.4) name three kinds of continuous distributions with a
differentiable sampler x = g(theta, eps): (1) a tractable inverse CDF (Exponential, Cauchy,
Logistic, ...), (2) a location-scale family (Laplace, Student-t, Logistic, ...), (3) a composition
of such transforms (LogNormal = exp of a Normal). Each problem below pairs one of them with a cost
whose expectation E[f] is known in closed form as a differentiable function of the parameters, so
its exact gradient is `torch.autograd.grad` of that closed form in float64 (`ClosedFormProblem`, as
in `benchmarks.tasks.toys`). Two contrast families close the set: Uniform(low, high), which has
`rsample` but a support that moves with its parameters (the pathwise gradient applies, the score
function is biased there and does not apply), and Poisson, which has `log_prob` but no `rsample`
(the score function applies, the pathwise gradient does not).

The closed forms (x the sample; k the cost's constant, the number that ends the family id):

inverse CDF
    exponential-square-k  x ~ Exponential(rate), f = (x - k)^2:
        E[x] = 1/rate, E[x^2] = 2/rate^2, so E[f] = 2/rate^2 - 2k/rate + k^2.
    cauchy-lorentz-k      x ~ Cauchy(loc, scale), f = 1 / (1 + (x - k)^2) = pi * Cauchy(k, 1) density:
        the convolution of Cauchy densities is Cauchy with the scales added (Poisson kernel), so
        E[f] = pi * Cauchy(loc, 1 + scale) density at k = (1 + scale) / ((1 + scale)^2 + (loc - k)^2).
        f is bounded with a bounded, x^-3-decaying slope, so both the pathwise gradient
        (f'(x) (x - loc)/scale, bounded) and the score function (bounded scores) have finite variance;
        a cost like cos(k x) would give the pathwise scale gradient infinite variance under a Cauchy.
location-scale
    laplace-square-k      x ~ Laplace(loc, scale), Var x = 2 scale^2: E[f] = (loc - k)^2 + 2 scale^2.
    studentt-cos-k        x = loc + scale t, t ~ Student-t with df = 3 (fixed, not a parameter),
        f = cos(k x): the characteristic function of t_3 is phi(u) = (1 + sqrt(3)|u|) exp(-sqrt(3)|u|),
        so E[f] = Re E[exp(i k x)] = cos(k loc) (1 + sqrt(3) k scale) exp(-sqrt(3) k scale) (k >= 0).
        A bounded cost: t_3 has no third moment, and its second moment is what the pathwise scale
        gradient -k sin(k x) t needs.
    logistic-square-k     x ~ Logistic(loc, scale) (`Logistic` below: Uniform(0, 1) through the logit,
        then loc + scale *), Var x = scale^2 pi^2 / 3: E[f] = (loc - k)^2 + scale^2 pi^2 / 3.
composition
    lognormal-square-k    x = exp(mu + sigma eps), eps ~ N(0, 1), f = (x - k)^2: E[x^n] = exp(n mu + n^2 sigma^2 / 2),
        so E[f] = exp(2 mu + 2 sigma^2) - 2k exp(mu + sigma^2 / 2) + k^2.
contrasts
    uniform-square-k      x ~ Uniform(low, high): E[x^2] = (low^2 + low high + high^2) / 3, so
        E[f] = (low^2 + low high + high^2) / 3 - k (low + high) + k^2.
    poisson-exp-k         x ~ Poisson(rate), f = exp(-k x): the probability generating function
        E[s^x] = exp(rate (s - 1)) at s = e^-k gives E[f] = exp(rate (e^-k - 1)).

Evaluation points and tails. Every estimate here is unbiased with finite variance; a z-test of 2 x 10^4
of them at level 1e-6 (tests/test_unbiased.py) also needs them not too skewed or heavy-tailed, since its
error in level grows with gamma^2 / (N S) and kappa / (N S) (gamma, kappa: skewness and kurtosis of a
one-sample estimate). With a square cost the score-function estimate grows like |x|^3 where x has an
exponential tail (Exponential, Laplace, Logistic) and like exp(2 sigma eps) under a LogNormal; unless the
cost's bulk outweighs that tail, its kurtosis runs to thousands. The constants k and the points are
chosen so that, for the pathwise estimate and the score function with b = 0 and b = E[f] (what the
baselines approach), every coordinate has |skewness| <= 20 and kurtosis <= 1000 (computed by quadrature; the worst is
laplace-square-3's scale coordinate, 19 and 950):
    Exponential   k = 8: the cost's bulk (x - 8)^2 outweighs its x^3 tail (at k = 1 kurtosis 2,900, at k = 3
                  14,000); rate 1 and rate 2 (rate = 1 is the point where rate and scale coincide).
    Laplace, Logistic   k = 3; loc 0, scale 1 and loc -1/2, scale 1/2 (at k = 1: kurtosis 1,500 and 900).
    LogNormal     k = 3; mu 0, sigma 1/4 and mu -1/2, sigma 0.4 (at sigma 1/2 kurtosis 1.3 x 10^5, at
                  sigma 1 about 10^9: 2 x 10^4 estimates could not even measure the variance).
    Cauchy        loc 0, scale 1 and loc 1/2, scale 1/2 (at loc -1/2, scale 1/2 the scale gradient is
                  exactly 0: (1 + scale)^2 = (loc - k)^2).
    Student-t     loc 0, scale 1 and loc -1/2, scale 1/2. The exception, by construction: t_3 has no
                  fourth moment, so the pathwise scale gradient -k sin(k x) t has finite variance but
                  infinite kurtosis for any cost not flat in the tails. The studentised z-statistic is
                  self-normalising, and a simulation of it at studentt-cos-1 (numpy's t_3 sampler,
                  20,000 replicates of N = 2 x 10^4, S = 2) gave rejection rates 0.0085, 0.00065 and
                  0.00005 at levels 1e-2, 1e-3, 1e-4, and z a skewness of -0.005, an excess kurtosis of -0.07.
    Uniform       Uniform(0, 1) and Uniform(-1/2, 2), k = 1.   Poisson   rate 1 and rate 4, k = 1.

None of these points is in the default sweep (it must stay under a minute); `--objectives '*'`, a glob
(`'cauchy-*'`) or an id measures them.

References:
    Kingma, D. P., Welling, M. (2014). Auto-encoding variational Bayes. ICLR, section 2.4.
    Mohamed, S. et al. (2020). Monte Carlo gradient estimation in machine learning. JMLR 21(132),
        sections 4-5 (score function and pathwise estimators, their conditions and variance).
    Johnson, N. L., Kotz, S., Balakrishnan, N. (1994-95). Continuous univariate distributions,
        vols. 1-2 (moments; Student-t's characteristic function, ch. 28).
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import Callable

import numpy as np
import torch
import torch.distributions as D
from torch.distributions import constraints
from torch.distributions.transforms import AffineTransform, SigmoidTransform
from torch.distributions.utils import broadcast_all

from benchmarks.tasks.protocol import ClosedFormProblem, InvalidPointError, Params
from benchmarks.tasks.registry import ProblemFamily, add_family, point_id
from estimators.families import FAMILY_BY_CLASS

SQRT3 = math.sqrt(3.0)
STUDENT_T_DF = 3.0


class _AffineTransform(AffineTransform):
    """torch's AffineTransform, with its shape bookkeeping done by numpy: torch.broadcast_shapes imports
    sympy (0.4 s), and the suite builds a Logistic at import to check its points, in every process."""

    def forward_shape(self, shape):
        return torch.Size(np.broadcast_shapes(shape, tuple(getattr(self.loc, "shape", ())),
                                              tuple(getattr(self.scale, "shape", ()))))

    inverse_shape = forward_shape


class Logistic(D.TransformedDistribution):
    """The logistic distribution, x = loc + scale log(u / (1 - u)), u ~ Uniform(0, 1) (inverse CDF);
    density exp(-z) / (scale (1 + exp(-z))^2), z = (x - loc) / scale. torch has no Logistic class.

    `log_prob` is written out (-|z| - 2 log(1 + exp(-|z|)) - log scale) rather than inherited: the inherited
    one maps x back through the sigmoid, which rounds to 1 for x - loc > 17 scale in float32."""

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.real
    has_rsample = True

    def __init__(self, loc, scale, validate_args=None):
        self.loc, self.scale = broadcast_all(loc, scale)
        base = D.Uniform(torch.zeros_like(self.loc), torch.ones_like(self.loc), validate_args=validate_args)
        super().__init__(base, [SigmoidTransform().inv, _AffineTransform(self.loc, self.scale)],
                         validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(Logistic, _instance)
        new.loc = self.loc.expand(batch_shape)
        new.scale = self.scale.expand(batch_shape)
        return super().expand(batch_shape, _instance=new)

    def log_prob(self, value):
        if self._validate_args:
            self._validate_sample(value)
        # Even in z: -|z| - 2 log(1 + exp(-|z|)) is exact in floating point for any z (softplus is linear
        # above 20 and would drop exp(-|z|) there).
        z = ((value - self.loc) / self.scale).abs()
        return -z - 2 * torch.log1p(torch.exp(-z)) - self.scale.log()

    def cdf(self, value):
        return torch.sigmoid((value - self.loc) / self.scale)

    def icdf(self, value):
        return self.loc + self.scale * torch.logit(value)

    @property
    def mean(self):
        return self.loc

    @property
    def mode(self):
        return self.loc

    @property
    def variance(self):
        return self.scale.pow(2) * math.pi ** 2 / 3

    def entropy(self):
        return self.scale.log() + 2


FAMILY_BY_CLASS[Logistic] = "logistic"


@dataclasses.dataclass(frozen=True)
class Kind:
    """One family of problems: its distribution, cost and E[f] in closed form, and its registered points."""

    name: str                                              # the family id is f"{name}-{k:g}"
    family: str                                            # estimators.families' name of the distribution
    distribution: Callable[[Params, bool | None], D.Distribution]
    cost: Callable[[float], Callable[[torch.Tensor], torch.Tensor]]
    expected: Callable[[float, Params], torch.Tensor]      # E[f] as a differentiable function of the params
    written: str                                           # f and the distribution, for the description
    k: float
    symmetric: dict
    off_centre: list
    settings: dict = dataclasses.field(default_factory=dict)


def _student_t(p, v):
    df = torch.tensor(STUDENT_T_DF, dtype=p["loc"].dtype, device=p["loc"].device)
    return D.StudentT(df, p["loc"], p["scale"], validate_args=v)


def _square(k):
    return lambda x: (x - k) ** 2


_STANDARD = {"loc": 0.0, "scale": 1.0}
_OFF = [{"loc": -0.5, "scale": 0.5}]

KINDS = [
    # inverse CDF
    Kind("exponential-square", "exponential", lambda p, v: D.Exponential(p["rate"], validate_args=v), _square,
         lambda k, p: 2 / p["rate"] ** 2 - 2 * k / p["rate"] + k ** 2,
         "E[(x - {k})^2], x ~ Exponential(rate)", 8.0, {"rate": 1.0}, [{"rate": 2.0}]),
    Kind("cauchy-lorentz", "cauchy", lambda p, v: D.Cauchy(p["loc"], p["scale"], validate_args=v),
         lambda k: lambda x: 1 / (1 + (x - k) ** 2),
         lambda k, p: (1 + p["scale"]) / ((1 + p["scale"]) ** 2 + (p["loc"] - k) ** 2),
         "E[1 / (1 + (x - {k})^2)], x ~ Cauchy(loc, scale)", 1.0, _STANDARD, [{"loc": 0.5, "scale": 0.5}]),
    # location-scale
    Kind("laplace-square", "laplace", lambda p, v: D.Laplace(p["loc"], p["scale"], validate_args=v), _square,
         lambda k, p: (p["loc"] - k) ** 2 + 2 * p["scale"] ** 2,
         "E[(x - {k})^2], x ~ Laplace(loc, scale)", 3.0, _STANDARD, _OFF),
    Kind("studentt-cos", "studentt", _student_t, lambda k: lambda x: torch.cos(k * x),
         lambda k, p: (torch.cos(k * p["loc"]) * (1 + SQRT3 * abs(k) * p["scale"])
                       * torch.exp(-SQRT3 * abs(k) * p["scale"])),
         "E[cos({k} x)], x = loc + scale t, t ~ Student-t(df = 3)", 1.0, _STANDARD, _OFF, {"df": STUDENT_T_DF}),
    Kind("logistic-square", "logistic", lambda p, v: Logistic(p["loc"], p["scale"], validate_args=v), _square,
         lambda k, p: (p["loc"] - k) ** 2 + p["scale"] ** 2 * math.pi ** 2 / 3,
         "E[(x - {k})^2], x ~ Logistic(loc, scale)", 3.0, _STANDARD, _OFF),
    # composition
    Kind("lognormal-square", "lognormal", lambda p, v: D.LogNormal(p["mu"], p["sigma"], validate_args=v), _square,
         lambda k, p: (torch.exp(2 * p["mu"] + 2 * p["sigma"] ** 2) - 2 * k * torch.exp(p["mu"] + p["sigma"] ** 2 / 2)
                       + k ** 2),
         "E[(x - {k})^2], x = exp(mu + sigma eps), eps ~ N(0, 1)", 3.0, {"mu": 0.0, "sigma": 0.25},
         [{"mu": -0.5, "sigma": 0.4}]),
    # contrasts: rsample on a moving support; log_prob without rsample
    Kind("uniform-square", "uniform", lambda p, v: D.Uniform(p["low"], p["high"], validate_args=v), _square,
         lambda k, p: (p["low"] ** 2 + p["low"] * p["high"] + p["high"] ** 2) / 3 - k * (p["low"] + p["high"]) + k ** 2,
         "E[(x - {k})^2], x ~ Uniform(low, high)", 1.0, {"low": 0.0, "high": 1.0}, [{"low": -0.5, "high": 2.0}]),
    Kind("poisson-exp", "poisson", lambda p, v: D.Poisson(p["rate"], validate_args=v),
         lambda k: lambda x: torch.exp(-k * x), lambda k, p: torch.exp(p["rate"] * (math.exp(-k) - 1)),
         "E[exp(-{k} x)], x ~ Poisson(rate)", 1.0, {"rate": 1.0}, [{"rate": 4.0}]),
]


def problem(kind: Kind, **point) -> ClosedFormProblem:
    """The problem of `kind` at `point` (the symmetric point when none is given)."""
    point = {**kind.symmetric, **point}
    family_id = f"{kind.name}-{kind.k:g}"
    problem_id, text = point_id(family_id, point, kind.symmetric)
    if kind.family == "poisson" and not point["rate"] > 0:  # torch allows 0
        raise InvalidPointError(f"point {problem_id!r}: rate must be > 0 (at 0 every draw is 0 and the score "
                                "x / rate - 1 is 0/0)")
    at = ", ".join(f"{key} = {value:g}" for key, value in point.items())
    return ClosedFormProblem(
        id=problem_id, family=kind.family, eval_point=text,
        description=f"{kind.written.format(k=f'{kind.k:g}')} at {at}",
        point=lambda: {key: torch.tensor(value) for key, value in point.items()},
        make_distribution=kind.distribution,
        cost=kind.cost(kind.k),
        expected_cost=functools.partial(kind.expected, kind.k),
        settings={"k": kind.k, **kind.settings, **point},
    )


# Measured only when asked for (`--objectives 'cauchy-*'` or '*'): the default sweep keeps its budget.
for _kind in KINDS:
    add_family(ProblemFamily(f"{_kind.name}-{_kind.k:g}", functools.partial(problem, _kind), dict(_kind.symmetric)),
               more_points=_kind.off_centre, default=False)
