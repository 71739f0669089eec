"""Speed goals: the interval, the verdicts, and the enforcing option end to end (a slowed estimator)."""
import subprocess
import sys
from pathlib import Path

import pytest
from scipy import stats

from benchmarks.speed_goals import MET, NOT_MET, RECORDED, UNDECIDED, SpeedGoal, measure_ratio, median_interval
from benchmarks.timing import interleaved_times
from tests.helpers import ALPHA

ROOT = Path(__file__).parents[1]


def test_median_interval_is_the_sign_test_interval():
    values = list(range(1, 16))  # n = 15: P(Bin(15, 1/2) <= 3) = 0.018 <= 0.025 < P(<= 4) = 0.059
    assert median_interval(values, 0.95) == (8, 4, 12)
    assert stats.binom.cdf(3, 15, 0.5) <= 0.025 < stats.binom.cdf(4, 15, 0.5)
    assert median_interval([3.0, 1.0, 2.0, 6.0, 5.0, 4.0], 0.95)[1:] == (1.0, 6.0)  # n = 6: the range, 96.9%


def test_median_interval_refuses_too_few_values():
    with pytest.raises(ValueError, match="at least 6 values, got 5"):
        median_interval([1.0] * 5, 0.95)


@pytest.mark.statistical(checks=1)
def test_median_interval_covers_the_median_at_its_level():
    """4,000 draws of n = 15 log-normal ratios with median 1. The sign-test interval [v_(4), v_(12)] misses
    the median with probability exactly p0 = 2 P(Bin(15, 1/2) <= 3) = 3.5% (<= 5%), so the misses are
    Bin(4000, p0): one one-sided check at level ALPHA (at most its 1 - 1e-6 quantile, 199 = 5.0%)."""
    draws = stats.lognorm(s=0.3).rvs(size=(4000, 15), random_state=0)
    p0 = 2 * stats.binom.cdf(3, 15, 0.5)
    assert p0 <= 0.05
    misses = sum(not lo <= 1.0 <= hi for lo, hi in (median_interval(list(row))[1:] for row in draws))
    assert misses <= stats.binom.isf(ALPHA, len(draws), p0), misses


@pytest.mark.parametrize("direction,low,high,verdict", [
    (">=", 1.6, 1.9, MET), (">=", 1.2, 1.4, NOT_MET), (">=", 1.4, 1.6, UNDECIDED),
    ("<=", 1.0, 1.1, MET), ("<=", 1.2, 1.3, NOT_MET), ("<=", 1.1, 1.2, UNDECIDED),
])
def test_verdict_needs_the_whole_interval_on_one_side(direction, low, high, verdict):
    threshold = 1.5 if direction == ">=" else 1.15
    assert SpeedGoal("g", "a / b", direction, threshold).verdict(low, high) == verdict


def test_goal_without_threshold_is_recorded_and_bad_goals_are_refused():
    assert SpeedGoal("g", "a / b").verdict(0.1, 10) == RECORDED
    with pytest.raises(ValueError, match="direction must be one of"):
        SpeedGoal("g", "a / b", "<", 1.0)
    with pytest.raises(ValueError, match="threshold must be a positive"):
        SpeedGoal("g", "a / b", ">=", 0.0)
    assert SpeedGoal("g", "a / b", ">=", 2).case("S=1").name == "g: S=1"


def test_interleaved_times_pairs_adjacent_turns():
    order = []
    first, second = interleaved_times(lambda: order.append("a"), lambda: order.append("b"), turns=4,
                                      calls_per_turn=2, warm_calls=1)
    assert len(first) == len(second) == 4 and all(len(turn) == 2 for turn in first + second)
    assert "".join(order) == "aaa" "bbb" "bbb" "aaa" "aaa" "bbb" "bbb" "aaa"  # a b | b a | a b | b a


