"""Speed goals of the VAE task (tests/benchmarks/goals.py), each a ratio with an interval
(benchmarks.speed_goals), recorded by the `speed_goal` fixture.

1. A training step through the registry costs <= 1.1x the same step written as a plain PyTorch VAE
   loop (the Gumbel-Softmax relaxation and the analytic categorical KL written inline). Measured
   1.02-1.05 on 2 CPU cores (medians of 300 steps timed in alternating turns).
2. The encoder-gradient measurement at a checkpoint against its floor: tests/benchmarks/test_vae_gradient_cost.py.
"""
import copy
import math

import torch
import torch.nn.functional as F

import estimators
from benchmarks.speed_goals import measure_ratio
from benchmarks.vae_model import VAE, Latent
from tests.benchmarks.goals import VAE_STEP_VS_PLAIN

LATENT = Latent.parse("categorical:20x10")
STEP_PAIRS = 50


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
