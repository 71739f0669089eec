import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from benchmarks.timing import measure


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
    """In a fresh process: the CPU figure is the process's peak RSS, so in a long test session a 256 MiB
    tensor can be served from memory the process already holds resident, and the peak then rightly does not
    move (seen once in a CI run: both figures 1,217,540,096 bytes, late in the session; reuse is the likely
    cause, not proven). A new process has no such memory to reuse."""
    code = ("import torch; from benchmarks.timing import peak_memory\n"
            "small, _ = peak_memory(lambda: torch.ones(10), 'cpu')\n"
            "large, kind = peak_memory(lambda: torch.ones(64 * 2 ** 20).add_(1), 'cpu')\n"  # 256 MiB, touched
            "print(small, large, kind)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parents[1]).stdout.split()
    small, large, kind = int(out[0]), int(out[1]), " ".join(out[2:])
    assert "cpu" in kind and large - small > 200 * 2 ** 20, (small, large, kind)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_timing_and_memory():
    x = torch.randn(4096, 4096, device="cuda")
    timing = measure(lambda: x @ x, "cuda", memory=True)
    assert timing.median_s > 0 and timing.peak_memory_bytes >= 2 * 4096 * 4096 * 4


@pytest.mark.skipif(not Path("/proc/self/schedstat").exists() or not hasattr(os, "sched_setaffinity"),
                    reason="a Linux kernel with scheduler statistics only")
def test_a_cell_timed_beside_a_busy_process_on_its_cpu_records_its_wait_and_is_flagged():
    """Pinned to one CPU with a busy loop pinned beside it, a 1-thread timing waits about half the time for
    that CPU: timed_wait_share (its run-queue delay over its thread time) well above the flag's threshold, on
    any number of cores. The load average, a minute behind, would not have caught it."""
    script = (
        "import os, subprocess, sys, time\n"
        "cpu = min(os.sched_getaffinity(0))\n"
        "os.sched_setaffinity(0, {cpu})\n"
        "busy = subprocess.Popen([sys.executable, '-c', f'import os; os.sched_setaffinity(0, {{{cpu}}})\\nwhile True: pass'])\n"
        "try:\n"
        "    time.sleep(0.3)\n"
        "    import torch\n"
        "    torch.set_num_threads(1)\n"
        "    from benchmarks.timing import hygiene_columns, measure\n"
        "    from reports.cost import timing_flag\n"
        "    timed = measure(lambda: sum(range(200_000)), min_time_s=0.5)\n"
        "    row = hygiene_columns(timed.load_avg_start, timed.load_avg_end, timed.cpu_s, timed.wall_s, timed.wait_share)\n"
        "    print(timed.wait_share, timing_flag(row), sep='|')\n"
        "finally:\n"
        "    busy.kill()\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parents[1], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    share, flag = done.stdout.strip().split("|")
    from reports.cost import WAIT_FLAG
    assert float(share) > 2 * WAIT_FLAG, done.stdout
    assert "waited for a CPU" in flag


@pytest.mark.skipif(not Path("/proc/self/schedstat").exists(), reason="a kernel with scheduler statistics only")
def test_the_wait_is_read_where_the_kernel_keeps_it():
    from benchmarks.timing import waiting_seconds
    torch.ones(512, 512) @ torch.ones(512, 512)  # torch's threads exist (and have run) by now
    assert waiting_seconds() >= 0  # not NaN: every thread's schedstat was readable


def test_the_process_filesystem_is_found_where_gradbench_proc_says(tmp_path):
    """Every /proc reader goes through benchmarks.procfs.PROC: pointed at a folder without the files, each
    falls back (no wait known, the lifetime peak, the platform's CPU name) instead of failing."""
    script = ("import torch\n"
              "from benchmarks.machine import cpu_name\n"
              "from benchmarks.timing import peak_memory, waiting_seconds\n"
              "print(waiting_seconds(), peak_memory(lambda: torch.ones(1000), 'cpu')[1], bool(cpu_name()), sep='|')\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parents[1], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "GRADBENCH_PROC": str(tmp_path)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "nan|cpu lifetime peak RSS|True"
