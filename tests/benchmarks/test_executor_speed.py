"""The README's main command on each executor, side by side: `pytest --benchmark-only -s
tests/benchmarks/test_executor_speed.py`.

In process against a local pool of 2 workers, and a local Ray instance with 2 CPUs against the pool, one after
another (each 25-45 s on 2 cores), report included. One run each gives ratios without an interval, so the goals
(tests/benchmarks/goals.py) are recorded, never decisive; the README's scaling section has repeated runs.
"""
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.speed_goals import RatioMeasurement
from tests.benchmarks.goals import POOL_VS_IN_PROCESS, RAY_VS_POOL

ROOT = Path(__file__).parents[2]
EXECUTORS = {"in-process": [], "pool": ["--workers", "2"], "ray": ["--executor", "ray", "--workers", "2"]}


def _main_command_s(name: str, out: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "benchmarks.variance", "--tau", "0.1", "1.0", *EXECUTORS[name],
                    "--out", str(out / name)], check=True, cwd=ROOT, capture_output=True)
    return time.perf_counter() - start


@pytest.mark.parametrize("goal,slower,faster", [(POOL_VS_IN_PROCESS, "in-process", "pool"),
                                                (RAY_VS_POOL, "ray", "pool")], ids=["pool-vs-in-process", "ray-vs-pool"])
def test_main_command_on_one_executor_against_another(benchmark, speed_goal, tmp_path, goal, slower, faster):
    seconds = {}

    def run_both():
        for name in (slower, faster):
            seconds[name] = _main_command_s(name, tmp_path)

    benchmark.group = "main command by executor"
    benchmark.pedantic(run_both, rounds=1, iterations=1)
    benchmark.extra_info.update(seconds=seconds)
    print("\n" + ", ".join(f"{name} {s:.1f} s" for name, s in seconds.items()))
    speed_goal(goal, RatioMeasurement.single_run(seconds[slower], seconds[faster]))
