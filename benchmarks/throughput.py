"""Throughput cases: one timed call draws a batch of gradient estimates, as the sweep does.

Shared by the pytest-benchmark suite (tests/benchmarks/test_throughput.py) and anything else that
times an estimator, so that throughput and the sweep's cost columns come from the same code path
(`benchmarks.harness.estimate_chunk`) and the same timing rules (`benchmarks.timing`).
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import torch

import estimators
from benchmarks.harness import estimate_chunk
from benchmarks.tasks import GradientProblem, list_problems
from benchmarks.timing import synchronize

THROUGHPUT_SAMPLES = (1, 100, 10_000)
BATCH = 1000  # estimates per timed call, fewer where S x event size would exceed ELEMENT_BUDGET
ELEMENT_BUDGET = 2 ** 20  # sample elements per timed call: keeps the S = 10,000 cases short


@dataclasses.dataclass(frozen=True)
class ThroughputCase:
    estimator: str
    objective: str
    n_samples: int
    device: str

    @property
    def case_id(self) -> str:
        return f"{self.estimator}-{self.objective}-S{self.n_samples}-{self.device}"


def available_devices() -> list[str]:
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def all_cases(samples=THROUGHPUT_SAMPLES, devices=None) -> list[ThroughputCase]:
    """Every registered (non-reference) estimator on every compatible objective, S and device.

    Throughput does not depend on the evaluation point, so only the symmetric points are timed."""
    devices = devices or available_devices()
    return [ThroughputCase(spec.name, objective.id, s, device)
            for spec in estimators.list_estimators(include_reference=False)
            for objective in list_problems() if "@" not in objective.id and spec.supports(objective.distribution_type)
            for s in samples if s >= spec.min_samples
            for device in devices]


def prepare(case: ThroughputCase, objective: GradientProblem) -> tuple[Callable[[], torch.Tensor], int]:
    """A zero-argument function drawing one batch of estimates (synchronized), and the batch size."""
    spec = estimators.get_spec(case.estimator)
    estimator = spec.make()
    n = max(1, min(BATCH, ELEMENT_BUDGET // (case.n_samples * objective.sample_numel)))

    def draw(batch: int = n) -> torch.Tensor:
        grads = estimate_chunk(estimator, objective, batch, case.n_samples, case.device, torch.float32)
        synchronize(case.device)  # inside the timed function: CUDA work must finish before the clock stops
        return grads

    for _ in range(spec.warmup_calls):  # a stateful estimator's state settles on small batches
        draw(1)
    return draw, n
