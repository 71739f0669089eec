"""Registry-wide conformance: every registered estimator on every compatible objective.

A new estimator is picked up here with no test edited.
"""
import pytest
import torch

import estimators
from benchmarks.objectives import list_objectives
from tests.conftest import DEVICES, samples_for

CASES = [(spec.name, objective.id)
         for spec in estimators.list_estimators()
         for objective in list_objectives()
         if objective.family in spec.families]


def surrogate_and_grads(name, objective_id, device, dtype, seed, n=16):
    from benchmarks.objectives import get_objective

    spec = estimators.get_spec(name)
    objective = get_objective(objective_id)
    torch.manual_seed(seed)
    params = objective.batched_point(n, device, dtype)
    try:
        surrogate = spec.make()(objective.cost, objective.distribution(params, validate_args=True),
                                num_samples=samples_for(spec, 3), **spec.hparams)
    except estimators.NotApplicableError as reason:  # e.g. exact on 2^128 states
        pytest.skip(str(reason))
    grads = torch.autograd.grad(surrogate.mean(0).sum(), list(params.values()), allow_unused=True)
    return surrogate, grads, params


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name,objective_id", CASES)
def test_shape_device_dtype_finite(name, objective_id, device, dtype):
    surrogate, grads, params = surrogate_and_grads(name, objective_id, device, dtype, seed=1)
    assert surrogate.shape == (samples_for(estimators.get_spec(name), 3), 16)
    assert surrogate.device.type == device and surrogate.dtype == dtype
    assert torch.isfinite(surrogate).all()
    assert any(g is not None for g in grads)
    for g, p in zip(grads, params.values()):
        if g is not None:
            assert g.shape == p.shape and g.dtype == dtype and g.device.type == device
            assert torch.isfinite(g).all()


@pytest.mark.parametrize("name,objective_id", CASES)
def test_same_seed_same_numbers(name, objective_id):
    first, grads_a, _ = surrogate_and_grads(name, objective_id, "cpu", torch.float32, seed=7)
    second, grads_b, _ = surrogate_and_grads(name, objective_id, "cpu", torch.float32, seed=7)
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    for a, b in zip(grads_a, grads_b):
        if a is not None:
            torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("name,objective_id", CASES)
def test_rows_are_independent(name, objective_id):
    """Row i of the batched gradient depends only on row i: perturbing row 0's cost leaves the rest."""
    from benchmarks.objectives import get_objective

    spec = estimators.get_spec(name)
    objective = get_objective(objective_id)
    params = objective.batched_point(4, "cpu", torch.float64)
    dist = objective.distribution(params, validate_args=True)
    torch.manual_seed(3)
    try:
        surrogate = spec.make()(objective.cost, dist, num_samples=samples_for(spec, 3), **spec.hparams)
    except estimators.NotApplicableError as reason:
        pytest.skip(str(reason))
    first = torch.autograd.grad(surrogate.mean(0).sum(), list(params.values()), allow_unused=True, retain_graph=True)
    scale = torch.tensor([5.0, 1.0, 1.0, 1.0], dtype=torch.float64)
    second = torch.autograd.grad((surrogate.mean(0) * scale).sum(), list(params.values()), allow_unused=True)
    for a, b in zip(first, second):
        if a is not None:
            torch.testing.assert_close(a[1:], b[1:])
