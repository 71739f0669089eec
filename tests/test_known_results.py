"""Known results that must come out of the harness, at the symmetric points and off-centre.

Each comparison is a z-test on the difference of two independent estimates, with its standard
error from the N estimates, at level ALPHA per check (tests/helpers.py: the suite-wide rate), with
fixed seeds. Off-centre points matter: at theta = 0 DisARM's variance on Tucker's toy is exactly 0,
so "DisARM <= ARM" there says nothing.
"""
import math

import pytest
import torch
from scipy import stats

from benchmarks.harness import Cell, run_cell
from benchmarks.tasks import get_problem
from tests.helpers import ALPHA, Z, bonferroni_z, draw, max_abs_z, variance_and_se


@pytest.mark.statistical(checks=4)
def test_reinforce_variance_on_tucker_matches_closed_form():
    """g = f(b)(b - s) with f(b) = (b - t)^2, s = sigmoid(theta): Var = (E[f^2 (b - s)^2] - E[g]^2) / S,
    E[f^2 (b - s)^2] = s (1 - t)^4 (1 - s)^2 + (1 - s) t^4 s^2."""
    t = 0.45
    for problem, theta in (("tucker-0.45", 0.0), ("tucker-0.45@theta=1", 1.0)):
        s = 1 / (1 + math.exp(-theta))
        second_moment = s * (1 - t) ** 4 * (1 - s) ** 2 + (1 - s) * t ** 4 * s ** 2
        mean = s * (1 - s) * ((1 - t) ** 2 - t ** 2)
        for n_samples in (1, 4):
            closed_form = (second_moment - mean ** 2) / n_samples
            variance, se = variance_and_se(draw("reinforce", problem, 50_000, n_samples, seed=n_samples))
            assert abs(variance - closed_form) < Z * se, (problem, n_samples, variance, closed_form, se)


@pytest.mark.statistical(checks=6)
def test_gumbel_softmax_variance_grows_as_temperature_falls():
    for objective in ("tucker-0.45", "quadratic-8", "quadratic-8@scale=2"):
        variances = []
        for tau in (1.0, 0.5, 0.1):
            variances.append(variance_and_se(draw("gumbel_softmax", objective, 20_000, 1, seed=9, hparams={"tau": tau})))
        for (v_hot, se_hot), (v_cold, se_cold) in zip(variances, variances[1:]):
            assert v_cold - v_hot > Z * (se_hot ** 2 + se_cold ** 2) ** 0.5, (objective, variances)


@pytest.mark.statistical(checks=5)
def test_leave_one_out_baseline_lowers_reinforce_variance():
    for objective in ("tucker-0.45", "tucker-0.45@theta=-2", "quadratic-8", "gauss-square-3",
                      "gauss-square-3@mu=-0.5,sigma=0.5"):
        plain = variance_and_se(draw("reinforce", objective, 20_000, 4, seed=1))
        loo = variance_and_se(draw("reinforce_loo", objective, 20_000, 4, seed=2))
        assert plain[0] - loo[0] > Z * (plain[1] ** 2 + loo[1] ** 2) ** 0.5, (objective, plain, loo)


def test_disarm_is_exact_on_tucker_at_zero_but_not_off_centre():
    """Why the symmetric point alone hides mistakes: DisARM's estimate on Tucker's toy at theta = 0 is the
    exact gradient in every draw (variance 0), while at theta = -2 it has a spread."""
    at_zero = draw("disarm", "tucker-0.45", 1000, 1, seed=1)
    torch.testing.assert_close(at_zero, torch.full_like(at_zero, 0.025), rtol=1e-12, atol=1e-15)
    assert float(draw("disarm", "tucker-0.45@theta=-2", 1000, 1, seed=1).var()) > 0


@pytest.mark.statistical(checks=2)
def test_harness_reports_the_same_relations():
    """The sweep's own rows (bootstrap intervals) show the LOO improvement without overlap, and neither
    unbiased estimator's bias_z_max exceeds the critical value at level ALPHA (one coordinate)."""
    plain = run_cell(Cell("reinforce", (), "tucker-0.45@theta=-2", 4, 5000))
    loo = run_cell(Cell("reinforce_loo", (), "tucker-0.45@theta=-2", 4, 5000))
    assert loo["variance_trace_hi"] < plain["variance_trace_lo"]
    assert plain["bias_z_max"] < Z and loo["bias_z_max"] < Z


@pytest.mark.statistical(checks=6)
def test_disarm_variance_is_no_higher_than_arm():
    """DisARM Rao-Blackwellises ARM over u, so its variance cannot be higher (Dong et al. 2020): at a
    negative and a positive logit, and over bits of mixed signs."""
    for objective in ("tucker-0.45", "tucker-0.45@theta=-2", "tucker-0.45@theta=1", "poly-2", "poly-3",
                      "poly-2@logits=-3..3"):
        arm = variance_and_se(draw("arm", objective, 20_000, 1, seed=1))
        disarm = variance_and_se(draw("disarm", objective, 20_000, 1, seed=2))
        assert disarm[0] - arm[0] < Z * (arm[1] ** 2 + disarm[1] ** 2) ** 0.5, (objective, arm, disarm)


