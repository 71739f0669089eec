"""Antithetic estimators for Bernoulli latents: ARM and DisARM (two f-evaluations per sample).

With logits phi, u ~ U(0, 1)^D, b = 1[u < sigmoid(phi)] and its antithetic partner
b~ = 1[1 - u < sigmoid(phi)] (both exact Bernoulli(sigmoid(phi)) samples):

    ARM     grad_phi = (f(b~) - f(b)) (u - 1/2)
    DisARM  grad_phi_d = 1/2 (f(b) - f(b~)) (-1)^{b~_d} 1[b_d != b~_d] sigmoid(|phi_d|)

DisARM is ARM with u integrated out given (b, b~) (Rao-Blackwellised), so its variance is never
higher. The surrogate's value is the average cost (f(b) + f(b~)) / 2; the gradient is attached to
the logits with `(phi - stop(phi))`, so it chains to whatever produced them.

References:
    Yin, M., Zhou, M. (2019). ARM: Augment-REINFORCE-merge gradient for stochastic binary networks. ICLR.
    Dong, Z., Mnih, A., Tucker, G. (2020). DisARM: An antithetic gradient estimator for binary latent
    variables. NeurIPS.
"""
from __future__ import annotations

import torch

from estimators.families import base_distribution
from estimators.registry import register


def _antithetic_pair(dist, num_samples: int):
    logits = base_distribution(dist).logits
    u = torch.rand((num_samples, *logits.shape), dtype=logits.dtype, device=logits.device)
    probs = torch.sigmoid(logits).detach()
    b = (u < probs).to(logits.dtype)
    b_anti = (1 - u < probs).to(logits.dtype)
    return logits, u, b, b_anti


def _attach(value, per_logit_grad, logits, dist):
    """value + sum over event dims of stop(grad) * (logits - stop(logits))."""
    event_dims = tuple(range(-len(dist.event_shape), 0)) if dist.event_shape else ()
    attached = per_logit_grad.detach() * (logits - logits.detach())
    return value + (attached.sum(event_dims) if event_dims else attached)


def _expand_cost(cost, dist):
    return cost.reshape(*cost.shape, *([1] * len(dist.event_shape)))


@register("arm", families=("bernoulli",), unbiased=True, f_evals=2,
          summary="ARM: antithetic augment-REINFORCE-merge, (f(b~) - f(b)) (u - 1/2)",
          reference="Yin & Zhou 2019, ICLR")
def arm(f, dist, num_samples: int = 1) -> torch.Tensor:
    """surrogate = (f(b) + f(b~)) / 2 + sum_d stop((f(b~) - f(b)) (u_d - 1/2)) (phi_d - stop(phi_d))."""
    logits, u, b, b_anti = _antithetic_pair(dist, num_samples)
    cost, cost_anti = f(b), f(b_anti)
    grad = _expand_cost(cost_anti - cost, dist) * (u - 0.5)
    return _attach((cost + cost_anti) / 2, grad, logits, dist)


@register("disarm", families=("bernoulli",), unbiased=True, f_evals=2,
          summary="DisARM: ARM Rao-Blackwellised over u given the antithetic pair",
          reference="Dong, Mnih & Tucker 2020, NeurIPS")
def disarm(f, dist, num_samples: int = 1) -> torch.Tensor:
    """surrogate = (f(b) + f(b~)) / 2 + sum_d stop(1/2 (f(b) - f(b~)) (-1)^{b~_d} 1[b_d != b~_d] sigmoid(|phi_d|)) (phi_d - stop(phi_d))."""
    logits, _, b, b_anti = _antithetic_pair(dist, num_samples)
    cost, cost_anti = f(b), f(b_anti)
    sign = 1 - 2 * b_anti  # (-1)^{b~}
    grad = 0.5 * _expand_cost(cost - cost_anti, dist) * sign * (b != b_anti) * torch.sigmoid(logits.detach().abs())
    return _attach((cost + cost_anti) / 2, grad, logits, dist)
