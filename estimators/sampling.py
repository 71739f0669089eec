"""Sampling with log-probabilities: torch.distributions' own, with fast paths for three families.

The score-function estimators spend most of their time here, and torch's general code paths cost
more than the estimator itself (measured on CPU, torch 2.13, tests/benchmarks/test_overhead.py):
`Bernoulli.sample` (torch.bernoulli) was about 7x slower than comparing uniforms with the
probabilities, `OneHotCategorical.sample` (multinomial, K exponentials per draw) about 4.5x slower
than the inverse CDF over 10 classes, and `log_prob` of Bernoulli, Normal and OneHotCategorical
expand the parameters to the sample's shape. The fast paths draw from the same distributions and
return the same log-densities (tests/test_registry.py checks both):

    Bernoulli:          z = 1[u < p],                   log p(z) = z l - softplus(l)
    Normal:             x = mu + sigma eps,             log p(x) = -((x - mu) / sigma)^2 / 2 - log sigma - log(2 pi) / 2
    OneHotCategorical:  z = e_k, c_(k-1) <= u < c_k,    log p(z) = sum_k z_k log softmax(l)_k

Every other family goes through the distribution's `sample` and `log_prob`.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from estimators.families import base_distribution, family_of


HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _reinterpreted_dims(dist) -> int:
    """How many trailing batch dims of the base distribution `Independent` turned into event dims."""
    return len(dist.event_shape) - len(base_distribution(dist).event_shape)


def _sum_reinterpreted(per_site: torch.Tensor, dist) -> torch.Tensor:
    dims = _reinterpreted_dims(dist)
    return per_site.sum(tuple(range(-dims, 0))) if dims else per_site


def sample(dist, num_samples: int) -> torch.Tensor:
    """num_samples draws, shaped (S, *batch_shape, *event_shape), without a gradient path."""
    family, base = family_of(dist), base_distribution(dist)
    with torch.no_grad():
        if family == "bernoulli":
            probs = base.probs
            uniform = torch.rand((num_samples, *probs.shape), dtype=probs.dtype, device=probs.device)
            return (uniform < probs).to(probs.dtype)
        if family == "normal":
            loc, scale = torch.broadcast_tensors(base.loc, base.scale)
            return loc + scale * torch.randn((num_samples, *loc.shape), dtype=loc.dtype, device=loc.device)
        if family == "categorical":
            return _one_hot_by_inverse_cdf(base.probs, num_samples)
    return dist.sample((num_samples,))


def _one_hot_by_inverse_cdf(probs: torch.Tensor, num_samples: int) -> torch.Tensor:
    """One-hot draws: class k where c_(k-1) <= u < c_k, c the cumulative probabilities, u ~ U(0, c_K).

    u is scaled by the computed total c_K rather than 1, so rounding in the cumulative sum cannot push
    u past the last positive-probability class. A zero-probability class must get c_k = c_(k-1)
    exactly, so that its interval is empty and it is never drawn: CPU's sequential scan gives that
    (c_(k-1) + 0); a parallel scan, as on CUDA, need not, so there its entry is masked to 0 before
    a running max (on CPU that running max would cost 3x the whole draw, measured). Like torch's own
    samplers with validation off, NaN probabilities are not caught here: the draw is then arbitrary."""
    cumulative = _cumulative(probs, sequential_scan=probs.device.type == "cpu")
    uniform = torch.rand((num_samples, *probs.shape[:-1], 1), dtype=probs.dtype, device=probs.device)
    index = (uniform * cumulative[..., -1:] >= cumulative[..., :-1]).sum(-1, keepdim=True)
    return (index == torch.arange(probs.shape[-1], device=probs.device)).to(probs.dtype)


def _cumulative(probs: torch.Tensor, sequential_scan: bool) -> torch.Tensor:
    """Cumulative probabilities over the last axis, with c_k = c_(k-1) exactly where p_k = 0."""
    cumulative = probs.cumsum(-1)
    return cumulative if sequential_scan else cumulative.masked_fill(probs == 0, 0.0).cummax(-1).values


def log_prob(dist, value: torch.Tensor) -> torch.Tensor:
    """log p(value), shaped like value without the event dims; differentiable in the parameters."""
    family, base = family_of(dist), base_distribution(dist)
    if family == "bernoulli":
        # Per site, not as sum(z l) - sum(softplus(l)): over 784 sites that difference of two large
        # sums lost about 4e-4 nats in float32 (measured), against 3e-5 per site.
        logits = base.logits
        return _sum_reinterpreted(value * logits - F.softplus(logits), dist)  # log sigmoid(+-l)
    if family == "normal":
        # -log sigma - log(2 pi) / 2 does not depend on the sample: reduced at the parameters' shape
        # and added once per sample, not broadcast to the (S, ...) shape first (three fewer passes).
        standard = (value - base.loc) / base.scale
        normaliser = (base.scale.log() + HALF_LOG_2PI).expand(base.batch_shape)
        return _sum_reinterpreted(standard.square(), dist).mul(-0.5) - _sum_reinterpreted(normaliser, dist)
    if family == "categorical":
        # torch keeps logits normalised. A masked class (logit -inf, never drawn) is clamped to the
        # most negative float at the parameters' shape, so that it contributes 0 * -3e38 = 0, not
        # 0 * -inf = nan; its gradient is 0 either way. A `where` over the (S, ...) samples did the
        # same with one more pass over them. (A value on a masked class gets -3e38, not -inf.)
        logits = base.logits.clamp_min(torch.finfo(base.logits.dtype).min)
        return _sum_reinterpreted((value * logits).sum(-1), dist)
    return dist.log_prob(value)
