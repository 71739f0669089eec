"""GRPO and Dr. GRPO (estimators/group_baselines.py) against their closed forms, on every family.

Dr. GRPO is RLOO times (S - 1) / S sample by sample (checked exactly, same seed, same samples), so its mean
is (S - 1) / S times the exact gradient (z-tests). GRPO's mean on a binary cost is c_S(p) times the exact
gradient (the module's closed form, z-tests), and its bias is significant where that theory says so.
Statistical checks at level ALPHA each (tests/helpers.py): 1 (Dr. GRPO on a toy) + 2 (GRPO on Tucker's toy)
= 3 in this file; the sequence problems' checks are in tests/test_sequences.py.
"""
import math

import pytest
import torch

import estimators
from benchmarks.harness import surrogate_and_gradients
from benchmarks.tasks import get_problem
from estimators.group_baselines import binary_reward_scale, group_normalised_advantage
from tests.helpers import ALPHA, bonferroni_z, draw, max_abs_z

N = 20_000


def gradients(name, problem_id, n, n_samples, seed, dtype=torch.float64, **hparams):
    torch.manual_seed(seed)
    return surrogate_and_gradients(estimators.get(name, **hparams), get_problem(problem_id), n, n_samples,
                                   "cpu", dtype, validate_args=True)[1]


@pytest.mark.parametrize("problem_id", ["tucker-0.45@theta=-2", "quadratic-4@scale=3", "gauss-square-3@mu=-0.5,sigma=0.5",
                                        "poisson-exp-1@rate=4", "seq-modsum@length=3,steps=10"])
@pytest.mark.parametrize("n_samples", [2, 3, 8])
def test_drgrpo_is_rloo_times_s_minus_one_over_s(problem_id, n_samples):
    """Same seed, same samples: the group mean including the sample itself gives (f_i - mean) =
    ((S - 1) / S)(f_i - leave-one-out mean), estimate by estimate, in every family."""
    rloo = gradients("reinforce_loo", problem_id, 64, n_samples, seed=3)
    drgrpo = gradients("reinforce_drgrpo", problem_id, 64, n_samples, seed=3)
    torch.testing.assert_close(drgrpo, rloo * (n_samples - 1) / n_samples, rtol=1e-10, atol=1e-12)
    assert rloo.abs().max() > 0


@pytest.mark.statistical(checks=1)
def test_drgrpo_mean_is_the_scaled_exact_gradient_on_a_toy():
    """At S = 2 Dr. GRPO's mean is half the exact gradient (a z-test per coordinate, Bonferroni, level ALPHA)."""
    problem = get_problem("quadratic-4@scale=3")
    estimates = draw("reinforce_drgrpo", problem.id, N, 2, seed=21)
    assert max_abs_z(estimates, problem.exact_gradient() / 2) < bonferroni_z(ALPHA, problem.n_params)


@pytest.mark.statistical(checks=2)
def test_grpo_on_tuckers_toy_is_the_closed_form_multiple_of_the_gradient():
    """Tucker's cost takes two values 0.1 apart, so at S = 2 GRPO's std is 0.1 / sqrt(2) on every informative
    group and E[g] = g* / (sqrt(2) 0.1 + 2 eps): 7.06 g* at eps = 1e-4. Check 1: the mean matches it; check 2:
    it is significantly far from g* (the estimator is biased). Level ALPHA each."""
    problem = get_problem("tucker-0.45@theta=-2")
    estimates = draw("reinforce_grpo", problem.id, N, 2, seed=22)
    exact = problem.exact_gradient()
    theory = exact / (math.sqrt(2) * 0.1 + 2 * 1e-4)
    assert max_abs_z(estimates, theory) < bonferroni_z(ALPHA, 1)
    assert max_abs_z(estimates, exact) > bonferroni_z(ALPHA, 1)


def test_group_normalised_advantage_is_the_standard_score():
    cost = torch.tensor([[1.0, 0.0], [0.0, 0.0], [3.0, 0.0]])            # S = 3 samples, 2 groups
    advantage = group_normalised_advantage(cost, eps=0.0)
    centred = torch.tensor([-1 / 3, -4 / 3, 5 / 3])
    torch.testing.assert_close(advantage[:, 0], centred / cost[:, 0].std())  # Bessel's std, as TRL's
    assert torch.equal(advantage[:, 1], torch.zeros(3))                      # equal costs: 0, not 0 / 0
    assert torch.isfinite(group_normalised_advantage(torch.zeros(2, 4), eps=0.0)).all()


def test_binary_reward_scale_matches_its_special_cases():
    for p in (0.04, 0.5, 0.9):
        assert binary_reward_scale(2, p, eps=0.0) == pytest.approx(1 / math.sqrt(2))
        for s in (2, 4, 16):
            assert binary_reward_scale(s, p, normalised=False) == pytest.approx((s - 1) / s)
    # many samples: the std tends to sqrt(p (1 - p)), so GRPO tends to g* / sqrt(p (1 - p))
    assert binary_reward_scale(2000, 0.3, eps=0.0) == pytest.approx(1 / math.sqrt(0.21), rel=2e-3)


@pytest.mark.parametrize("name", ["reinforce_grpo", "reinforce_drgrpo"])
def test_a_group_of_one_is_refused_naming_the_value(name):
    problem = get_problem("seq-count@length=3")
    dist = problem.distribution(problem.batched_point(2), validate_args=True)
    with pytest.raises(estimators.NotApplicableError, match=rf"{name} needs num_samples >= 2, got 1 "
                                                             r"\(a group baseline compares each sample"):
        estimators.get(name)(problem.cost, dist, num_samples=1)
    spec = estimators.get_spec(name)
    assert spec.min_samples == 2 and not spec.unbiased and spec.needs == ("log_prob",)
    assert spec.supports("bernoulli") and spec.supports("normal") and spec.supports("autoregressive")


def test_grpo_epsilon_is_a_checked_hyperparameter():
    assert estimators.get_spec("reinforce_grpo").hparams == {"eps": 1e-4}
    with pytest.raises(estimators.HyperparameterError, match=r"eps=-0.1 breaks its constraint eps >= 0"):
        estimators.get("reinforce_grpo", eps=-0.1)
    estimators.get("reinforce_grpo", eps=0.0)  # allowed: equal costs give advantage 0
