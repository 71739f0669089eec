"""The encoder-gradient measurement at a checkpoint against its floor (`pytest --benchmark-only -s`).

Goal: measuring N = 1,000 encoder-gradient estimates (batch 100, categorical 20x10, 784-512-256) costs at
most 1.25x its floor. The floor is what no method can skip: the cost (decoder and Bernoulli likelihood)
on every estimate's own samples, N x 100 = 100k rows of the 200-256-512-784 decoder, forward and backward
to z for a pathwise-type estimator (gumbel_softmax), forward only for a score-function one (reinforce).
Both sides are timed in PAIRS alternating turns (benchmarks.speed_goals.measure_ratio: the median of
the per-pair ratios with a sign-test interval, verdict by tests/benchmarks/goals.py), with the problem's
reference computed once beforehand (it is shared by every estimator measured at the checkpoint, and is
itself N' estimates of an unbiased estimator, with a floor of its own).

What the measurement adds to the floor (see the printed breakdown): drawing and the estimator's own
work, and the metrics. The metrics are gradient_metrics on an exact isometric embedding of the N
mapped estimates (benchmarks.embedding), which needs their N x N Gram matrix in encoder-parameter
space: per encoder layer an (N, B width) x (B width, N) product, N^2 B (512 + 256 + 200) ~ 1e11
multiply-adds, about as many as the floor's decoder pass itself at N = 1,000 (the diagonal alone, which
the point figures need, is N B^2 width ~ 1e10). The exact Gram is what the bootstrap and Satterthwaite
intervals of every other task need (one interval rule), so the goal is reported, not asserted, with
the measured ratio and this breakdown.
"""
import time

import pytest
import torch

import estimators
from benchmarks.harness import draw_estimates, problem_metrics
from benchmarks.speed_goals import measure_ratio
from benchmarks.tasks.vae import ROWS_BUDGET, vae_problem
from benchmarks.vae_model import VAE, Latent
from tests.benchmarks.goals import VAE_GRADIENT_VS_FLOOR

LATENT = Latent.parse("categorical:20x10")
N = 1000
PAIRS = 6  # the fewest for a 95% sign-test interval: a pair takes ~5-10 s


def mnist_like_batch(seed=0):
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(100, 784, generator=generator) < 0.13).float()


@pytest.mark.parametrize("name, hparams, backward", [("gumbel_softmax", {"tau": 1.0}, True), ("reinforce", {}, False)])
def test_encoder_gradient_measurement_vs_its_floor(benchmark, speed_goal, name, hparams, backward):
    torch.manual_seed(0)
    x = mnist_like_batch(1)
    model = VAE(784, LATENT)
    problem = vae_problem(model, x, reference_estimates=200)
    problem.reference()  # computed once, outside both timed sides
    estimator = estimators.get(name, **hparams)
    cost = model.reconstruction_cost(x)
    chunk = ROWS_BUDGET["cpu"] // len(x)
    for p in model.decoder.parameters():
        p.requires_grad_(False)  # the floor, like the measurement, differentiates with respect to z only

    def measurement():
        return problem_metrics(draw_estimates(estimator, problem, N, 1), problem, torch.float32)

    def floor():
        for start in range(0, N, chunk):
            z = torch.nn.functional.one_hot(torch.randint(10, (1, chunk, 100, 20)), 10).float()
            if backward:
                z.requires_grad_()
                torch.autograd.grad(cost(z).sum(), z)
            else:
                with torch.no_grad():
                    cost(z)

    def parts():
        """(seconds drawing, seconds of the metrics) of one measurement: where the time over the floor goes."""
        start = time.perf_counter()
        draws = draw_estimates(estimator, problem, N, 1)
        drawn = time.perf_counter()
        problem_metrics(draws, problem, torch.float32)
        return drawn - start, time.perf_counter() - drawn

    benchmark.group = f"speed goals: VAE encoder-gradient measurement, N = {N} (seconds of the whole measurement)"
    # Calls of seconds: no warm call a turn (caches do not carry over), one call a turn.
    measurement = benchmark.pedantic(measure_ratio, args=(measurement, floor, PAIRS),
                                     kwargs={"calls_per_turn": 1, "warm_calls": 0}, rounds=1, iterations=1)
    draw_s, metrics_s = parts()
    benchmark.extra_info.update(draw_s=draw_s, metrics_s=metrics_s)
    print(f"\n{name}: measurement {measurement.numerator_s:.2f} s (one more, split: drawing {draw_s:.2f} s, "
          f"metrics {metrics_s:.2f} s), floor {measurement.denominator_s:.2f} s")
    speed_goal(VAE_GRADIENT_VS_FLOOR.case(name), measurement)
