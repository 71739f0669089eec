"""The registry adds no measurable cost: each built-in estimator against a minimal hand-written
PyTorch version of itself (tests/benchmarks/handwritten.py), at S = 1 and S = 10,000, on one
objective per family. Goal at S = 10,000 (tests/benchmarks/goals.py): registry s / hand-written s
<= 1.15, judged on the interval of the paired ratio (benchmarks.speed_goals); at S = 1, where a call
lasts a few hundred microseconds and the fixed cost of torch.distributions objects and the surrogate
can exceed 15%, the ratio is recorded with its interval, not judged.
Estimators without a hand-written yardstick are reported as skipped.
"""
import time

import pytest
import torch

import estimators
from benchmarks.tasks import get_problem as get_objective
from benchmarks.speed_goals import measure_ratio, pairs_within
from benchmarks.throughput import ThroughputCase, prepare
from tests.benchmarks.goals import REGISTRY_OVERHEAD
from tests.benchmarks.handwritten import HANDWRITTEN

BUDGET_S = 6.0  # per case: the slowest S = 10,000 cases (~0.2 s a call) get 8 pairs, fast ones 30
CALLS_PER_TURN = 2
OBJECTIVE_BY_FAMILY = {"bernoulli": "poly-2", "categorical": "quadratic-8", "normal": "gauss-square-3"}
CASES = [(spec.name, objective_id, s)
         for spec in estimators.list_estimators(include_reference=False)
         for family, objective_id in OBJECTIVE_BY_FAMILY.items() if spec.supports(family)
         for s in (1, 10_000) if s >= spec.min_samples]


@pytest.mark.parametrize("name,objective_id,n_samples", CASES)
def test_registry_overhead(benchmark, speed_goal, name, objective_id, n_samples):
    if name not in HANDWRITTEN:
        pytest.skip(f"no hand-written version of {name} to compare with")
    objective = get_objective(objective_id)
    spec = estimators.get_spec(name)
    registry_draw, n = prepare(ThroughputCase(name, objective_id, n_samples, "cpu"), objective)
    hand = HANDWRITTEN[name]()
    hparams = dict(spec.hparams)

    def handwritten_draw():
        params = objective.batched_point(n)
        loss = hand(objective.cost, params, objective.family, n_samples, **hparams)
        return torch.autograd.grad(loss, list(params.values()), allow_unused=True)

    start = time.perf_counter()
    registry_draw(), handwritten_draw()  # also sizes the measurement: a pair is 2 sides x (1 warm + calls)
    pairs = pairs_within(BUDGET_S, (1 + CALLS_PER_TURN) * (time.perf_counter() - start))
    benchmark.group = "speed goals: registry vs hand-written (seconds of the whole measurement)"
    measurement = benchmark.pedantic(measure_ratio, args=(registry_draw, handwritten_draw, pairs),
                                     kwargs={"calls_per_turn": CALLS_PER_TURN}, rounds=1, iterations=1)
    benchmark.extra_info.update(estimates_per_call=n, n_samples=n_samples, objective=objective_id)
    speed_goal(REGISTRY_OVERHEAD[n_samples].case(f"{name}, {objective_id}"), measurement)
