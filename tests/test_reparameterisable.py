"""The AEVB reparameterisable families (benchmarks/tasks/reparameterisable.py): their closed forms checked by
independent routes, the Logistic class, which estimators apply where, and their place outside the default sweep.

Closed forms. E[f] and its gradient are checked against numerical integration with scipy.stats' densities
(independent of torch's), to the integrator's accuracy: a deterministic check, with no false-failure rate.
E[f] is also checked against a float64 Monte Carlo mean of f over samples drawn by the problem's own torch
distribution (which catches a parameterisation mistake, e.g. Exponential(scale) for Exponential(rate)):
a z-test at level ALPHA per point, counted in the suite's false-failure budget (tests/helpers.py).
"""
import math

import numpy as np
import pytest
import torch
import torch.distributions as D
from scipy import integrate, stats

import estimators
from benchmarks.harness import enumerate_cells
from benchmarks.tasks import get_problem, list_problems
from benchmarks.tasks.reparameterisable import KINDS, Logistic
from estimators.families import distribution_class, family_name, has_log_density, has_rsample
from tests.helpers import Z

FAMILY_IDS = [f"{kind.name}-{kind.k:g}" for kind in KINDS]
POINTS = [p.id for p in list_problems([f"{family}*" for family in FAMILY_IDS])]
MC_SAMPLES = 2_000_000


def _scipy_distribution(problem, point):
    """The problem's distribution at `point` (floats) as a frozen scipy.stats distribution."""
    family, p = problem.family, point
    if family == "exponential":
        return stats.expon(scale=1 / p["rate"])
    if family == "cauchy":
        return stats.cauchy(p["loc"], p["scale"])
    if family == "laplace":
        return stats.laplace(p["loc"], p["scale"])
    if family == "studentt":
        return stats.t(problem.settings["df"], p["loc"], p["scale"])
    if family == "logistic":
        return stats.logistic(p["loc"], p["scale"])
    if family == "lognormal":
        return stats.lognorm(s=p["sigma"], scale=math.exp(p["mu"]))
    if family == "uniform":
        return stats.uniform(p["low"], p["high"] - p["low"])
    if family == "poisson":
        return stats.poisson(p["rate"])
    raise AssertionError(family)


def _expected_by_quadrature(problem, point) -> float:
    """E[f] at `point` by numerical integration (a series for the Poisson) against scipy's density."""
    dist = _scipy_distribution(problem, point)
    f = lambda x: float(problem.cost(torch.tensor(x, dtype=torch.float64)))
    if problem.family == "poisson":
        ks = np.arange(0, 200)
        return float(sum(f(float(k)) * dist.pmf(k) for k in ks))
    if problem.family == "studentt":
        # E[cos(k x)] = integral over x >= 0 of (p(x) + p(-x)) cos(k x): QAWF, for an oscillating tail.
        k = problem.settings["k"]
        return integrate.quad(lambda x: dist.pdf(x) + dist.pdf(-x), 0, np.inf, weight="cos", wvar=k, limit=400)[0]
    lo, hi = dist.support()
    cuts = sorted({float(np.clip(c, lo, hi)) for c in (dist.median(), problem.settings["k"])})
    edges = [lo, *cuts, hi]
    return sum(integrate.quad(lambda x: f(x) * dist.pdf(x), a, b, limit=400, epsabs=1e-13, epsrel=1e-11)[0]
               for a, b in zip(edges[:-1], edges[1:]) if a < b)


@pytest.mark.parametrize("problem_id", POINTS)
def test_closed_form_value_and_gradient_match_quadrature(problem_id):
    """E[f] to 1e-8 relative; the gradient against central differences of the quadrature (h = 1e-4, whose
    truncation error h^2 f'''/6 is about 1e-9 here) to 1e-6 relative."""
    problem = get_problem(problem_id)
    point = {k: float(v) for k, v in problem.point().items()}
    assert _expected_by_quadrature(problem, point) == pytest.approx(problem.exact_value(), rel=1e-8, abs=1e-11)
    h = 1e-4
    numeric = []
    for key in point:
        up, down = dict(point), dict(point)
        up[key] += h
        down[key] -= h
        numeric.append((_expected_by_quadrature(problem, up) - _expected_by_quadrature(problem, down)) / (2 * h))
    torch.testing.assert_close(problem.exact_gradient(), torch.tensor(numeric, dtype=torch.float64),
                               rtol=1e-6, atol=1e-8)


@pytest.mark.statistical
@pytest.mark.parametrize("problem_id", POINTS)
def test_closed_form_value_matches_the_problems_own_sampler(problem_id):
    """The mean of f over 2 x 10^6 float64 draws of the problem's torch distribution is within Z standard
    errors of the closed form (a z-test at level ALPHA)."""
    problem = get_problem(problem_id)
    params = {k: v.to(torch.float64).unsqueeze(0) for k, v in problem.point().items()}
    torch.manual_seed(23)
    samples = problem.distribution(params, validate_args=True).sample((MC_SAMPLES,))
    costs = problem.cost(samples).reshape(-1)
    se = float(costs.std() / math.sqrt(costs.numel()))
    assert abs(float(costs.mean()) - problem.exact_value()) < Z * se, (float(costs.mean()), problem.exact_value(), se)


