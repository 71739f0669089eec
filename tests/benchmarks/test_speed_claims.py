"""Speed goals of the core (tests/benchmarks/goals.py), each measured as a ratio with an interval.

Skipped in the plain test run (pyproject's addopts has --benchmark-skip). Each test times both sides
in interleaved turns and hands the paired ratio and its interval (benchmarks.speed_goals) to the
`speed_goal` fixture, which records it in extra_info and the session's goal table; pytest-benchmark
times the whole measurement. Absolute times depend on the machine, ratios less.
"""
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import estimators
from benchmarks.harness import estimate_chunk
from benchmarks.tasks import get_problem as get_objective
from benchmarks.speed_goals import RatioMeasurement, measure_ratio
from tests.benchmarks.goals import DEFAULT_SWEEP, GUMBEL_SOFTMAX_VS_FUNCTIONAL, VECTORISED_VS_LOOP

N = 10_000
LOOP_SHARE = 10  # the loop side runs N / 10 iterations a call: a loop's cost is linear in its length
LOOP_CASES = [("reinforce", "tucker-0.45"), ("gumbel_softmax", "quadratic-8"), ("pathwise", "gauss-square-3")]


@pytest.mark.parametrize("name,objective_id", LOOP_CASES)
def test_vectorised_estimates_vs_python_loop(benchmark, speed_goal, name, objective_id):
    """N = 10,000 estimates drawn at once against a Python loop over N one-estimate calls. The loop is
    timed over N / 10 calls and its time multiplied by 10 (scale), so a pair of turns takes ~0.3 s (10 pairs),
    not ~3 s; each of its calls is the same independent work, so the loop's time is linear in N."""
    spec, objective = estimators.get_spec(name), get_objective(objective_id)
    estimator = spec.make()

    def vectorised():
        return estimate_chunk(estimator, objective, N, 1, "cpu", torch.float32)

    def loop_share():
        return [estimate_chunk(estimator, objective, 1, 1, "cpu", torch.float32)
                for _ in range(N // LOOP_SHARE)]

    benchmark.group = "speed goals: vectorised vs loop (seconds of the whole measurement)"
    measurement = benchmark.pedantic(measure_ratio, args=(loop_share, vectorised, 10),
                                     kwargs={"calls_per_turn": 1, "scale": LOOP_SHARE}, rounds=1, iterations=1)
    speed_goal(VECTORISED_VS_LOOP.case(f"{name}, {objective_id}"), measurement)


@pytest.mark.parametrize("objective_id", ["quadratic-4", "quadratic-12"])
def test_gumbel_softmax_vs_functional_gumbel_softmax(benchmark, speed_goal, objective_id):
    """At S = 10,000 the registry's Gumbel-Softmax against one built on F.gumbel_softmax (goal >= 1.5x):
    both draw S relaxed samples, cost them and take the gradient; 40 pairs of turns (~1-3 ms a call)."""
    objective, samples, tau = get_objective(objective_id), 10_000, 0.5
    ours = estimators.get("gumbel_softmax")

    def registry_version():
        params = objective.batched_point(1)
        surrogate = ours(objective.cost, objective.distribution(params, False), num_samples=samples, tau=tau)
        return torch.autograd.grad(surrogate.mean(0).sum(), [params["logits"]])

    def functional_version():
        logits = objective.batched_point(1)["logits"]
        relaxed = F.gumbel_softmax(logits.expand(samples, *logits.shape), tau=tau)
        return torch.autograd.grad(objective.cost(relaxed).mean(0).sum(), [logits])

    benchmark.group = "speed goals: Gumbel-Softmax at S = 10,000 (seconds of the whole measurement)"
    measurement = benchmark.pedantic(measure_ratio, args=(functional_version, registry_version, 40),
                                     rounds=1, iterations=1)
    speed_goal(GUMBEL_SOFTMAX_VS_FUNCTIONAL.case(objective_id), measurement)


def test_default_sweep_finishes_in_a_minute(benchmark, speed_goal, tmp_path):
    """`python -m benchmarks.variance --tau 0.1 1.0`, report included, against 60 s: one run (a minute
    each) gives no interval, so the goal is recorded and never decisive."""
    root = Path(__file__).parents[2]
    seconds = []

    def sweep():
        out = tmp_path / f"run{len(seconds)}"
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "benchmarks.variance", "--tau", "0.1", "1.0", "--out", str(out)],
                       check=True, cwd=root, capture_output=True)
        seconds.append(time.perf_counter() - start)

    benchmark.group = "default sweep"
    benchmark.pedantic(sweep, rounds=1, iterations=1)
    benchmark.extra_info.update(seconds=seconds[0])
    speed_goal(DEFAULT_SWEEP, RatioMeasurement.single_run(seconds[0], 60.0))
