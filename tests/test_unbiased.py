"""Unbiasedness against exact gradients, from the registry's metadata, at every evaluation point.

Every estimator registered with unbiased=True must match the exact gradient on the problems of
every family it supports, at the symmetric point and off-centre (where many mistakes that cancel at
logit 0 or sigma 1 show: a DisARM using sigmoid(phi) for sigmoid(|phi|) is exact at phi = 0): a
per-coordinate z-test with Bonferroni correction at family-wise level ALPHA per (estimator,
problem) case, fixed seeds (tests/helpers.py states the suite-wide rate). Estimators registered as
biased must show a significant bias on at least one problem (else their metadata is wrong), and
where theory gives the biased expectation in closed form we test against that value.
"""
import pytest
import torch

import estimators
from benchmarks.tasks import get_problem, list_problems
from tests.helpers import ALPHA, Z, bonferroni_z, draw, max_abs_z, samples_for

N = 20_000
# Every point of these families (poly-1.5, tucker-0.499 and quadratic-8 repeat their neighbours' cases), and of
# the AEVB reparameterisable families (benchmarks/tasks/reparameterisable.py), outside the default sweep.
CHECK_PROBLEMS = [p.id for p in list_problems(["tucker-0.45*", "poly-2*", "poly-3*", "quadratic-4*", "quadratic-12*",
                                               "gauss-*", "gamma-*", "beta-*", "dirichlet-*",
                                               "exponential-*", "cauchy-*", "laplace-*", "studentt-*", "logistic-*",
                                               "lognormal-*", "uniform-*", "poisson-*"])]

UNBIASED = [(spec.name, pid) for spec in estimators.list_estimators() if spec.unbiased
            for pid in CHECK_PROBLEMS if spec.supports(get_problem(pid).distribution_type)]
BIAS_PROBLEMS = ["tucker-0.45", "poly-3", "quadratic-4", "tucker-0.45@theta=-2", "quadratic-4@scale=3"]
BIASED = [spec.name for spec in estimators.list_estimators() if not spec.unbiased]
BIAS_CHECKS = len(BIAS_PROBLEMS)


def _draw_or_skip(name, objective_id, n, n_samples, seed, **kwargs):
    try:
        return draw(name, objective_id, n, n_samples, seed=seed, **kwargs)
    except estimators.NotApplicableError as reason:
        pytest.skip(str(reason))


@pytest.mark.statistical
@pytest.mark.parametrize("name,objective_id", UNBIASED)
def test_unbiased_estimators_match_the_exact_gradient(name, objective_id):
    spec = estimators.get_spec(name)
    estimates = _draw_or_skip(name, objective_id, N, samples_for(spec, 2), seed=11)
    exact = get_problem(objective_id).exact_gradient()
    if float(estimates.std(0).max()) < 1e-12:  # the exact estimator: only rounding noise
        torch.testing.assert_close(estimates.mean(0), exact, rtol=1e-9, atol=1e-12)
        return
    assert max_abs_z(estimates, exact) < bonferroni_z(ALPHA, exact.numel())


def test_every_unbiased_estimator_is_checked_off_centre_in_every_family_it_supports():
    for spec in estimators.list_estimators():
        if spec.unbiased and not spec.is_reference:
            checked = [pid for name, pid in UNBIASED if name == spec.name]
            assert len(checked) >= 3, f"{spec.name} is z-tested on too few problems: {checked}"
            families = {get_problem(pid).family for pid in CHECK_PROBLEMS if spec.supports(get_problem(pid).distribution_type)}
            off_centre = {get_problem(pid).family for pid in checked if "@" in pid}
            assert families <= off_centre, f"{spec.name} is not z-tested off-centre in {families - off_centre}"


@pytest.mark.statistical(checks=BIAS_CHECKS)
@pytest.mark.parametrize("name", BIASED)
def test_biased_estimators_show_their_bias(name):
    """Each biased estimator is significantly biased on some standard problem (each check at level ALPHA)."""
    spec = estimators.get_spec(name)
    found = []
    for objective_id in BIAS_PROBLEMS:
        objective = get_problem(objective_id)
        if not spec.supports(objective.distribution_type):
            continue
        estimates = draw(name, objective_id, N, samples_for(spec, 1), seed=5)
        exact = objective.exact_gradient()
        if max_abs_z(estimates, exact) > bonferroni_z(ALPHA, exact.numel()):
            found.append(objective_id)
    assert found, f"{name} is registered as biased but no objective shows it"


@pytest.mark.statistical(checks=3)
def test_straight_through_bias_matches_theory():
    """ST on poly-3 at logits 0: E[grad] per bit = s(1-s) E[f'(b)] = 0.25 * 3(0.5*0.55^2 - 0.5*0.45^2) / 128,
    about twice the exact (0.55^3 - 0.45^3) 0.25 / 128; on Tucker's quadratic toy at theta = 0 it is exact,
    since f' is linear and s = 1/2 makes E[f'(b)] = f(1) - f(0)."""
    estimates = draw("straight_through", "poly-3", N, 1, seed=2)
    theory = torch.full((128,), 0.25 * 3 * (0.5 * 0.55 ** 2 - 0.5 * 0.45 ** 2) / 128, dtype=torch.float64)
    assert max_abs_z(estimates, theory) < bonferroni_z(ALPHA, 128)
    assert max_abs_z(estimates, get_problem("poly-3").exact_gradient()) > bonferroni_z(ALPHA, 128)
    tucker = draw("straight_through", "tucker-0.45", N, 1, seed=3)
    assert max_abs_z(tucker, get_problem("tucker-0.45").exact_gradient()) < bonferroni_z(ALPHA, 1)


@pytest.mark.statistical
def test_gumbel_softmax_bias_shrinks_with_temperature():
    """The Concrete relaxation's bias vanishes as tau -> 0 (Maddison et al. 2017): the bias norm at tau = 0.5
    is below that at tau = 2 by more than Z times the two norms' errors. Each observed norm is within
    ||mean - E g|| of the true one, whose rms is se = sqrt(trace Cov / N), and ||mean - E g|| > Z se with
    probability <= P(chi2_1 > Z^2) = ALPHA (Szekely & Bakirov 2003, for a Gaussian mean). tau = 0.05 is left
    out: its bias (about 0.14) is within the noise of 2 x 10^4 estimates there (rms 0.09)."""
    exact = get_problem("quadratic-4").exact_gradient()
    bias, se = {}, {}
    for tau in (2.0, 0.5):
        estimates = draw("gumbel_softmax", "quadratic-4", N, 1, seed=4, hparams={"tau": tau})
        bias[tau] = float((estimates.mean(0) - exact).norm())
        se[tau] = float((estimates.var(0).sum() / len(estimates)).sqrt())
    assert bias[2.0] - bias[0.5] > Z * (se[2.0] + se[0.5]), (bias, se)
