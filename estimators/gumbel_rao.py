"""Gumbel-Rao: straight-through Gumbel-Softmax with its backward pass averaged over K conditional
Gumbel samples, a Rao-Blackwellisation of ST Gumbel-Softmax.

    D ~ p (the exact hard sample),   z~_k ~ p(z | argmax z = D), k = 1..K,   G~_k = stop(z~_k - theta)
    forward: D;   backward: d/dtheta of (1/K) sum_k softmax((theta + G~_k) / tau)

The noise G~_k is held fixed in the backward pass, as ST Gumbel-Softmax holds its Gumbels fixed;
then the expected gradient is ST Gumbel-Softmax's (same bias) and the variance falls with K, down
to that of the conditional expectation (differentiating through z~_k's reparameterisation would
change the expectation). One
f-evaluation per sample: the K relaxations only enter the backward pass. For a Bernoulli the
conditional logistic noise plays the role of the Gumbels.

Reference:
    Paulus, M. B., Maddison, C. J., Krause, A. (2021). Rao-Blackwellizing the straight-through
    Gumbel-Softmax gradient estimator. ICLR.
"""
from __future__ import annotations

import torch

from estimators.conditional import conditional_gumbel, conditional_logistic
from estimators.families import base_distribution, family_of
from estimators.hparams import HParam, integer_at_least
from estimators.registry import register
from estimators.relaxed import TEMPERATURE, gumbel_noise, logistic_noise, softmax_last
from estimators.surrogates import straight_through


@register("gumbel_rao", needs=("relaxable",), unbiased=False, hparams={"tau": TEMPERATURE, "k": HParam(10, integer_at_least(1), "conditional samples averaged in the backward pass")},
          summary="ST Gumbel-Softmax, backward averaged over K conditional Gumbel samples",
          reference="Paulus, Maddison & Krause 2021, ICLR")
def gumbel_rao(f, dist, num_samples: int = 1, *, tau: float = 1.0, k: int = 10) -> torch.Tensor:
    """surrogate_s = f(D_s + y_s - stop(y_s)), y_s = mean over K of the relaxed conditional samples."""
    logits = base_distribution(dist).logits
    if family_of(dist) == "bernoulli":
        hard = (logits.detach() + logistic_noise(num_samples, logits) > 0).to(logits.dtype)
        # Noise G_k = z~_k - theta is held fixed (as in ST-GS, where dz/dtheta = 1); differentiating
        # through the conditional reparameterisation changes the expectation.
        noise = (conditional_logistic(logits.detach(), hard, extra=(k,)) - logits.detach())
        relaxed = torch.sigmoid((logits + noise) / tau)
    else:
        classes = torch.arange(logits.shape[-1], device=logits.device)
        hard = ((logits.detach() + gumbel_noise(num_samples, logits)).argmax(-1, keepdim=True) == classes)
        hard = hard.to(logits.dtype)
        log_probs = torch.log_softmax(logits.detach(), -1)
        noise = conditional_gumbel(log_probs, hard, extra=(k,)) - log_probs
        # A masked class (logit -inf) has z~ = -inf and noise -inf - (-inf) = nan: 0 keeps its relaxed
        # weight at softmax(-inf) = 0.
        noise = noise.masked_fill(torch.isneginf(log_probs), 0.0)
        relaxed = softmax_last((logits + noise) / tau)
    return f(straight_through(hard, relaxed.mean(0)))
