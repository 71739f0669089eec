"""The score-function (REINFORCE) estimator and its baselines, composed as wrappers.

    grad_theta E_{z~p_theta}[f(z)] = E[(f(z) - b) grad_theta log p_theta(z)]

holds for any b independent of z, so a baseline lowers variance without adding bias.

References:
    Williams, R. J. (1992). Simple statistical gradient-following algorithms for connectionist
    reinforcement learning. Machine Learning 8, 229-256.
    Kool, W., van Hoof, H., Welling, M. (2019). Buy 4 REINFORCE samples, get a baseline for free!
    ICLR Deep RL Meets Structured Prediction workshop.
"""
from __future__ import annotations

import functools
from typing import Callable

import torch

from estimators import sampling
from estimators.errors import check_num_samples
from estimators.hparams import HParam, interval
from estimators.registry import register
from estimators.surrogates import score_function_surrogate

# The score function applies to any distribution with sample and log_prob whose support does not move
# with its parameters (estimators.families.has_log_density): Poisson and Student-t as much as Bernoulli.
SCORE_NEEDS = ("log_prob",)
LOO_NEEDS_TWO = "a leave-one-out baseline averages the other samples"

Baseline = Callable[[torch.Tensor], "torch.Tensor | float"]


def no_baseline(cost: torch.Tensor) -> float:
    """b = 0: plain REINFORCE."""
    return 0.0


def leave_one_out(cost: torch.Tensor) -> torch.Tensor:
    """b_i = mean of the other S - 1 costs, b_i = (sum_j f_j - f_i) / (S - 1) (Kool et al. 2019).

    b_i does not depend on z_i, so the estimator stays unbiased.
    """
    # The registry checks S >= 2 for registered estimators; this guards the baseline used on its own.
    check_num_samples(cost.shape[0], 2, "the leave-one-out baseline")
    return (cost.sum(0, keepdim=True) - cost) / (cost.shape[0] - 1)


class MovingAverageBaseline:
    """b = exponential moving average of past costs, one average per batch element.

    State is explicit and resettable. The value returned for a call is the average *before* this
    call's costs are folded in, so b is independent of the current samples and the estimator stays
    unbiased (folding first would correlate b with f(z) and shrink the gradient). The average is
    bias-corrected as in Adam (divided by 1 - decay^t), so it is usable from the second call on.
    Each batch element keeps its own average over calls (averaging over the S samples only), as
    one training run would; when the batch shape changes between calls (a smaller last
    minibatch), the mean of the averages serves instead.
    """

    def __init__(self, decay: float = 0.9):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"moving-average decay must be in [0, 1), got {decay!r}")
        self.decay = decay
        self.reset()

    def reset(self) -> None:
        self.total: torch.Tensor | None = None
        self.calls = 0

    @property
    def value(self) -> torch.Tensor | None:
        return None if self.total is None else self.total / (1 - self.decay ** self.calls)

    def __call__(self, cost: torch.Tensor) -> torch.Tensor | float:
        current = cost.detach().mean(0)
        baseline = self.value
        if baseline is None:
            baseline = 0.0
        elif baseline.shape != current.shape:
            baseline = baseline.mean()
        total = self.total if self.total is not None and self.total.shape == current.shape else \
            (self.total.mean() if self.total is not None else 0.0)
        self.total = self.decay * total + (1 - self.decay) * current
        self.calls += 1
        return baseline


def reinforce(f, dist, num_samples: int = 1, *, baseline: Baseline = no_baseline) -> torch.Tensor:
    """Score-function estimator: surrogate_s = f(z_s) + (f(z_s) - b_s) (log p(z_s) - stop(log p(z_s))).

    Samples z_s ~ dist without a gradient path; the gradient of the mean surrogate is
    (1/S) sum_s (f(z_s) - b_s) grad log p(z_s), unbiased for any b_s independent of z_s.
    """
    z = sampling.sample(dist, num_samples)
    cost = f(z)
    return score_function_surrogate(cost, sampling.log_prob(dist, z), baseline(cost))


def with_baseline(baseline: Baseline) -> Callable[..., torch.Tensor]:
    """REINFORCE with a fixed baseline function, as a new estimator (optax-style composition)."""
    return functools.partial(reinforce, baseline=baseline)


register(
    "reinforce",
    needs=SCORE_NEEDS,
    unbiased=True,
    summary="score function, no baseline",
    reference="Williams 1992, Machine Learning 8",
)(reinforce)

register(
    "reinforce_loo",
    needs=SCORE_NEEDS,
    unbiased=True,
    min_samples=2,
    min_samples_why=LOO_NEEDS_TWO,
    summary="score function, leave-one-out baseline over the S samples",
    reference="Kool et al. 2019, 'Buy 4 REINFORCE samples, get a baseline for free!'",
)(with_baseline(leave_one_out))


@register(
    "reinforce_ema",
    needs=SCORE_NEEDS,
    unbiased=True,
    hparams={"decay": HParam(0.9, interval(0.0, 1.0), "the weight of the past in the average")},
    warmup_calls=20,
    summary="score function, exponential-moving-average baseline (stateful)",
    reference="Williams 1992; Mnih & Gregor 2014 (NVIL), section 3.3",
)
class ReinforceEMA:
    """REINFORCE with b = moving average of past costs; `reset()` forgets the average.

    Its state (the running total and the number of calls) is saved and restored with `state_dict()` /
    `load_state_dict()`, tensors and numbers only (loadable with `torch.load(weights_only=True)`)."""

    def __init__(self, *, decay: float = 0.9):
        self.baseline = MovingAverageBaseline(decay)

    def reset(self) -> None:
        self.baseline.reset()

    def state_dict(self) -> dict:
        return {"total": self.baseline.total, "calls": self.baseline.calls, "decay": self.baseline.decay}

    def load_state_dict(self, state: dict) -> None:
        if "decay" in state and float(state["decay"]) != self.baseline.decay:
            raise ValueError(f"this state was saved with decay={float(state['decay'])!r}, this instance has "
                             f"decay={self.baseline.decay!r} (the average's start-up correction depends on it); "
                             "build the estimator with the saved decay")
        self.baseline.total, self.baseline.calls = state["total"], int(state["calls"])

    def __call__(self, f, dist, num_samples: int = 1) -> torch.Tensor:
        return reinforce(f, dist, num_samples, baseline=self.baseline)
