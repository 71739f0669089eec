"""The registry adds no measurable cost: each built-in estimator against a minimal hand-written
PyTorch version of itself (tests/benchmarks/handwritten.py), at S = 1 and S = 10,000, on one
objective per family, interleaved in one run. Goal: registry time <= 1.15 x hand-written time.
Each side's figure is the median of 90 calls timed in 30 turns of its own, alternating with the
other's (benchmarks.timing.interleaved_medians).
At S = 1 a call lasts a few hundred microseconds and the fixed cost of building torch.distributions
objects (logit normalisation, broadcasting) and the surrogate's extra elementwise ops can exceed
15%: such cases are reported as xfail with their ratio, not hidden. At S = 10,000 the goal is asserted.
Estimators without a hand-written yardstick are reported as skipped.
"""
import pytest
import torch

import estimators
from benchmarks.tasks import get_problem as get_objective
from benchmarks.throughput import ThroughputCase, prepare
from benchmarks.timing import interleaved_medians
from tests.benchmarks.handwritten import HANDWRITTEN

TURNS = 30
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
    ours, theirs = interleaved_medians(registry_draw, handwritten_draw, turns=TURNS)
    ratio = ours / theirs
    benchmark.extra_info.update(registry_s=ours, handwritten_s=theirs, ratio=ratio, estimates_per_call=n)
    print(f"\n{name} {objective_id} S={n_samples}: registry / hand-written = {ratio:.3f} "
          f"({ours * 1e6:.0f} us vs {theirs * 1e6:.0f} us a call)")
    if n_samples == 1 and ratio > 1.15:
        pytest.xfail(f"ratio {ratio:.2f} on a {theirs * 1e6:.0f} us call: fixed per-call cost of "
                     "torch.distributions objects and the surrogate")
    assert ratio <= 1.15
