"""Wall-clock timing and peak memory that are correct on CUDA.

CUDA kernels launch asynchronously, so a timer read without `torch.cuda.synchronize()` measures
the launch, not the work: the timed region ends with a synchronize. The first calls pay for lazy
initialisation (CUDA context, kernel selection, allocator growth) and are run untimed first.

Peak memory during one call: on CUDA `torch.cuda.max_memory_allocated` after resetting the peak
(tensors alive before the call included); on CPU the process's peak resident set size (Linux
VmHWM) after resetting it through /proc/self/clear_refs. Where the peak cannot be reset (not
Linux), the CPU figure is the process's lifetime peak (ru_maxrss), and `memory_kind` says so.
The CPU figure counts the whole process (Python, torch, the allocator's cache), so compare it
between cells, not with the size of one tensor.

The variance sweep and the pytest-benchmark throughput suite both time through `measure`; training
runs (the VAE, the optimisation trajectories) time their steps through `TrainingClock`. Both record the same
hygiene columns beside their times (`hygiene_columns`): the load average at the start and end of the timed
interval, this process's CPU seconds beside the wall seconds, the cores, and `timed_wait_share`: the share of
its threads' time they spent ready to run but waiting for a CPU (Linux's run-queue delay, from
/proc/self/task/*/schedstat (benchmarks.procfs), summed over the threads and divided by the wall time x torch's threads). The
load average trails by a minute, and CPU seconds hide spinning threads: with a busy process beside a
2-thread cell, its time per estimate came out 10x slower while CPU stayed near the wall time and the load
average under the cores, and its threads waited 43% of their time (85% of the wall time, summed over the
two; 0-1% when idle, and for a 1-thread cell with a core to itself).
"""
from __future__ import annotations

import dataclasses
import os
import resource
import statistics
import sys
import time
from typing import Callable

import torch

from benchmarks.executors import cpu_count
from benchmarks.procfs import PROC


@dataclasses.dataclass(frozen=True)
class Timing:
    """Seconds per call over `repeats` timed calls, and the peak extra memory of one call."""

    median_s: float
    min_s: float
    max_s: float
    repeats: int
    peak_memory_bytes: int | None = None
    memory_kind: str = ""
    # Hygiene: the machine's 1-minute load average before and after, and this process's CPU seconds
    # beside the wall seconds of the timed calls (CPU well below wall x threads: the process waited).
    load_avg_start: float = float("nan")
    load_avg_end: float = float("nan")
    cpu_s: float = float("nan")
    wall_s: float = float("nan")
    wait_share: float = float("nan")  # run-queue wait over the timed calls / (their wall time x threads)


