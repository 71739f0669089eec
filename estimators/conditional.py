"""Conditional relaxations: noise z~ drawn from p(z | H(z) = b) for a given discrete sample b.

Bernoulli, logit phi, theta = sigmoid(phi): z = phi + logit(u) and b = 1[u > 1 - theta]. Given b,
u is uniform on (1 - theta, 1) if b = 1 and on (0, 1 - theta) if b = 0:

    u' = (1 - theta) + v theta   (b = 1),      u' = v (1 - theta)   (b = 0),      z~ = phi + logit(u')

(computed in a cancellation-free form, see conditional_logistic).

Categorical, probabilities theta = softmax(logits), b = argmax_k (log theta_k + g_k): with
v ~ U(0, 1)^K the Gumbels given the argmax are (Tucker et al. 2017, appendix; Paulus et al. 2021)

    z~_b = -log(-log v_b),     z~_k = -log(-log(v_k) / theta_k - log v_b)  for k != b

computed in log space from e = log(-log v) (the logs of unit exponentials) as z~_b = -e_b and
z~_k = -logaddexp(e_k - log theta_k, e_b): the linear form overflows 1 / theta_k in float32 once a
logit lies about 88 below the largest (exp(88) = inf, and its backward pass 0 * inf = nan on every
row). A masked class (logit -inf, theta_k = 0) gets z~_k = -inf and a zero gradient.

Both are reparameterised in the logits, so gradients flow through z~.

Tied noise (`tied_logistic`, `tied_gumbel`): Tucker et al.'s reference code does not draw v afresh
but takes the v that maps to the very z that produced b (their `_u_to_v`), so z~ equals z in value
and differs only in its gradient (the conditional reparameterisation's, holding v fixed). Given b, that
v is still uniform, so the estimator stays unbiased; c(z) and c(z~) then cancel exactly in the value
of the control variate, which lowers REBAR's variance.

References:
    Tucker, G. et al. (2017). REBAR: low-variance, unbiased gradient estimates for discrete latent
    variable models. NeurIPS.
    Paulus, M. B., Maddison, C. J., Krause, A. (2021). Rao-Blackwellizing the straight-through
    Gumbel-Softmax gradient estimator. ICLR.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _uniform_like(shape, like):
    # Keep v away from 0 and 1, where the logs below are infinite.
    tiny = torch.finfo(like.dtype).tiny
    return torch.rand(shape, dtype=like.dtype, device=like.device).clamp_(tiny, 1 - torch.finfo(like.dtype).eps)


def _inverse_softplus(y: torch.Tensor) -> torch.Tensor:
    """log(exp(y) - 1) for y >= 0, without overflow: y + log(1 - exp(-y))."""
    return y + torch.log(-torch.expm1(-y))


def conditional_logistic(logits: torch.Tensor, hard: torch.Tensor, extra: tuple = (),
                         logit_v: torch.Tensor | None = None) -> torch.Tensor:
    """Logistic-perturbed logits z~ with sign(z~) matching the Bernoulli sample `hard`.

    `extra` leading dimensions draw several independent z~ per sample (Gumbel-Rao's K). Written in
    the algebraically equal form that avoids 1 - u' and 1 - theta, which cancel badly in float32:

        b = 1:  z~ = softplus(logit(v) + softplus(phi)),   b = 0:  z~ = -softplus(-logit(v) + softplus(-phi))
    """
    if logit_v is None:
        v = _uniform_like((*extra, *hard.shape), logits)
        logit_v = torch.log(v) - torch.log1p(-v)
    ones = F.softplus(logit_v + F.softplus(logits))
    zeros = -F.softplus(-logit_v + F.softplus(-logits))
    return torch.where(hard.bool(), ones, zeros)


def tied_logistic(logits: torch.Tensor, z: torch.Tensor, hard: torch.Tensor) -> torch.Tensor:
    """z~ tied to z = phi + logit(u) (hard = 1[z > 0]): the v for which conditional_logistic gives back z,
    found by inverting it (b = 1: logit v = softplus^-1(z) - softplus(phi); b = 0: logit v =
    softplus(-phi) - softplus^-1(-z)), held fixed."""
    z, phi = z.detach(), logits.detach()
    logit_v = torch.where(hard.bool(), _inverse_softplus(z.clamp_min(0)) - F.softplus(phi),
                          F.softplus(-phi) - _inverse_softplus((-z).clamp_min(0)))
    return conditional_logistic(logits, hard, logit_v=logit_v)


def conditional_gumbel(logits: torch.Tensor, hard: torch.Tensor, extra: tuple = (),
                       log_exponentials: torch.Tensor | None = None) -> torch.Tensor:
    """Gumbel-perturbed normalised logits z~ whose argmax is the one-hot sample `hard`.

    `log_exponentials`: e = log(-log v) for given uniforms v (held fixed); drawn afresh when None."""
    log_theta = torch.log_softmax(logits, -1)
    # A masked class gets a finite stand-in, so that no nan reaches the gradient, and z~ = -inf below. Always
    # applied (no `if masked.any()`, which would wait for the GPU on every call).
    masked = torch.isneginf(log_theta.detach())
    log_theta = log_theta.masked_fill(masked, 0.0)
    if log_exponentials is None:
        log_exponentials = torch.log(-_uniform_like((*extra, *hard.shape), logits).log())
    log_exponential_b = (log_exponentials * hard).sum(-1, keepdim=True)   # e at the sampled class
    top = -log_exponential_b                                               # Gumbel(0) max
    others = -torch.logaddexp(log_exponentials - log_theta, log_exponential_b)
    return torch.where(hard.bool(), top, others).masked_fill(masked, -math.inf)


def tied_gumbel(logits: torch.Tensor, z: torch.Tensor, hard: torch.Tensor) -> torch.Tensor:
    """z~ tied to z = logits + g (hard = its argmax): with z' = z - logsumexp(logits) = log theta + g,
    the v for which conditional_gumbel gives back z' has, in e = log(-log v), e_b = -z'_b and, for k != b,
    e_k = log theta_k - z'_k + log(1 - exp(z'_k - z'_b)) (from -log v_k = theta_k (exp(-z'_k) -
    exp(-z'_b)), written without exp(-z'), which overflows); held fixed. z~ equals z' (softmax(z~ / tau)
    equals softmax(z / tau)) in value."""
    log_theta = torch.log_softmax(logits.detach(), -1)
    shifted = z.detach() - torch.logsumexp(logits.detach(), -1, keepdim=True)
    at_b = torch.where(hard.bool(), shifted, 0.0).sum(-1, keepdim=True)   # not shifted * hard: -inf * 0 = nan
    others = log_theta - shifted + torch.log1p(-torch.exp(shifted - at_b))
    # A masked class (theta_k = 0, z'_k = -inf) gives -inf + inf = nan here: any finite value will do,
    # since conditional_gumbel sets z~ = -inf there.
    log_exponentials = torch.where(hard.bool(), -at_b, others.masked_fill(torch.isneginf(log_theta), 0.0))
    return conditional_gumbel(logits, hard, log_exponentials=log_exponentials)
