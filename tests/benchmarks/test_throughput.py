"""Throughput of every registered estimator on every compatible objective: `pytest --benchmark-only`.

Cases come from the registry, so a new estimator is benchmarked with no edit here. One benchmark
round is one call drawing a batch of estimates (extra_info["estimates_per_call"]); estimates per
second = estimates_per_call / time per round. Grouped by objective and S; CUDA rows appear when a
GPU is present. Render with: pytest --benchmark-only --benchmark-json=bench.json && python -m reports bench.json
"""
import time

import pytest
import torch

import estimators
from benchmarks.tasks import get_problem as get_objective
from benchmarks.throughput import all_cases, prepare
from benchmarks.timing import peak_memory

TARGET_SECONDS = 0.15  # per case, after warm-up: keeps the whole suite within a few minutes
CASES = all_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.case_id for c in CASES])
def test_throughput(benchmark, case):
    objective = get_objective(case.objective)
    spec = estimators.get_spec(case.estimator)
    draw, per_call = prepare(case, objective)
    start = time.perf_counter()
    draw()  # warm-up: lazy initialisation is not measured; its time sizes the rounds
    rounds = int(min(200, max(3, TARGET_SECONDS / max(time.perf_counter() - start, 1e-9))))
    benchmark.group = f"{case.objective} S={case.n_samples}"
    benchmark.extra_info.update(
        estimator=case.estimator, objective=case.objective, device=case.device,
        device_name=torch.cuda.get_device_name(case.device) if case.device == "cuda" else "cpu",
        n_samples=case.n_samples, f_evals=spec.f_evals_per_estimate(case.n_samples, objective.sample_numel), hparams=dict(spec.hparams),
        estimates_per_call=per_call, torch_version=torch.__version__, threads=torch.get_num_threads(),
    )
    benchmark.pedantic(draw, rounds=rounds, iterations=1)
    peak, kind = peak_memory(draw, case.device)
    benchmark.extra_info.update(peak_memory_bytes=peak, memory_kind=kind)
