"""pytest plugin for speed goals: `--speed-goals=record|enforce`, the `speed_goal` fixture, and the
goal table printed at the end of the session.

Loaded by the root conftest.py, so that the option is known whatever paths pytest is given (an option
added by tests/benchmarks/conftest.py would be unknown when pytest starts from tests/ or the root).

`speed_goal(goal, measurement)` records the result in the benchmark's extra_info["speed_goal"] (so it
lands in --benchmark-json and `python -m reports bench.json` renders it) and in the session's table.
With the default `record`, no verdict fails a test: on a shared machine noise is not a regression.
With `enforce` (a CI job on a quiet, dedicated machine), a goal whose interval lies wholly on the
wrong side of its threshold fails its test, naming the goal.
"""
from __future__ import annotations

import os

import pytest

from benchmarks.speed_goals import NOT_MET, GoalResult, RatioMeasurement, SpeedGoal

RESULTS = pytest.StashKey[list]()


def pytest_addoption(parser):
    parser.getgroup("speed goals").addoption(
        "--speed-goals", choices=("record", "enforce"), default="record",
        help="record (default): measure each speed goal with its interval and print the goal table, never "
             "fail on a verdict; enforce: also fail a benchmark whose goal is 'not met' (interval wholly on "
             "the wrong side). Enforce only on a quiet, dedicated machine.")


def pytest_configure(config):
    config.stash[RESULTS] = []


@pytest.fixture
def speed_goal(request, benchmark):
    """Call as speed_goal(goal, measurement): records the verdict; fails under --speed-goals=enforce
    when the goal is not met."""

    def judge(goal: SpeedGoal, measurement: RatioMeasurement) -> GoalResult:
        result = GoalResult(goal, measurement)
        # The load average says how busy the machine was: figures from a loaded one are worth less.
        record = {**result.record(), "load_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}
        benchmark.extra_info["speed_goal"] = record
        request.config.stash[RESULTS].append(record)
        print(f"\n{result.describe()}")
        if result.verdict == NOT_MET and request.config.getoption("speed_goals") == "enforce":
            pytest.fail(f"speed goal not met: {result.describe()}", pytrace=False)
        return result

    return judge


@pytest.hookimpl(trylast=True)  # after pytest-benchmark's tables: the last thing on screen
def pytest_terminal_summary(terminalreporter, config):
    records = config.stash.get(RESULTS, [])
    if not records:
        return
    from reports.throughput import speed_goal_table_text  # rendering lives with the report's

    terminalreporter.write_sep("=", "speed goals")
    terminalreporter.write_line(speed_goal_table_text(records))
    mode = config.getoption("speed_goals")
    terminalreporter.write_line(
        "met / not met: the interval lies wholly on the goal's / the wrong side of the threshold; undecided: "
        "it straddles it. " + ("Enforced: a goal not met fails its benchmark." if mode == "enforce" else
                              "Recorded only: --speed-goals=enforce fails a goal not met (quiet machines only)."))
