"""ReinMax: a second-order (Heun's method) correction of the straight-through estimator.

For logits theta, pi_0 = softmax(theta), a one-hot sample D ~ Cat(pi_0) and temperature tau:

    pi_1 = (D + softmax(theta / tau)) / 2,   with the softmax Jacobian at pi_1 as its gradient
    forward: D;   backward: d/dtheta of 2 pi_1 - pi_0 / 2

i.e. grad_theta = 2 J(pi_1)^T g - 1/2 J(pi_0)^T g with J(p) = diag(p) - p p^T and g = df/dD.
Biased (like straight-through), with bias O(second order); the authors recommend tau >= 1.
A Bernoulli with logit phi is the two-class case with logits (0, phi).

Reference:
    Liu, L., Dong, C., Liu, X., Yu, B., Gao, J. (2023). Bridging discrete and backpropagation:
    Straight-through and beyond. NeurIPS.
"""
from __future__ import annotations

import torch

from estimators.families import base_distribution, family_of
from estimators.hparams import HParam, at_least
from estimators.registry import register
from estimators.relaxed import gumbel_noise, softmax_last


def reinmax_sample(logits: torch.Tensor, num_samples: int, tau: float) -> torch.Tensor:
    """One-hot samples over the last axis whose gradient is ReinMax's."""
    noise = gumbel_noise(num_samples, logits)
    classes = torch.arange(logits.shape[-1], device=logits.device)
    hard = ((logits.detach() + noise).argmax(-1, keepdim=True) == classes).to(logits.dtype)  # Gumbel-max
    pi_0 = softmax_last(logits)
    pi_1 = (hard + softmax_last(logits / tau)) / 2
    # softmax(theta + c) with c = stop(log pi_1 - theta): value pi_1, Jacobian J(pi_1). A masked class
    # (theta = -inf, pi_1 = 0) would give c = -inf + inf = nan; c = 0 keeps its value softmax(-inf) = 0.
    shift = (torch.log(pi_1) - logits).detach()
    pi_1 = softmax_last(shift.masked_fill(torch.isneginf(logits.detach()), 0.0) + logits)
    pi_2 = 2 * pi_1 - pi_0 / 2
    return hard + (pi_2 - pi_2.detach())


@register("reinmax", needs=("relaxable",), unbiased=False, hparams={"tau": HParam(1.0, at_least(1.0), "Liu et al. 2023 define ReinMax for tau >= 1")},
          summary="ReinMax: straight-through with a second-order (Heun) correction; wants tau >= 1",
          reference="Liu et al. 2023, NeurIPS, 'Bridging discrete and backpropagation'")
def reinmax(f, dist, num_samples: int = 1, *, tau: float = 1.0) -> torch.Tensor:
    """surrogate_s = f(D_s) with D_s a hard sample whose backward pass is ReinMax's."""
    logits = base_distribution(dist).logits
    if family_of(dist) == "bernoulli":
        two_class = torch.stack([torch.zeros_like(logits), logits], -1)
        return f(reinmax_sample(two_class, num_samples, tau)[..., 1])
    return f(reinmax_sample(logits, num_samples, tau))
