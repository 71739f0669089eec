"""Speed goals: the ratio of two timings, measured with an interval and judged against a threshold.

A goal is data: a name, the ratio it is about (numerator seconds / denominator seconds), a direction
(">=": the ratio must be at least the threshold, "<=": at most) and a threshold; a goal without a
threshold is recorded, not judged.

The measurement times both sides in interleaved turns (`benchmarks.timing.interleaved_times`): turns
go A, B, B, A, A, B, ..., so pair k = (turn 2k, turn 2k + 1) holds one turn of each side, adjacent in
time. Each pair gives one ratio

    r_k = scale * median(A's calls in pair k) / median(B's calls in pair k),

in which a change of the machine's speed that lasts longer than a pair (another process starting,
the clock throttling) cancels. The goal's figure is the median of r_1..r_n, and its interval is the
distribution-free (sign-test) interval for that median: [r_(j), r_(n+1-j)] (order statistics), with
the largest j such that P(Bin(n, 1/2) <= j - 1) <= (1 - confidence) / 2. Its coverage is at least
`confidence` when the pairs are independent draws from one distribution, whatever its shape: a few
pairs hit by a burst of load move the median little and widen the interval instead of moving the
verdict. n = 6 pairs is the fewest that reach 95%.

Verdict: "met" when the interval lies wholly on the goal's side of the threshold, "not met" when it
lies wholly on the other side, "undecided" when it straddles the threshold; "recorded" for a goal
without a threshold. A noisy machine widens intervals, so noise yields "undecided", not a wrong verdict.
"""
from __future__ import annotations

import dataclasses
import statistics
from typing import Callable

import torch
from scipy import stats

from benchmarks.timing import interleaved_times

MET, NOT_MET, UNDECIDED, RECORDED = "met", "not met", "undecided", "recorded"
DIRECTIONS = (">=", "<=")


@dataclasses.dataclass(frozen=True)
class SpeedGoal:
    """`ratio` (numerator s / denominator s) must be `direction` `threshold`; threshold None: recorded only."""

    name: str
    ratio: str
    direction: str = ">="
    threshold: float | None = None
    note: str = ""

    def __post_init__(self):
        if self.direction not in DIRECTIONS:
            raise ValueError(f"speed goal {self.name!r}: direction must be one of {DIRECTIONS}, got {self.direction!r}")
        if self.threshold is not None and not self.threshold > 0:
            raise ValueError(f"speed goal {self.name!r}: threshold must be a positive ratio or None, got {self.threshold!r}")

    def case(self, label: str) -> SpeedGoal:
        """The same goal for one case of a parametrised benchmark, named `name: label`."""
        return dataclasses.replace(self, name=f"{self.name}: {label}")

    @property
    def statement(self) -> str:
        return "recorded" if self.threshold is None else f"{self.direction} {self.threshold:g}"

    def verdict(self, low: float | None, high: float | None) -> str:
        if self.threshold is None:
            return RECORDED
        if low is None or high is None:
            return UNDECIDED  # no interval (one run): nothing to decide on
        above, below = low > self.threshold, high < self.threshold
        if self.direction == "<=":
            above, below = below, above  # the goal's side is below the threshold
        return MET if above else NOT_MET if below else UNDECIDED


@dataclasses.dataclass(frozen=True)
class RatioMeasurement:
    """Median of the paired ratios with its distribution-free interval, and each side's median call."""

    ratio: float
    low: float | None  # None: one run, no interval
    high: float | None
    confidence: float | None
    pairs: int
    numerator_s: float
    denominator_s: float

    @classmethod
    def single_run(cls, seconds: float, reference_s: float) -> RatioMeasurement:
        """One run against a fixed reference (a time budget): a ratio without an interval, never decisive."""
        return cls(seconds / reference_s, None, None, None, 1, seconds, reference_s)


def median_interval(values: list[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """(median, low, high): the sign-test interval [v_(j), v_(n+1-j)] for the median of `values`,
    with coverage >= confidence for independent, identically distributed values."""
    n = len(values)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    ordered = sorted(values)
    tail = (1 - confidence) / 2
    # j - 1 = the largest count c with P(Bin(n, 1/2) <= c) <= tail; j = 0 means no such interval.
    j = int(stats.binom.ppf(tail, n, 0.5))
    if stats.binom.cdf(j, n, 0.5) > tail:
        j -= 1
    j += 1
    if j < 1:
        fewest = next(m for m in range(1, 64) if 2 * 0.5 ** m <= 1 - confidence)
        raise ValueError(f"a {confidence:.0%} interval for a median needs at least {fewest} values, got {n}")
    return statistics.median(ordered), ordered[j - 1], ordered[n - j]


def measure_ratio(numerator: Callable[[], object], denominator: Callable[[], object], pairs: int, *,
                  calls_per_turn: int = 3, warm_calls: int = 1, scale: float = 1.0, confidence: float = 0.95,
                  device: str | torch.device = "cpu") -> RatioMeasurement:
    """scale * (numerator's seconds / denominator's), from `pairs` pairs of interleaved turns.

    `scale` converts when the two sides do different amounts of work, e.g. a loop timed over 1/10 of
    the estimates the vectorised side draws: scale = 10 (the loop's cost is linear in the count)."""
    num_turns, den_turns = interleaved_times(numerator, denominator, pairs, calls_per_turn, device, warm_calls)
    paired = [scale * statistics.median(a) / statistics.median(b) for a, b in zip(num_turns, den_turns)]
    ratio, low, high = median_interval(paired, confidence)
    return RatioMeasurement(ratio, low, high, confidence, pairs,
                            statistics.median(t for turn in num_turns for t in turn),
                            statistics.median(t for turn in den_turns for t in turn))


@dataclasses.dataclass(frozen=True)
class GoalResult:
    goal: SpeedGoal
    measurement: RatioMeasurement

    @property
    def verdict(self) -> str:
        return self.goal.verdict(self.measurement.low, self.measurement.high)

    def record(self) -> dict:
        """A flat, JSON-ready row (pytest-benchmark's extra_info["speed_goal"]; reports.throughput reads it)."""
        m = self.measurement
        return {"goal": self.goal.name, "ratio_of": self.goal.ratio, "direction": self.goal.direction,
                "threshold": self.goal.threshold, "note": self.goal.note, "ratio": m.ratio, "ratio_low": m.low,
                "ratio_high": m.high, "confidence": m.confidence, "pairs": m.pairs,
                "numerator_s": m.numerator_s, "denominator_s": m.denominator_s, "verdict": self.verdict}

    def describe(self) -> str:
        m = self.measurement
        interval = "no interval, one run" if m.low is None else \
            f"[{m.low:.3g}, {m.high:.3g}] ({m.confidence:.0%}, {m.pairs} pairs)"
        return f"{self.goal.name}: {self.goal.ratio} = {m.ratio:.3g} {interval}, goal {self.goal.statement}: {self.verdict}"


def pairs_within(budget_s: float, seconds_per_pair: float, fewest: int = 8, most: int = 30) -> int:
    """As many pairs of turns as fit in budget_s, between fewest and most: a slow case gets the fewest
    (a wider interval), a fast one up to `most` (a narrower one)."""
    return int(min(most, max(fewest, budget_s // max(seconds_per_pair, 1e-9))))
