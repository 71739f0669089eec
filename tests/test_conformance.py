"""Registry-wide conformance: every registered estimator on every compatible problem, at every point.

A new estimator is picked up here with no test edited. The checks are functions of (spec, problem),
so the last test can run them on a deliberately broken estimator and see them fail.
"""
import pytest
import torch

import estimators
from benchmarks.harness import surrogate_and_gradients
from benchmarks.tasks import get_problem, list_problems
from estimators.surrogates import score_function_surrogate
from tests.helpers import DEVICES, Z, samples_for

CASES = [(spec.name, problem.id)
         for spec in estimators.list_estimators()
         for problem in list_problems(["*"])  # every registered point, default sweep or not
         if spec.supports(problem.distribution_type)]
UNBIASED_CASES = [(name, pid) for name, pid in CASES
                  if estimators.get_spec(name).unbiased and not estimators.get_spec(name).is_reference]


def surrogate_and_grads(spec, problem, device, dtype, seed, n=16, n_samples=None):
    torch.manual_seed(seed)
    n_samples = samples_for(spec, 3) if n_samples is None else n_samples
    try:
        return surrogate_and_gradients(spec.make(), problem, n, n_samples, device, dtype,
                                       validate_args=True)
    except estimators.NotApplicableError as reason:  # e.g. exact on 2^128 states
        pytest.skip(str(reason))


def check_shape_device_dtype_finite(spec, problem, device, dtype, n_samples):
    surrogate, grads = surrogate_and_grads(spec, problem, device, dtype, seed=1, n_samples=n_samples)
    assert surrogate.shape[:2] == (n_samples, 16)
    assert surrogate.device.type == device and surrogate.dtype == dtype
    assert torch.isfinite(surrogate).all(), f"{spec.name} gives non-finite surrogate values at S={n_samples}"
    assert grads.shape == (16, problem.n_params) and grads.dtype == dtype and grads.device.type == device
    assert torch.isfinite(grads).all(), f"{spec.name} gives non-finite gradients at S={n_samples}"


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name,problem_id", CASES)
def test_shape_device_dtype_finite(name, problem_id, device, dtype):
    spec = estimators.get_spec(name)
    check_shape_device_dtype_finite(spec, get_problem(problem_id), device, dtype, samples_for(spec, 3))


@pytest.mark.parametrize("name,problem_id", CASES)
def test_finite_at_the_declared_minimum_samples(name, problem_id):
    """An estimator gives finite values at its declared minimum S (a leave-one-out baseline that forgot to
    declare S >= 2 divides by zero at S = 1)."""
    spec = estimators.get_spec(name)
    check_shape_device_dtype_finite(spec, get_problem(problem_id), "cpu", torch.float64, spec.min_samples)


@pytest.mark.parametrize("name,problem_id", CASES)
def test_same_seed_same_numbers_and_another_seed_other_numbers(name, problem_id):
    spec, problem = estimators.get_spec(name), get_problem(problem_id)
    first, grads_a = surrogate_and_grads(spec, problem, "cpu", torch.float32, seed=7)
    second, grads_b = surrogate_and_grads(spec, problem, "cpu", torch.float32, seed=7)
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    torch.testing.assert_close(grads_a, grads_b, rtol=0, atol=0)
    # Enumeration draws nothing, and at a symmetric point an estimator can be exact (DisARM on Tucker's
    # toy at theta = 0): only an estimator whose rows differ must differ between seeds.
    if not (grads_a == grads_a[:1]).all():
        _, grads_c = surrogate_and_grads(spec, problem, "cpu", torch.float32, seed=8)
        assert not torch.equal(grads_a, grads_c), f"{name} gives the same estimates for seeds 7 and 8"


@pytest.mark.parametrize("name,problem_id", CASES)
def test_gradient_is_nonzero_where_the_exact_one_is(name, problem_id):
    """Over 256 estimates, every coordinate whose exact gradient is not zero gets a non-zero estimate."""
    spec, problem = estimators.get_spec(name), get_problem(problem_id)
    _, grads = surrogate_and_grads(spec, problem, "cpu", torch.float64, seed=2, n=256)
    exact = problem.exact_gradient()
    moving = exact.abs() > 1e-9 * float(exact.abs().max())
    silent = moving & (grads.abs().amax(0) == 0)
    assert not silent.any(), f"{name} on {problem_id}: zero estimate for coordinates {silent.nonzero().flatten().tolist()}"


@pytest.mark.statistical
@pytest.mark.parametrize("name,problem_id", UNBIASED_CASES)
def test_unbiased_surrogate_value_is_the_expected_cost(name, problem_id):
    """The forward value of an unbiased estimator's surrogate estimates E[f]: a z-test of the mean of
    4,000 per-row values against the closed form, at level ALPHA."""
    spec, problem = estimators.get_spec(name), get_problem(problem_id)
    surrogate, _ = surrogate_and_grads(spec, problem, "cpu", torch.float64, seed=3, n=4000)
    values = surrogate.detach().mean(0)
    se = float(values.std() / len(values) ** 0.5)
    error = abs(float(values.mean()) - problem.exact_value())
    assert error <= Z * se + 1e-12 * abs(problem.exact_value()), (float(values.mean()), problem.exact_value(), se)


@pytest.mark.parametrize("name,problem_id", CASES)
def test_rows_are_independent(name, problem_id):
    """Row i of the batched gradient depends only on row i: perturbing row 0's cost leaves the rest."""
    spec, problem = estimators.get_spec(name), get_problem(problem_id)
    params = problem.batched_point(4, "cpu", torch.float64)
    dist = problem.distribution(params, validate_args=True)
    torch.manual_seed(3)
    try:
        surrogate = spec.make()(problem.cost, dist, num_samples=samples_for(spec, 3))
    except estimators.NotApplicableError as reason:
        pytest.skip(str(reason))
    first = torch.autograd.grad(surrogate.mean(0).sum(), list(params.values()), allow_unused=True, retain_graph=True)
    scale = torch.tensor([5.0, 1.0, 1.0, 1.0], dtype=torch.float64)
    second = torch.autograd.grad((surrogate.mean(0) * scale).sum(), list(params.values()), allow_unused=True)
    for a, b in zip(first, second):
        if a is not None:
            torch.testing.assert_close(a[1:], b[1:])


def test_the_checks_catch_a_leave_one_out_baseline_without_its_minimum_samples():
    """A new user's mistake: leave-one-out written out, registered without min_samples=2. At S = 1 it
    divides 0 by 0, and the minimum-S check must say so."""

    def forgetful_loo(f, dist, num_samples=1):
        z = dist.sample((num_samples,))
        cost = f(z)
        baseline = (cost.sum(0, keepdim=True) - cost) / (num_samples - 1)  # 0 / 0 at S = 1
        return score_function_surrogate(cost, dist.log_prob(z), baseline)

    estimators.register("forgetful_loo", families=("bernoulli",), unbiased=True, summary="test", reference="-")(
        forgetful_loo)
    try:
        spec = estimators.get_spec("forgetful_loo")
        with pytest.raises(AssertionError, match="non-finite"):
            check_shape_device_dtype_finite(spec, get_problem("tucker-0.45@theta=-2"), "cpu", torch.float64,
                                            spec.min_samples)
        check_shape_device_dtype_finite(spec, get_problem("tucker-0.45@theta=-2"), "cpu", torch.float64, 2)
    finally:
        estimators.unregister("forgetful_loo")