def test_every_family_has_its_symmetric_point_and_one_off_centre_outside_the_default_sweep():
    default = {p.id for p in list_problems()}
    everything = [p.id for p in list_problems(["*"])]
    for family in FAMILY_IDS:
        points = [p.id for p in list_problems([f"{family}@*"])]
        assert points[0] == family and len(points) >= 2 and all("@" in p for p in points[1:]), points
        assert set(points) <= set(everything)
        assert not set(points) & default, f"{family} points in the default sweep: {set(points) & default}"
        assert get_problem(f"{family}@{get_problem(family).eval_point}") is get_problem(family)


def test_the_new_families_are_named_and_typed_as_torch_names_them():
    expected = {"exponential": D.Exponential, "cauchy": D.Cauchy, "laplace": D.Laplace, "studentt": D.StudentT,
                "logistic": Logistic, "lognormal": D.LogNormal, "uniform": D.Uniform, "poisson": D.Poisson}
    for problem_id in POINTS:
        problem = get_problem(problem_id)
        assert problem.distribution_type is expected[problem.family], problem_id
        assert family_name(problem.distribution_type) == problem.family
    assert distribution_class("logistic") is Logistic


def test_capabilities_decide_which_estimators_apply():
    pathwise, reinforce = estimators.get_spec("pathwise"), estimators.get_spec("reinforce")
    # Uniform: rsample, but a support that moves with (low, high): the score function misses the boundary term.
    assert pathwise.supports(D.Uniform) and not reinforce.supports(D.Uniform)
    # Poisson: log_prob on a fixed support, no rsample.
    assert reinforce.supports(D.Poisson) and not pathwise.supports(D.Poisson)
    # Logistic (a TransformedDistribution of this suite): both.
    assert has_rsample(Logistic) and has_log_density(Logistic)
    assert pathwise.supports(Logistic) and reinforce.supports(Logistic)
    for name in ("reinforce", "reinforce_loo", "reinforce_ema", "reinforce_nvil"):
        spec = estimators.get_spec(name)
        assert all(spec.supports(cls) for cls in (D.Exponential, D.Cauchy, D.Laplace, D.StudentT, Logistic,
                                                  D.LogNormal, D.Poisson)), name
        assert not spec.supports(D.Uniform), name


def test_the_harness_leaves_the_score_function_out_on_the_uniform_and_the_pathwise_out_on_the_poisson():
    specs = estimators.list_estimators()
    problems = list_problems(["uniform-square-1*", "poisson-exp-1*"])
    cells, _ = enumerate_cells(specs, problems, taus=[], samples=[2], n_estimates=10, devices=["cpu"])
    on = lambda prefix: {c.estimator for c in cells if c.objective.startswith(prefix)}
    assert on("uniform-square-1") == {"pathwise"}
    assert on("poisson-exp-1") == {"reinforce", "reinforce_loo", "reinforce_ema", "reinforce_nvil", "reinforce_grpo",
                                   "reinforce_drgrpo"}


def test_logistic_log_prob_cdf_and_moments():
    loc, scale = torch.tensor([-0.5, 0.0, 2.0], dtype=torch.float64), torch.tensor([0.5, 1.0, 3.0], dtype=torch.float64)
    dist = Logistic(loc, scale, validate_args=True)
    x = torch.linspace(-30, 30, 61, dtype=torch.float64).unsqueeze(-1)
    reference = stats.logistic.logpdf(x.numpy(), loc.numpy(), scale.numpy())
    np.testing.assert_allclose(dist.log_prob(x).numpy(), reference, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dist.cdf(x).numpy(), stats.logistic.cdf(x.numpy(), loc.numpy(), scale.numpy()),
                               rtol=1e-12, atol=1e-300)
    # The inherited log_prob (through the inverse sigmoid) agrees where it does not round.
    moderate = x[(x.abs() < 8).squeeze(-1)]
    torch.testing.assert_close(dist.log_prob(moderate), D.TransformedDistribution.log_prob(dist, moderate))
    torch.testing.assert_close(dist.icdf(dist.cdf(moderate)), moderate.expand(-1, 3))
    torch.testing.assert_close(dist.variance, scale ** 2 * math.pi ** 2 / 3)
    torch.testing.assert_close(dist.entropy(), torch.tensor(stats.logistic.entropy(loc.numpy(), scale.numpy())))
    assert dist.expand((4, 3)).sample().shape == (4, 3)
    with pytest.raises(ValueError, match="scale"):
        Logistic(torch.tensor(0.0), torch.tensor(-1.0), validate_args=True)


def test_logistic_rsample_is_differentiable_and_finite_in_float32():
    loc, scale = torch.tensor(0.3, requires_grad=True), torch.tensor(2.0, requires_grad=True)
    torch.manual_seed(0)
    x = Logistic(loc, scale).rsample((100_000,))
    assert torch.isfinite(x).all()
    d_loc, d_scale = torch.autograd.grad(x.sum(), [loc, scale])
    assert float(d_loc) == pytest.approx(100_000)                        # dx/dloc = 1
    z = ((x - loc) / scale).detach()
    assert float(d_scale) == pytest.approx(float(z.sum()), rel=1e-4, abs=1.0)  # dx/dscale = z
