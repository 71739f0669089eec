"""The README's main command on each executor, side by side: `pytest --benchmark-only -s
tests/benchmarks/test_executor_speed.py`.

In process, on a local pool of 2 workers and on a local Ray instance with 2 CPUs, one after another (each
25-45 s on 2 cores), report included. One run each gives ratios without an interval, so the goals
(tests/benchmarks/goals.py) are recorded, never decisive; the README's scaling section has repeated runs.
"""
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.speed_goals import RatioMeasurement
from tests.benchmarks.goals import POOL_VS_IN_PROCESS, RAY_VS_POOL

ROOT = Path(__file__).parents[2]
EXECUTORS = {"in-process": [], "pool": ["--workers", "2"], "ray": ["--executor", "ray", "--workers", "2"]}


def test_main_command_on_a_pool_and_on_ray_against_in_process(benchmark, speed_goal, tmp_path):
    seconds = {}

    def run_all():
        for name, options in EXECUTORS.items():
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "benchmarks.variance", "--tau", "0.1", "1.0", *options,
                            "--out", str(tmp_path / name)], check=True, cwd=ROOT, capture_output=True)
            seconds[name] = time.perf_counter() - start

    benchmark.group = "main command by executor"
    benchmark.pedantic(run_all, rounds=1, iterations=1)
    benchmark.extra_info.update(seconds=seconds)
    print("\n" + ", ".join(f"{name} {s:.1f} s" for name, s in seconds.items()))
    speed_goal(POOL_VS_IN_PROCESS, RatioMeasurement.single_run(seconds["in-process"], seconds["pool"]))
    speed_goal(RAY_VS_POOL, RatioMeasurement.single_run(seconds["ray"], seconds["pool"]))