def test_measure_ratio_scales_and_pairs():
    import time

    result = measure_ratio(lambda: time.sleep(0.004), lambda: time.sleep(0.002), pairs=6, calls_per_turn=1,
                           warm_calls=0, scale=0.5)
    # 0.5 * 4 ms / 2 ms = 1, give or take the sleeps' overshoot (larger on a loaded machine)
    assert result.low <= result.ratio <= result.high and 0.6 < result.ratio < 1.4
    assert result.pairs == 6 and result.numerator_s > result.denominator_s


GOAL_FILE = '''
import time

import torch
import torch.distributions as D

import estimators
from benchmarks.speed_goals import SpeedGoal, measure_ratio

LOGITS = torch.zeros(4, requires_grad=True)
COST = torch.arange(4.0)


def draw(estimator):
    surrogate = estimator(lambda z: (z * COST).sum(-1), D.OneHotCategorical(logits=LOGITS), num_samples=100, tau=0.5)
    return torch.autograd.grad(surrogate.mean(0).sum(), [LOGITS])


original = estimators.get("gumbel_softmax")


def slowed(*args, **kwargs):  # a copy of gumbel_softmax with a 3 ms sleep
    time.sleep(0.003)
    return original(*args, **kwargs)


def test_slowed_copy(benchmark, speed_goal):
    benchmark.pedantic(draw, args=(slowed,), rounds=1, iterations=1)
    speed_goal(SpeedGoal("slowed gumbel_softmax vs original", "slowed s / original s", "<=", 1.15),
               measure_ratio(lambda: draw(slowed), lambda: draw(original), pairs=6, calls_per_turn=1))


def test_original_beats_the_slowed_copy(benchmark, speed_goal):
    benchmark.pedantic(draw, args=(original,), rounds=1, iterations=1)
    speed_goal(SpeedGoal("original gumbel_softmax vs slowed", "slowed s / original s", ">=", 2.0),
               measure_ratio(lambda: draw(slowed), lambda: draw(original), pairs=6, calls_per_turn=1))
'''


@pytest.fixture(scope="module")
def goal_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("goals")
    (folder / "test_goals.py").write_text(GOAL_FILE)
    # An ini of its own keeps the project's --benchmark-skip out; the plugin comes in with -p.
    (folder / "pytest.ini").write_text("[pytest]\naddopts = -p tests.benchmarks.speed_goals_plugin -p no:cacheprovider\n")
    return folder


def run_goals(folder, *options):
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "--benchmark-only", "-c", str(folder / "pytest.ini"),
                           "--rootdir", str(folder), str(folder / "test_goals.py"), *options],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_a_slowed_estimator_is_not_met_and_only_enforce_fails_it(goal_file):
    recorded = run_goals(goal_file)
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    table = recorded.stdout[recorded.stdout.index("speed goals"):]
    assert "slowed gumbel_softmax vs original" in table and "not met" in table and " met" in table

    enforced = run_goals(goal_file, "--speed-goals=enforce")
    assert enforced.returncode == 1, enforced.stdout + enforced.stderr
    assert "1 failed, 1 passed" in enforced.stdout
    assert "speed goal not met: slowed gumbel_softmax vs original" in enforced.stdout


def test_reports_render_a_goals_only_benchmark_json(tmp_path):
    import json

    from benchmarks.speed_goals import GoalResult, RatioMeasurement

    records = [GoalResult(SpeedGoal("fast vs slow", "slow s / fast s", ">=", 1.5),
                          RatioMeasurement(2.0, 1.8, 2.2, 0.95, 20, 0.2, 0.1)).record(),
               GoalResult(SpeedGoal("one run", "s / 60 s", "<=", 1.0), RatioMeasurement.single_run(66.0, 60.0)).record()]
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"benchmarks": [{"extra_info": {"speed_goal": r}, "stats": {}} for r in records]}))
    done = subprocess.run([sys.executable, "-m", "reports", str(path)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "fast vs slow" in done.stdout and "2 [1.8, 2.2]" in done.stdout and "1.1 [one run]" in done.stdout
    page = (tmp_path / "bench-report" / "index.html").read_text()
    assert "Speed goals" in page and "&gt;= 1.5" in page and "undecided" in page and "<td>met</td>" in page
