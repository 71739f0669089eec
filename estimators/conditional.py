"""Conditional relaxations: noise z~ drawn from p(z | H(z) = b) for a given discrete sample b.

Bernoulli, logit phi, theta = sigmoid(phi): z = phi + logit(u) and b = 1[u > 1 - theta]. Given b,
u is uniform on (1 - theta, 1) if b = 1 and on (0, 1 - theta) if b = 0:

    u' = (1 - theta) + v theta   (b = 1),      u' = v (1 - theta)   (b = 0),      z~ = phi + logit(u')

(computed in a cancellation-free form, see conditional_logistic).

Categorical, probabilities theta = softmax(logits), b = argmax_k (log theta_k + g_k): with
v ~ U(0, 1)^K the Gumbels given the argmax are (Tucker et al. 2017, appendix; Paulus et al. 2021)

    z~_b = -log(-log v_b),     z~_k = -log(-log(v_k) / theta_k - log v_b)  for k != b

Both are reparameterised in the logits, so gradients flow through z~.

References:
    Tucker, G. et al. (2017). REBAR: low-variance, unbiased gradient estimates for discrete latent
    variable models. NeurIPS.
    Paulus, M. B., Maddison, C. J., Krause, A. (2021). Rao-Blackwellizing the straight-through
    Gumbel-Softmax gradient estimator. ICLR.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _uniform_like(shape, like):
    # Keep v away from 0 and 1, where the logs below are infinite.
    tiny = torch.finfo(like.dtype).tiny
    return torch.rand(shape, dtype=like.dtype, device=like.device).clamp_(tiny, 1 - torch.finfo(like.dtype).eps)


def conditional_logistic(logits: torch.Tensor, hard: torch.Tensor, extra: tuple = ()) -> torch.Tensor:
    """Logistic-perturbed logits z~ with sign(z~) matching the Bernoulli sample `hard`.

    `extra` leading dimensions draw several independent z~ per sample (Gumbel-Rao's K). Written in
    the algebraically equal form that avoids 1 - u' and 1 - theta, which cancel badly in float32:

        b = 1:  z~ = softplus(logit(v) + softplus(phi)),   b = 0:  z~ = -softplus(-logit(v) + softplus(-phi))
    """
    v = _uniform_like((*extra, *hard.shape), logits)
    logit_v = torch.log(v) - torch.log1p(-v)
    ones = F.softplus(logit_v + F.softplus(logits))
    zeros = -F.softplus(-logit_v + F.softplus(-logits))
    return torch.where(hard.bool(), ones, zeros)


def conditional_gumbel(logits: torch.Tensor, hard: torch.Tensor, extra: tuple = ()) -> torch.Tensor:
    """Gumbel-perturbed normalised logits z~ whose argmax is the one-hot sample `hard`."""
    log_theta = torch.log_softmax(logits, -1)
    v = _uniform_like((*extra, *hard.shape), logits)
    log_v = v.log()
    log_v_b = (log_v * hard).sum(-1, keepdim=True)          # log v at the sampled class
    top = -torch.log(-log_v_b)                               # Gumbel(0) max
    others = -torch.log(-log_v * torch.exp(-log_theta) - log_v_b)
    return torch.where(hard.bool(), top, others)