def synchronize(device: str | torch.device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def _status_kib(field: str) -> int | None:
    try:
        for line in (PROC / "self" / "status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_cpu_peak() -> bool:
    try:
        (PROC / "self" / "clear_refs").write_text("5")  # 5: reset the peak RSS to the current RSS
        return True
    except OSError:
        return False


def peak_memory(fn: Callable[[], object], device: str | torch.device) -> tuple[int | None, str]:
    """Peak bytes in use during one call of fn (called exactly once), and how they were read."""
    device = torch.device(device)
    if device.type == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        synchronize(device)
        return torch.cuda.max_memory_allocated(device), "cuda max_memory_allocated"
    reset = _reset_cpu_peak()
    fn()
    peak = _status_kib("VmHWM") if reset else None
    if peak is not None:
        return peak * 1024, "cpu process peak RSS (VmHWM)"
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale, "cpu lifetime peak RSS"


def measure(fn: Callable[[], object], device: str | torch.device = "cpu", *, warmup: int = 1,
            min_repeats: int = 3, max_repeats: int = 100, min_time_s: float = 0.05,
            memory: bool = False) -> Timing:
    """Time `fn` after `warmup` untimed calls: at least `min_repeats` calls and `min_time_s` seconds.

    With `memory`, the peak is read over the timed calls themselves (the peak of one call, since each
    call's tensors are freed before the next), not from an extra call."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times: list[float] = []
    load_start, cpu_start = load_average(), time.process_time()
    wait_start, wall_start = waiting_seconds(), time.perf_counter()

    def timed_calls() -> None:
        while len(times) < min_repeats or (sum(times) < min_time_s and len(times) < max_repeats):
            start = time.perf_counter()
            fn()
            synchronize(device)
            times.append(time.perf_counter() - start)

    peak, kind = peak_memory(timed_calls, device) if memory else (timed_calls(), (None, ""))[1]
    cpu = time.process_time() - cpu_start
    wait_share = wait_share_of(waiting_seconds() - wait_start, time.perf_counter() - wall_start)
    return Timing(statistics.median(times), min(times), max(times), len(times), peak, kind,
                  load_start, load_average(), cpu, sum(times), wait_share)


def wait_share_of(waited_s: float, wall_s: float, threads: int | None = None) -> float:
    """The share of its threads' time a process spent waiting for a CPU: waited_s (summed over the threads)
    over wall_s x torch's threads, so that it reads the same on 2 cores and on 64. At least 0: a thread that
    ended between the two readings takes its wait out of the second one."""
    threads = threads or torch.get_num_threads()
    if not wall_s > 0 or waited_s != waited_s:  # no time, or no /proc to read (NaN: unknown, never 0)
        return float("nan")
    return max(0.0, waited_s) / (wall_s * threads)


def waiting_seconds() -> float:
    """Seconds this process's threads have spent ready to run but waiting for a CPU (the kernel's run-queue
    delay, summed over the threads alive now); NaN where there is no /proc/self/task/*/schedstat (benchmarks.procfs) (not
    Linux, or a kernel without scheduler statistics). About 20 us a read with torch's threads."""
    total, found = 0, False
    try:
        threads = os.listdir(PROC / "self" / "task")
    except OSError:
        return float("nan")
    for thread in threads:
        try:
            with open(PROC / "self" / "task" / thread / "schedstat", "rb") as stream:
                total += int(stream.read().split()[1])
            found = True
        except (OSError, IndexError, ValueError):  # a thread that ended meanwhile
            continue
    return total / 1e9 if found else float("nan")


def load_average() -> float:
    """The machine's 1-minute load average (NaN where the platform has none)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return float("nan")


def hygiene_columns(load_avg_start: float, load_avg_end: float, cpu_s: float, wall_s: float,
                    wait_share: float = float("nan")) -> dict:
    """The columns a timed row carries beside its times (reports.cost.timing_flag reads them)."""
    return {"load_avg_start": load_avg_start, "load_avg_end": load_avg_end, "timed_cpu_s": cpu_s,
            "timed_wall_s": wall_s, "timed_wait_share": wait_share, "cores": cpu_count()}


class TrainingClock:
    """Wall and CPU seconds of a training run's steps, and the hygiene columns of its evaluation rows.

    A training row's times (train_seconds, time_per_step_s, steps_per_s) count every training step since the
    run began, so its hygiene columns cover the same interval rather than the steps since the previous
    evaluation point: `timed_wall_s` is the steps' wall seconds (= train_seconds) and `timed_cpu_s` this
    process's CPU seconds during those same steps (evaluations, checkpoints and data shuffles are left out of
    both); `load_avg_start` is the 1-minute load average when the run began and `load_avg_end` the one at the
    row's evaluation point. The load is only sampled at those ends, but every evaluation row samples it
    again, so a report that reads all of a run's rows sees its load along the way. `timed_wait_share` is the
    run-queue wait since the run began over the thread time since it began, evaluations included (read at
    the evaluation points only: reading it around every step would cost ~40 us a step, a toy step's
    time). A resumed run continues from the figures its checkpoint holds (`state`); where a checkpoint
    lacks them, NaN (unknown), never the part since the resume passed off as the whole.

        clock = TrainingClock()
        clock.start(); ...one step...; clock.stop(device)
        row.update(clock.columns())"""

    def __init__(self, wall_s: float = 0.0, cpu_s: float = 0.0, load_avg_start: float | None = None,
                 waited_s: float = 0.0, elapsed_s: float = 0.0):
        self.wall_s, self.cpu_s = wall_s, cpu_s
        self.load_avg_start = load_average() if load_avg_start is None else load_avg_start
        self._started = (0.0, 0.0)
        # Wait and wall time since the run began: before this process (a checkpoint's), and since it took over.
        self._waited_before, self._elapsed_before = waited_s, elapsed_s
        self._segment = (waiting_seconds(), time.perf_counter())

    @classmethod
    def resumed(cls, state: dict) -> "TrainingClock":
        """The clock of a run continued from a checkpoint's `state()` (older checkpoints: seconds only)."""
        nan = float("nan")
        return cls(state["seconds"], state.get("cpu_seconds", nan), state.get("load_avg_start", nan),
                   state.get("waited_seconds", nan), state.get("elapsed_seconds", nan))

    def _waited_and_elapsed(self) -> tuple[float, float]:
        waited, started = self._segment
        return (self._waited_before + waiting_seconds() - waited,
                self._elapsed_before + time.perf_counter() - started)

    def state(self) -> dict:
        waited, elapsed = self._waited_and_elapsed()
        return {"seconds": self.wall_s, "cpu_seconds": self.cpu_s, "load_avg_start": self.load_avg_start,
                "waited_seconds": waited, "elapsed_seconds": elapsed}

    def start(self) -> None:
        self._started = (time.perf_counter(), time.process_time())

    def stop(self, device: str | torch.device = "cpu") -> None:
        """End a timed step: its work on `device` finished (CUDA is synchronised), its seconds added."""
        synchronize(device)
        wall, cpu = self._started
        self.wall_s += time.perf_counter() - wall
        self.cpu_s += time.process_time() - cpu

    def columns(self) -> dict:
        waited, elapsed = self._waited_and_elapsed()
        return hygiene_columns(self.load_avg_start, load_average(), self.cpu_s, self.wall_s,
                               wait_share_of(waited, elapsed))


def interleaved_times(first: Callable[[], object], second: Callable[[], object], turns: int,
                      calls_per_turn: int = 3, device: str | torch.device = "cpu",
                      warm_calls: int = 1) -> tuple[list[list[float]], list[list[float]]]:
    """Seconds of each timed call of two functions, measured in alternating turns, turn by turn.

    Each function gets `turns` turns. A turn makes `warm_calls` untimed calls (so caches and the
    allocator hold that function's data, not the other's) and then times calls_per_turn calls. Turns go
    in the order first, second, second, first, first, ...: each function leads half the pairs of turns
    (for an even number of turns), and turns 2k and 2k + 1 hold one turn of each side, adjacent in time
    (benchmarks.speed_goals pairs them). On a shared machine whose speed drifts over seconds, short
    turns let the drift hit both sides alike (measured: the same VAE step timed 12-19 ms in consecutive
    blocks of seconds), and the untimed call keeps either side from being timed on a cache the other
    just filled; for calls of seconds, where caches do not carry over, warm_calls=0 saves the time.

    Returns (first's turns, second's turns), each a list of `turns` lists of calls_per_turn seconds."""
    if turns < 1 or calls_per_turn < 1 or warm_calls < 0:
        raise ValueError("interleaved timing needs turns >= 1, calls_per_turn >= 1 and warm_calls >= 0, "
                         f"got {turns}, {calls_per_turn}, {warm_calls}")
    times: tuple[list[list[float]], list[list[float]]] = ([], [])
    for turn in range(2 * turns):
        side = (turn + turn // 2) % 2  # sides 0, 1, 1, 0, 0, 1, 1, 0, ...: each leads half the pairs
        fn = (first, second)[side]
        for _ in range(warm_calls):
            fn()
        calls = []
        for _ in range(calls_per_turn):
            synchronize(device)
            start = time.perf_counter()
            fn()
            synchronize(device)
            calls.append(time.perf_counter() - start)
        times[side].append(calls)
    return times


def interleaved_medians(first: Callable[[], object], second: Callable[[], object], turns: int,
                        calls_per_turn: int = 3, device: str | torch.device = "cpu") -> tuple[float, float]:
    """Median seconds of a call to each of two functions over all their calls in `interleaved_times`
    (one untimed warm call a turn)."""
    first_turns, second_turns = interleaved_times(first, second, turns, calls_per_turn, device)
    return (statistics.median(t for turn in first_turns for t in turn),
            statistics.median(t for turn in second_turns for t in turn))
