"""What an executor costs per unit of work: `pytest --benchmark-only -s tests/benchmarks/test_executor_overhead.py`.

A batch of trivial units (each writes one row and returns) runs in this process, on a local pool of 2
workers and on a local Ray instance with 2 CPUs; the figure is the wall time per unit, with the
executor's start-up (starting workers, starting Ray) reported apart. A variance cell takes 0.05-0.5 s
on this machine, so the per-unit overhead tells when a pool pays for itself. Recorded in extra_info;
no goal is asserted: the issue asks for the figure, and a timing on a shared machine is not a verdict.
"""
import dataclasses
import time

import pytest

from benchmarks.executors import InProcess, LocalPool, RayExecutor

UNITS = 200


@dataclasses.dataclass(frozen=True)
class TrivialUnit:
    unit_id: str
    steps: int = 1
    imports: tuple = ()

    def run(self, sink) -> str:
        sink.add({"cell_id": self.unit_id, "value": 1.0})
        return "ok"


def _executors():
    cases = [("in-process", InProcess), ("local-pool", lambda: LocalPool(2))]
    try:
        import ray  # noqa: F401
        cases.append(("ray", lambda: RayExecutor(2)))
    except ImportError:
        pass
    return cases


@pytest.mark.parametrize("name,make", _executors(), ids=[name for name, _ in _executors()])
def test_overhead_per_trivial_unit(benchmark, tmp_path, name, make):
    units = [TrivialUnit(f"u{i}") for i in range(UNITS)]
    ended = []

    def run_all():
        ended.clear()
        executor = make()
        started = time.perf_counter()
        executor.run(units, tmp_path, lambda uid, n: None, lambda uid, status, failed: ended.append(status))
        return time.perf_counter() - started

    total = benchmark.pedantic(run_all, rounds=1, iterations=1)
    assert ended == ["ok"] * UNITS
    # The round includes start-up; a second batch on a started executor gives the per-unit cost alone.
    executor = make()
    if name == "ray":  # a Ray instance started beforehand is reused and left running by the executor
        import ray

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    if hasattr(executor, "start"):
        executor.start()  # the pool's fork server or workers; Ray's warm-up tasks
        time.sleep(3)  # let the workers finish importing
    try:
        started = time.perf_counter()
        executor.run(units, tmp_path, lambda uid, n: None, lambda uid, status, failed: None)
        per_unit = (time.perf_counter() - started) / UNITS
    finally:
        if name == "ray":
            ray.shutdown()
    benchmark.group = "executor overhead: a batch of trivial units"
    benchmark.extra_info.update(executor=name, units=UNITS, seconds_with_startup=total, seconds_per_unit=per_unit)
    print(f"\n{name}: {per_unit * 1e3:.2f} ms per trivial unit; {total:.2f} s for {UNITS} with start-up")
