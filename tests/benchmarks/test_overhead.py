"""The registry adds no measurable cost: each built-in estimator against a minimal hand-written
PyTorch version of itself (tests/benchmarks/handwritten.py), at S = 1 and S = 10,000, on one
objective per family, interleaved in one run. Goal: registry time <= 1.15 x hand-written time.
Estimators without a hand-written yardstick are reported as such, not silently passed.
"""
import pytest
import torch

import estimators
from benchmarks.objectives import get_objective
from benchmarks.throughput import ThroughputCase, prepare
from benchmarks.timing import measure
from tests.benchmarks.handwritten import HANDWRITTEN

OBJECTIVE_BY_FAMILY = {"bernoulli": "poly-2", "categorical": "quadratic-8", "normal": "gauss-square-3"}
CASES = [(spec.name, objective_id, s)
         for spec in estimators.list_estimators(include_reference=False)
         for family, objective_id in OBJECTIVE_BY_FAMILY.items() if family in spec.families
         for s in (1, 10_000) if s >= spec.min_samples]


@pytest.mark.parametrize("name,objective_id,n_samples", CASES)
def test_registry_overhead(benchmark, name, objective_id, n_samples):
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

    benchmark.group = f"registry vs hand-written: {objective_id} S={n_samples}"
    benchmark(registry_draw)
    ours, theirs = [], []
    for _ in range(5):  # interleaved, so machine noise hits both alike
        ours.append(measure(registry_draw, min_repeats=5, min_time_s=0.05).median_s)
        theirs.append(measure(handwritten_draw, min_repeats=5, min_time_s=0.05).median_s)
    ratio = sorted(ours)[2] / sorted(theirs)[2]
    benchmark.extra_info.update(registry_s=sorted(ours)[2], handwritten_s=sorted(theirs)[2], ratio=ratio,
                                estimates_per_call=n)
    print(f"\n{name} {objective_id} S={n_samples}: registry / hand-written = {ratio:.3f}")
    assert ratio <= 1.15
