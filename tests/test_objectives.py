"""The objectives' exact values and gradients, checked by independent routes."""
import math

import pytest
import torch
from scipy import integrate

import estimators
from benchmarks.objectives import UnknownObjectiveError, get_objective, list_objectives


@pytest.mark.parametrize("objective_id", ["tucker-0.45", "tucker-0.499", "quadratic-4", "quadratic-8", "quadratic-12"])
def test_closed_form_matches_enumeration(objective_id):
    """The `exact` estimator enumerates the support of the cost itself; the closed form must agree."""
    objective = get_objective(objective_id)
    params = objective.batched_point(1, dtype=torch.float64)
    surrogate = estimators.get("exact")(objective.cost, objective.distribution(params, True))
    grads = torch.autograd.grad(surrogate.mean(0).sum(), list(params.values()))
    enumerated = torch.cat([g.reshape(-1) for g in grads])
    torch.testing.assert_close(enumerated, objective.exact_gradient(), rtol=1e-10, atol=1e-12)
    assert float(surrogate[0, 0].detach()) == pytest.approx(objective.exact_value(), rel=1e-10)


def test_tucker_gradient_is_the_published_formula():
    for t in (0.45, 0.499):
        assert float(get_objective(f"tucker-{t}").exact_gradient()) == pytest.approx((1 - 2 * t) * 0.25)


def test_polynomial_per_bit_closed_form():
    for p in (1.5, 2.0, 3.0):
        grad = get_objective(f"poly-{p:g}").exact_gradient()
        assert grad.shape == (128,)
        torch.testing.assert_close(grad, torch.full((128,), 0.25 * (0.55 ** p - 0.45 ** p) / 128, dtype=torch.float64))


@pytest.mark.parametrize("objective_id", ["gauss-square-3", "gauss-exp-1", "gauss-cos-2"])
def test_gaussian_closed_forms_match_quadrature(objective_id):
    """E[f] by numerical integration against N(mu, sigma), and its gradient by central differences."""
    objective = get_objective(objective_id)

    def quadrature(mu, sigma):
        density = lambda x: math.exp(-0.5 * ((x - mu) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
        f = lambda x: float(objective.cost(torch.tensor(x, dtype=torch.float64)))
        return integrate.quad(lambda x: f(x) * density(x), mu - 12 * sigma, mu + 12 * sigma, limit=200)[0]

    assert quadrature(1.0, 1.0) == pytest.approx(objective.exact_value(), rel=1e-7, abs=1e-9)
    h = 1e-4
    numeric = [(quadrature(1 + h, 1) - quadrature(1 - h, 1)) / (2 * h),
               (quadrature(1, 1 + h) - quadrature(1, 1 - h)) / (2 * h)]
    torch.testing.assert_close(objective.exact_gradient(), torch.tensor(numeric, dtype=torch.float64),
                               rtol=1e-5, atol=1e-6)


def test_objectives_record_their_settings_and_point():
    record = get_objective("quadratic-8").record()
    assert record["k"] == 8 and record["seed"] == 8 and len(record["point"]["logits"]) == 8
    assert get_objective("tucker-0.45").record() == {"t": 0.45, "theta": 0.0, "point": {"logits": [0.0]}}


def test_unknown_objective_suggests():
    with pytest.raises(UnknownObjectiveError, match="Did you mean 'tucker-0.45'"):
        get_objective("tuker-0.45")
    assert [o.id for o in list_objectives(["gauss-*"])] == ["gauss-square-3", "gauss-exp-1", "gauss-cos-2"]
