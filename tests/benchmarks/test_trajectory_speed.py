"""A measurement point of an optimisation trajectory against a variance-sweep cell with the same N and
S, measured side by side in interleaved turns (`pytest --benchmark-only -s tests/benchmarks/test_trajectory_speed.py`).

The point computes the exact loss and gradient at the current theta and measures N fresh estimates
there through the same harness (benchmarks.trajectory_runs.measurement_row); the cell is what the
sweep runs (benchmarks.harness.run_cell), whose timing calls the point does not make."""
import pytest
import torch

import estimators
from benchmarks.harness import Cell, run_cell
from benchmarks.speed_goals import measure_ratio
from benchmarks.tasks import get_problem
from benchmarks.timing import TrainingClock
from benchmarks.trajectory_runs import TrajectoryRun, TrajectorySettings, measurement_row
from tests.benchmarks.goals import TRAJECTORY_POINT_VS_CELL

N = 1_000


@pytest.mark.parametrize("name", ["reinforce", "disarm"])
def test_measurement_point_vs_sweep_cell(benchmark, speed_goal, name):
    problem, spec = get_problem("tucker-0.499"), estimators.get_spec(name)
    settings = TrajectorySettings(steps=100, samples=1, optimizer="adam", lr=0.01, measure_every=100, estimates=N)
    run = TrajectoryRun(problem.id, name, tuple(sorted(spec.hparams.items())), 0, settings)
    estimator = spec.make()
    theta = {key: value.unsqueeze(0).clone().requires_grad_() for key, value in problem.point().items()}
    cell = Cell(name, tuple(sorted(spec.hparams.items())), problem.id, 1, N)
    clock = TrainingClock()

    def point():
        return measurement_row(run, problem, spec, estimator, theta, 7, torch.float32, 1, 0.0, clock)

    def sweep_cell():
        return run_cell(cell)

    benchmark.group = "speed goals: trajectory measurement point vs sweep cell"
    measurement = benchmark.pedantic(measure_ratio, args=(point, sweep_cell, 10), kwargs={"calls_per_turn": 2},
                                     rounds=1, iterations=1)
    speed_goal(TRAJECTORY_POINT_VS_CELL, measurement)
