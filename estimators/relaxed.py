"""Gumbel-Softmax (Concrete) and straight-through estimators for Bernoulli and categorical latents.

Concrete relaxation (Maddison et al. 2017; Jang et al. 2017). For logits l over K classes and
Gumbel noise g_k = -log(-log u_k), u_k ~ U(0, 1):

    y = softmax((l + g) / tau),   argmax_k (l_k + g_k) ~ Categorical(softmax(l))

For a Bernoulli with logit l the binary Concrete uses logistic noise L = log u - log(1 - u):

    y = sigmoid((l + L) / tau),   1[l + L > 0] ~ Bernoulli(sigmoid(l))

The cost is evaluated at the relaxed y, so the gradient is biased for tau > 0 (the bias vanishes
as tau -> 0 while the variance grows). Noise comes from `torch.rand` and two in-place logs (3x
faster than `F.gumbel_softmax`'s `exponential_().log()` on CPU, torch 2.13), and the softmax over
fewer than 16 classes is written out (torch.softmax there measured 3.5-4.5x slower on CPU). Against
one built on `F.gumbel_softmax` at 10^4 samples see the speed goal in tests/benchmarks/test_speed_claims.py;
what both share (the cost f, forward and backward) bounds the ratio (README, Throughput).

References:
    Jang, E., Gu, S., Poole, B. (2017). Categorical reparameterization with Gumbel-Softmax. ICLR.
    Maddison, C. J., Mnih, A., Teh, Y. W. (2017). The Concrete distribution. ICLR.
    Bengio, Y., Leonard, N., Courville, A. (2013). Estimating or propagating gradients through
    stochastic neurons for conditional computation. arXiv:1308.3432.
"""
from __future__ import annotations

import torch

from estimators import sampling
from estimators.errors import NotApplicableError
from estimators.families import base_distribution, family_of
from estimators.hparams import HParam, greater_than
from estimators.registry import register
from estimators.surrogates import straight_through

RELAXABLE = ("bernoulli", "categorical")
# Families whose distributions relax their own sampling path, `relaxed_sample(num_samples, kind, tau)`:
# an autoregressive sequence policy (benchmarks.tasks.autoregressive) feeds the relaxed, straight-through
# or hard token of step t into step t + 1 through its embedding. Only the three estimators below apply
# to them; the others that relax a Bernoulli or a categorical (REBAR, RELAX, Gumbel-Rao, ReinMax) need
# the conditional noise of one categorical site, which a sequence does not have in closed form.
PATH_RELAXED = ("autoregressive",)
TEMPERATURE = HParam(1.0, greater_than(0.0), "the temperature of the relaxation")


def _logits(dist, who: str) -> tuple[str, torch.Tensor]:
    family = family_of(dist)
    if family not in RELAXABLE:
        hint = " (wrap it as OneHotCategorical, whose one-hot samples live on the simplex)" \
            if family == "categorical_index" else ""
        raise NotApplicableError(f"{who} relaxes Bernoulli and one-hot categorical latents, got {family!r}{hint}")
    return family, base_distribution(dist).logits


def _relaxed_path(dist):
    """The distribution's own relaxed sampling path, or None (a Bernoulli, a categorical)."""
    return getattr(base_distribution(dist), "relaxed_sample", None)


def _uniform(num_samples: int, logits: torch.Tensor) -> torch.Tensor:
    # torch.rand can return exactly 0 (probability 2^-24 in float32); log(0) = -inf poisons d/dtau.
    return torch.rand((num_samples, *logits.shape), dtype=logits.dtype, device=logits.device) \
        .clamp_min_(torch.finfo(logits.dtype).tiny)


def gumbel_noise(num_samples: int, logits: torch.Tensor) -> torch.Tensor:
    """Standard Gumbel noise g = -log(-log u) shaped (S, *logits.shape)."""
    return _uniform(num_samples, logits).log_().neg_().log_().neg_()


def logistic_noise(num_samples: int, logits: torch.Tensor) -> torch.Tensor:
    """Standard logistic noise L = log u - log(1 - u) shaped (S, *logits.shape)."""
    u = _uniform(num_samples, logits)
    return u.log() - torch.log1p(-u)