@pytest.mark.statistical(checks=2)
def test_gumbel_rao_variance_falls_as_k_grows():
    """Averaging the backward pass over K conditional Gumbels lowers variance (Paulus et al. 2021), down
    to the variance of the conditional expectation, so the drop is tested from K = 1 to K = 10."""
    for objective in ("quadratic-8", "tucker-0.45"):
        few, many = (variance_and_se(draw("gumbel_rao", objective, 10_000, 1, seed=3, hparams={"tau": 0.5, "k": k}))
                     for k in (1, 10))
        assert few[0] - many[0] > Z * (few[1] ** 2 + many[1] ** 2) ** 0.5, (objective, few, many)


@pytest.mark.statistical(checks=3)
def test_gumbel_rao_has_the_expectation_of_st_gumbel_softmax():
    """Rao-Blackwellisation keeps the mean: a two-sample z-test per coordinate against ST Gumbel-Softmax."""
    for objective in ("quadratic-4", "tucker-0.45", "tucker-0.45@theta=-2"):
        rao = draw("gumbel_rao", objective, 40_000, 1, seed=6, hparams={"tau": 0.5, "k": 10})
        st = draw("st_gumbel_softmax", objective, 40_000, 1, seed=7, hparams={"tau": 0.5})
        se = (rao.var(0) / len(rao) + st.var(0) / len(st)).sqrt()
        z_crit = float(stats.norm.ppf(1 - ALPHA / (2 * rao.shape[1])))
        assert ((rao.mean(0) - st.mean(0)).abs() / se).max() < z_crit, objective


@pytest.mark.statistical
def test_optimal_constant_baseline_has_zero_variance_on_tucker_at_zero():
    """Why REBAR does not beat leave-one-out on Tucker's toy at theta = 0: with b = E[f] the score-function
    estimate (f(b) - E f)(b - 1/2) equals (1 - 2t)/4 for both values of b, so a good baseline alone
    already removes nearly all variance; a relaxation-based control variate only adds its own."""
    t = 0.45
    mean_cost = 0.5 * (1 - t) ** 2 + 0.5 * t ** 2
    for b in (0.0, 1.0):
        assert ((b - t) ** 2 - mean_cost) * (b - 0.5) == pytest.approx((1 - 2 * t) / 4)
    loo = variance_and_se(draw("reinforce_loo", "tucker-0.45", 20_000, 3, seed=4))
    rebar = variance_and_se(draw("rebar", "tucker-0.45", 20_000, 1, seed=5))
    # At equal f-evaluations (3 per estimate); a z-test at level ALPHA (measured z = 135).
    assert rebar[0] - loo[0] > Z * (loo[1] ** 2 + rebar[1] ** 2) ** 0.5, (loo, rebar)


@pytest.mark.statistical
def test_relax_beats_leave_one_out_on_tucker_at_equal_f_evaluations():
    """RELAX's learned control variate can act as the optimal constant baseline that REBAR lacks: at
    3 f-evaluations per estimate it has lower variance than leave-one-out with S = 3 (Grathwohl et al. 2018)."""
    relax = variance_and_se(draw("relax", "tucker-0.45", 20_000, 1, seed=8, hparams={"tau": 1.0}))
    loo = variance_and_se(draw("reinforce_loo", "tucker-0.45", 20_000, 3, seed=9))
    assert loo[0] - relax[0] > Z * (loo[1] ** 2 + relax[1] ** 2) ** 0.5, (relax, loo)


@pytest.mark.statistical(checks=3)
def test_rebar_with_tied_noise_has_lower_variance_off_centre_and_both_couplings_are_unbiased():
    """Tucker et al.'s code ties the conditional noise z~ to the u behind b; drawing it afresh is also
    unbiased but noisier: on Tucker's toy at theta = 3 (an independent check measured 0.0034 against
    0.0064). One variance comparison and the independent coupling's mean against the exact gradient
    (the tied default is z-tested with every unbiased estimator in test_unbiased.py)."""
    tied = draw("rebar", "tucker-0.45@theta=3", 20_000, 1, seed=4, hparams={"coupling": "tied"})
    independent = draw("rebar", "tucker-0.45@theta=3", 20_000, 1, seed=5, hparams={"coupling": "independent"})
    (v_tied, se_tied), (v_ind, se_ind) = variance_and_se(tied), variance_and_se(independent)
    assert v_ind - v_tied > Z * math.hypot(se_tied, se_ind), (v_tied, v_ind)
    for problem in ("tucker-0.45@theta=3", "quadratic-4@scale=3"):
        estimates = draw("rebar", problem, 20_000, 1, seed=6, hparams={"coupling": "independent"})
        exact = get_problem(problem).exact_gradient().to(estimates)
        se = estimates.std(0) / math.sqrt(len(estimates))
        # Bonferroni over coordinates inside one check: the per-coordinate z at ALPHA / P.
        z = float(stats.norm.ppf(1 - ALPHA / (2 * exact.numel())))
        assert ((estimates.mean(0) - exact).abs() < z * se).all(), (problem, estimates.mean(0), exact)


