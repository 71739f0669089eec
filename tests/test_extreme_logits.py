"""Categorical logits far apart, and masked classes (logit -inf, the usual way to forbid an action).

Every estimator that takes a one-hot categorical gives finite estimates there, a masked class gets a
gradient of exactly 0, and the unbiased ones stay unbiased. Found in a review: REBAR's and RELAX's
conditional Gumbels were computed as -log(-log(v_k) / theta_k - log v_b), whose 1 / theta_k overflows in
float32 once a logit lies about 88 below the largest (709 in float64), giving nan on every row; a masked
class gave nan in REBAR, RELAX, Gumbel-Rao and ReinMax (-inf - (-inf)), and poisoned NVIL's baseline
network for good (its weights nan after one step).
"""
import math

import pytest
import torch
import torch.distributions as D

import estimators
from benchmarks.harness import draw_estimates, warm_up
from benchmarks.tasks.protocol import ClosedFormProblem
from tests.helpers import ALPHA, bonferroni_z, max_abs_z

WEIGHTS = torch.tensor([0.3, -1.0, 2.0, 0.1], dtype=torch.float64)
MASKED = (1.0, -math.inf, 0.3, -0.5)
CATEGORICAL = [spec.name for spec in estimators.list_estimators(include_reference=True)
               if spec.supports(D.OneHotCategorical)]
UNBIASED = [name for name in CATEGORICAL if estimators.get_spec(name).unbiased and name != "exact"]


def categorical_problem(logits) -> ClosedFormProblem:
    """E[(w . z)^2] over one-hot z ~ Categorical(softmax(logits)), exact by enumerating the 4 classes."""
    logits = torch.tensor(logits, dtype=torch.float64)

    def cost(z):
        return (z * WEIGHTS.to(z.dtype)).sum(-1).square()

    return ClosedFormProblem(
        id="extreme-logits", family="categorical", description="a weighted one-hot, squared",
        point=lambda: {"logits": logits},
        make_distribution=lambda p, validate: D.OneHotCategorical(logits=p["logits"], validate_args=validate),
        cost=cost, expected_cost=lambda p: (torch.softmax(p["logits"], -1) * WEIGHTS.square()).sum())


def estimates(name, logits, n, dtype, seed=0):
    """n estimates through the harness (a stateful estimator warmed up first, as in the sweep)."""
    spec = estimators.get_spec(name)
    problem = categorical_problem(logits)
    n_samples = max(2, spec.min_samples)
    torch.manual_seed(seed)
    estimator = spec.make()
    warm_up(spec, estimator, problem, n_samples, "cpu", dtype, n, validate_args=True)
    return draw_estimates(estimator, problem, n, n_samples, "cpu", dtype, validate_args=True), problem


# exp(88) overflows float32 and exp(710) float64: one logit 100 (800) below the largest.
@pytest.mark.parametrize("dtype, gap", [(torch.float32, 100.0), (torch.float64, 800.0)], ids=["float32", "float64"])
@pytest.mark.parametrize("name", CATEGORICAL)
def test_finite_where_one_logit_lies_far_below_the_others(name, dtype, gap):
    grads, _ = estimates(name, (1.0, -gap, 0.3, -0.5), 500, dtype)
    assert torch.isfinite(grads).all(), f"{name}: {int((~torch.isfinite(grads).all(-1)).sum())} of 500 rows not finite"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", CATEGORICAL)
def test_a_masked_class_gets_no_nan_and_no_gradient(name, dtype):
    grads, _ = estimates(name, MASKED, 500, dtype)
    assert torch.isfinite(grads).all(), f"{name}: {int((~torch.isfinite(grads).all(-1)).sum())} of 500 rows not finite"
    assert (grads[:, 1] == 0).all()


@pytest.mark.statistical
@pytest.mark.parametrize("name", UNBIASED)
def test_unbiased_estimators_stay_unbiased_with_a_masked_class(name):
    """One z-test per estimator at level ALPHA, Bonferroni over the 3 classes that are not masked (the masked
    one is exactly 0, checked above)."""
    grads, problem = estimates(name, MASKED, 20_000, torch.float64, seed=1)
    kept = [0, 2, 3]
    assert max_abs_z(grads[:, kept], problem.exact_gradient()[kept]) < bonferroni_z(ALPHA, len(kept))
