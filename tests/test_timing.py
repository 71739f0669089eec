import time

import pytest
import torch

from benchmarks.timing import measure, peak_memory


def test_measure_records_spread_and_repeats():
    timing = measure(lambda: time.sleep(0.002), min_repeats=4, min_time_s=0)
    assert timing.repeats == 4 and timing.min_s <= timing.median_s <= timing.max_s
    assert timing.min_s >= 0.002


def test_warm_up_calls_are_not_timed():
    calls = []

    def slow_first():
        calls.append(1)
        time.sleep(0.05 if len(calls) == 1 else 0.001)

    timing = measure(slow_first, warmup=1, min_repeats=3, min_time_s=0)
    assert timing.max_s < 0.04


def test_cpu_peak_memory_sees_a_large_allocation():
    small, _ = peak_memory(lambda: torch.ones(10), "cpu")
    large, kind = peak_memory(lambda: torch.ones(64 * 2 ** 20).add_(1), "cpu")  # 256 MiB, touched
    assert "cpu" in kind and large - small > 200 * 2 ** 20


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_timing_and_memory():
    x = torch.randn(4096, 4096, device="cuda")
    timing = measure(lambda: x @ x, "cuda", memory=True)
    assert timing.median_s > 0 and timing.peak_memory_bytes >= 2 * 4096 * 4096 * 4
