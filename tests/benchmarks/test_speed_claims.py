"""Speed goals of the core, measured side by side in one run (`pytest --benchmark-only -s`).

Skipped in the plain test run (pyproject's addopts has --benchmark-skip). Each test times the fast
path with pytest-benchmark and both paths with the harness's own timing (benchmarks.timing), and
records the ratio in the benchmark's extra_info; absolute times depend on the machine, ratios less.
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
from benchmarks.timing import interleaved_medians, measure

N = 10_000
LOOP_CASES = [("reinforce", "tucker-0.45"), ("gumbel_softmax", "quadratic-8"), ("pathwise", "gauss-square-3")]


@pytest.mark.parametrize("name,objective_id", LOOP_CASES)
def test_vectorised_estimates_vs_python_loop(benchmark, name, objective_id):
    """N = 10,000 estimates drawn at once are >= 300x faster than a Python loop over N."""
    spec, objective = estimators.get_spec(name), get_objective(objective_id)
    estimator, hparams = spec.make(), dict(spec.hparams)

    def vectorised():
        return estimate_chunk(estimator, objective, N, 1, hparams, "cpu", torch.float32)

    def loop():
        return [estimate_chunk(estimator, objective, 1, 1, hparams, "cpu", torch.float32) for _ in range(N)]

    benchmark.group = "vectorised vs loop, N = 10,000"
    benchmark(vectorised)
    fast = measure(vectorised, min_repeats=10)
    slow = measure(loop, warmup=0, min_repeats=1, min_time_s=0)
    ratio = slow.median_s / fast.median_s
    benchmark.extra_info.update(loop_s=slow.median_s, vectorised_s=fast.median_s, ratio=ratio)
    print(f"\n{name} on {objective_id}: loop {slow.median_s:.3f} s, vectorised {fast.median_s * 1e3:.2f} ms, ratio {ratio:.0f}x")
    assert ratio >= 300


@pytest.mark.parametrize("objective_id", ["quadratic-4", "quadratic-12"])
def test_gumbel_softmax_vs_functional_gumbel_softmax(benchmark, objective_id):
    """At S = 10,000 the registry's Gumbel-Softmax is >= 1.5x faster than one built on F.gumbel_softmax."""
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

    benchmark.group = "Gumbel-Softmax at S = 10,000"
    benchmark(registry_version)
    registry_s, functional_s = interleaved_medians(registry_version, functional_version, turns=30)
    ratio = functional_s / registry_s
    benchmark.extra_info.update(registry_s=registry_s, functional_s=functional_s, ratio=ratio)
    print(f"\n{objective_id}: F.gumbel_softmax / registry = {ratio:.2f}x")
    assert ratio >= 1.5


def test_default_sweep_finishes_in_a_minute(benchmark, tmp_path):
    """`python -m benchmarks.variance --tau 0.1 1.0`, report included, in under 60 s."""
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
    print(f"\ndefault sweep: {seconds[0]:.1f} s")
    assert seconds[0] < 60