def softmax_last(x: torch.Tensor) -> torch.Tensor:
    """softmax over the last axis; on CPU with fewer than 16 classes written out as exp(x - max) / sum.

    torch's CPU softmax kernel is fast along the last axis only from 16 float32 classes on: forward
    and backward on (10^4, 1, K) float32 took 29 ns a row at K = 16 and 286 ns at K = 15, 3.5-4.5x
    the written-out form's for K = 4-15 (and 3x for float64 at K = 8) (measured, torch 2.13, AVX2,
    one thread). The max is detached: softmax is shift-invariant, so this changes neither value nor
    gradient.
    """
    if x.shape[-1] >= 16 or x.device.type != "cpu":
        return torch.softmax(x, -1)
    e = (x - x.detach().amax(-1, keepdim=True)).exp()
    return e * e.sum(-1, keepdim=True).reciprocal()  # a multiply differentiates faster than a divide


def concrete_sample(dist, num_samples: int, tau: float, who: str,
                    with_hard: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A relaxed sample y and, if asked, its hard counterpart (the exact discrete sample it rounds to)."""
    family, logits = _logits(dist, who)
    hard = None
    # (logits + noise) / tau, with the noise scaled in place: one less differentiated op on the
    # (S, ...) tensor. argmax and sign are unchanged by the positive scale 1 / tau.
    noise = logistic_noise if family == "bernoulli" else gumbel_noise
    scaled = noise(num_samples, logits).mul_(1.0 / tau) + logits * (1.0 / tau)
    if family == "bernoulli":
        soft = torch.sigmoid(scaled)
        if with_hard:
            hard = (scaled > 0).to(soft.dtype)
    else:
        soft = softmax_last(scaled)
        if with_hard:
            # Compare with arange rather than F.one_hot, which fails inside vmap(grad).
            classes = torch.arange(logits.shape[-1], device=logits.device)
            hard = (scaled.argmax(-1, keepdim=True) == classes).to(soft.dtype)
    return soft, hard


@register(
    "gumbel_softmax",
    families=PATH_RELAXED,
    needs=("relaxable",),
    unbiased=False,
    hparams={"tau": TEMPERATURE},
    summary="Concrete relaxation: f at softmax((logits + Gumbel) / tau)",
    reference="Jang et al. 2017, ICLR; Maddison et al. 2017, ICLR",
)
def gumbel_softmax(f, dist, num_samples: int = 1, *, tau: float = 1.0) -> torch.Tensor:
    """surrogate_s = f(y_s), y_s the Concrete (binary Concrete for Bernoulli) sample at temperature tau;
    for a sequence, every token relaxed and fed forward relaxed."""
    path = _relaxed_path(dist)
    if path is not None:
        return f(path(num_samples, "concrete", tau))
    soft, _ = concrete_sample(dist, num_samples, tau, "gumbel_softmax")
    return f(soft)


@register(
    "st_gumbel_softmax",
    families=PATH_RELAXED,
    needs=("relaxable",),
    unbiased=False,
    hparams={"tau": TEMPERATURE},
    summary="straight-through Gumbel-Softmax: hard sample forward, Concrete gradient backward",
    reference="Jang et al. 2017, ICLR, section 2.2",
)
def st_gumbel_softmax(f, dist, num_samples: int = 1, *, tau: float = 1.0) -> torch.Tensor:
    """surrogate_s = f(h_s + y_s - stop(y_s)): f sees the exact discrete sample h_s, grad uses d y_s; for a
    sequence, each token's straight-through value is fed forward."""
    path = _relaxed_path(dist)
    if path is not None:
        return f(path(num_samples, "st_concrete", tau))
    soft, hard = concrete_sample(dist, num_samples, tau, "st_gumbel_softmax", with_hard=True)
    return f(straight_through(hard, soft))


@register(
    "straight_through",
    families=PATH_RELAXED,
    needs=("relaxable",),
    unbiased=False,
    summary="straight-through: hard sample forward, gradient of the probabilities backward",
    reference="Bengio et al. 2013, arXiv:1308.3432",
)
def straight_through_estimator(f, dist, num_samples: int = 1) -> torch.Tensor:
    """surrogate_s = f(z_s + p - stop(p)), z_s ~ dist, p = dist's probabilities (Bernoulli p or softmax); for a
    sequence, p_t is step t's and z_t + p_t - stop(p_t) is fed forward."""
    path = _relaxed_path(dist)
    if path is not None:
        return f(path(num_samples, "straight_through"))
    _logits(dist, "straight_through")
    probs = base_distribution(dist).probs
    return f(straight_through(sampling.sample(dist, num_samples), probs.expand(num_samples, *probs.shape)))