def test_tied_conditional_noise_equals_the_noise_behind_the_sample():
    """z~ tied to z has z's value (the conditional reparameterisation only changes its gradient)."""
    from estimators.conditional import tied_gumbel, tied_logistic

    torch.manual_seed(0)
    logits = torch.tensor([-3.0, -0.5, 0.0, 2.0, 6.0], dtype=torch.float64, requires_grad=True)
    u = torch.rand(10_000, 5, dtype=torch.float64)
    z = logits + u.log() - torch.log1p(-u)
    z_tilde = tied_logistic(logits, z, (z > 0).to(z.dtype))
    torch.testing.assert_close(z_tilde, z.detach(), rtol=1e-9, atol=1e-9)
    categorical = torch.tensor([[-2.0, 0.0, 1.0, 3.0]], dtype=torch.float64, requires_grad=True)
    gumbel = categorical + (-(-torch.rand(10_000, 1, 4, dtype=torch.float64).log()).log())
    hard = (gumbel.argmax(-1, keepdim=True) == torch.arange(4)).to(gumbel.dtype)
    shifted = gumbel.detach() - torch.logsumexp(categorical.detach(), -1, keepdim=True)
    torch.testing.assert_close(tied_gumbel(categorical, gumbel, hard), shifted, rtol=1e-9, atol=1e-9)


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


@pytest.mark.statistical(checks=3)
def test_reinmax_expectation_on_tucker_matches_its_closed_form():
    """ReinMax is biased, so unbiasedness says nothing about it, and "shows some bias" holds for any wrong
    version too (a mutation trial: coefficients swapped, or the Bernoulli's other class taken, passed the
    suite). On Tucker's toy, f(b) = (b - t)^2, the estimate is a function of the sample b alone: with
    s = sigmoid(theta) and the two-class logits (0, theta), q_b = (b + sigmoid(theta / tau)) / 2 and

        g(b) = 2 (b - t) [2 q_b (1 - q_b) - s (1 - s) / 2],   E g = s g(1) + (1 - s) g(0)

    (estimators/reinmax.py: 2 J(pi_1)^T - J(pi_0)^T / 2 applied to df/dD). Off-centre points, tau >= 1."""
    t = 0.45
    for problem, theta, tau in (("tucker-0.45@theta=-2", -2.0, 1.0), ("tucker-0.45@theta=-2", -2.0, 2.0),
                                ("tucker-0.45@theta=1", 1.0, 1.5)):
        s, soft = _sigmoid(theta), _sigmoid(theta / tau)

        def g(b):
            q = (b + soft) / 2
            return 2 * (b - t) * (2 * q * (1 - q) - s * (1 - s) / 2)

        expected = s * g(1) + (1 - s) * g(0)
        estimates = draw("reinmax", problem, 20_000, 1, seed=21, hparams={"tau": tau})[:, 0]
        se = float(estimates.std()) / len(estimates) ** 0.5
        assert abs(float(estimates.mean()) - expected) < Z * se, (problem, tau, float(estimates.mean()), expected, se)


@pytest.mark.statistical(checks=2)
def test_rebar_is_unbiased_at_every_control_variate_scale():
    """REBAR is unbiased for any eta (Tucker et al. 2017), but the registry-wide check runs at its default eta = 1,
    where a mutation that dropped eta from the score term is exact: checked at eta = 0.5 and 0, off-centre."""
    exact = get_problem("quadratic-4@scale=3").exact_gradient()
    for eta in (0.5, 0.0):
        estimates = draw("rebar", "quadratic-4@scale=3", 20_000, 1, seed=23, hparams={"eta": eta})
        assert max_abs_z(estimates, exact) < bonferroni_z(ALPHA, exact.numel()), eta


@pytest.mark.statistical(checks=3)
def test_nvil_baseline_lowers_reinforce_variance_after_warm_up():
    """NVIL's learned baseline keeps REINFORCE unbiased whatever it is, so only its variance shows whether it
    subtracts what it learned (f - b; a mutation to f + b passed every unbiasedness test): after the warm-up
    the sweep gives it, its variance is below plain REINFORCE's at S = 1, on three families, off-centre."""
    for objective in ("tucker-0.45@theta=-2", "quadratic-4@scale=3", "gauss-square-3@mu=-0.5,sigma=0.5"):
        plain = variance_and_se(draw("reinforce", objective, 20_000, 1, seed=24))
        nvil = variance_and_se(draw("reinforce_nvil", objective, 20_000, 1, seed=25))
        assert plain[0] - nvil[0] > Z * (plain[1] ** 2 + nvil[1] ** 2) ** 0.5, (objective, plain, nvil)
