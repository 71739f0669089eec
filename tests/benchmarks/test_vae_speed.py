"""Speed goals of the VAE task (tests/benchmarks/goals.py), each a ratio with an interval
(benchmarks.speed_goals), recorded by the `speed_goal` fixture.

1. A training step through the registry costs <= 1.1x the same step written as a plain PyTorch VAE
   loop (the Gumbel-Softmax relaxation and the analytic categorical KL written inline). Measured
   1.02-1.05 on 2 CPU cores (medians of 300 steps timed in alternating turns).
2. Encoder-gradient variance at a checkpoint (N = 1,000 estimates, the 784-512-256 encoder) against a
   Python loop over N backward passes, recorded (the retired goal was >= 3x), for a pathwise-type estimator
   (gumbel_softmax) and a score-function one (reinforce). The structured method
   (benchmarks/vae_gradients) draws the N gradients with respect to the latent's parameters in
   5,000-row chunks and gets every figure from one float32 Gram-matrix pass, with no backward pass
   through the encoder. What no method can skip is the decoder on each estimate's own samples: 100k
   rows of the 200-256-512-784 decoder, forward (~1.2e11 flops) for reinforce, forward and backward
   (~2.3e11) for gumbel_softmax. On a 2-core AVX2 CPU (75-90 GFLOPS achieved here, ~120 at peak) that
   is 2.6-3.2 s of gumbel_softmax's ~4.7 s against ~12-13 s for the loop, which does the same decoder
   work plus the mirrored encoder's: measured 2.4x-2.9x for gumbel_softmax, 2.9x-4.0x for reinforce. On a
   GPU the loop's 1,000 sequential small launches should dominate instead (GPU not measured). A goal on
   the measurement against its floor (measured s / floor s <= 1.25) is to replace this ratio.
"""
import copy
import math

import pytest

import torch
import torch.nn.functional as F

import estimators
from benchmarks.speed_goals import measure_ratio
from benchmarks.vae_gradients import encoder_gradient_metrics
from benchmarks.vae_model import VAE, Latent
from tests.benchmarks.goals import VAE_GRADIENT_VS_LOOP, VAE_STEP_VS_PLAIN

LATENT = Latent.parse("categorical:20x10")
STEP_PAIRS = 50
LOOP_SHARE = 5  # the loop side runs N / 5 backward passes a call: its cost is linear in N
GRADIENT_PAIRS = 6  # the fewest for a 95% interval: a pair takes ~3 s


def mnist_like_batch(seed=0):
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(100, 784, generator=generator) < 0.13).float()


def test_training_step_vs_plain_pytorch(benchmark, speed_goal):
    torch.manual_seed(0)
    x = mnist_like_batch()
    # Each path trains its own copy, so neither's optimizer state depends on the other's steps.
    model = VAE(784, LATENT)
    plain_model = copy.deepcopy(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    plain_optimizer = torch.optim.Adam(plain_model.parameters(), lr=1e-3)
    estimator, tau = estimators.get("gumbel_softmax"), 1.0

    def registry_step():
        loss, _ = model.loss(x, estimator, {"tau": tau})
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def plain_step():
        logits = plain_model.encoder(x).reshape(100, 20, 10)
        gumbel = -torch.log(-torch.log(torch.rand_like(logits)))
        y = torch.softmax((logits + gumbel) / tau, -1)
        reconstruction = F.binary_cross_entropy_with_logits(plain_model.decoder(y.reshape(100, 200)), x,
                                                            reduction="none").sum(-1)
        log_q = torch.log_softmax(logits, -1)
        kl = (log_q.exp() * (log_q + math.log(10))).sum((-1, -2))
        loss = (reconstruction + kl).mean()
        plain_optimizer.zero_grad()
        loss.backward()
        plain_optimizer.step()

    for _ in range(20):  # both optimizers past their first steps (Adam's state allocated)
        registry_step(), plain_step()
    benchmark.group = "speed goals: VAE (seconds of the whole measurement)"
    measurement = benchmark.pedantic(measure_ratio, args=(registry_step, plain_step, STEP_PAIRS), rounds=1, iterations=1)
    speed_goal(VAE_STEP_VS_PLAIN, measurement)


@pytest.mark.parametrize("name, hparams", [("gumbel_softmax", {"tau": 1.0}), ("reinforce", {})])
def test_gradient_variance_vs_python_loop(benchmark, speed_goal, name, hparams):
    torch.manual_seed(0)
    x = mnist_like_batch(1)
    model = VAE(784, LATENT)
    reference = (torch.zeros(100, LATENT.param_size), "zero (timing only)", 0.0)
    n = 1000

    def structured():
        return encoder_gradient_metrics(model, x, name, hparams, n, 1, "analytic", reference)

    def loop(iterations=n):
        estimator = estimators.get(name)
        params = list(model.encoder.parameters())
        total = [torch.zeros_like(p, dtype=torch.float64) for p in params]
        squares = [torch.zeros_like(p, dtype=torch.float64) for p in params]
        for _ in range(iterations):
            loss, _ = model.loss(x, estimator, hparams)
            for t, s, g in zip(total, squares, torch.autograd.grad(loss, params)):
                t += g
                s += g.double().square()
        return sum(float((s - t.square() / iterations).sum()) for t, s in zip(total, squares)) / (iterations - 1)

    structured(), loop(10)  # lazy initialisation out of the timed turns
    benchmark.group = "speed goals: VAE (seconds of the whole measurement)"
    # Calls of seconds: no warm call a turn (caches do not carry over), one call a turn.
    measurement = benchmark.pedantic(measure_ratio, args=(lambda: loop(n // LOOP_SHARE), structured, GRADIENT_PAIRS),
                                     kwargs={"calls_per_turn": 1, "warm_calls": 0, "scale": LOOP_SHARE},
                                     rounds=1, iterations=1)
    speed_goal(VAE_GRADIENT_VS_LOOP.case(name), measurement)
