"""The pathwise (reparameterization) estimator.

    z = g(theta, eps), eps ~ p(eps)  =>  grad_theta E[f(z)] = E[grad_z f(z) grad_theta g(theta, eps)]

torch's `rsample` provides g (and implicit reparameterization for Gamma, Beta and Dirichlet), so
the estimator applies to every distribution whose class has `has_rsample`: the AEVB paper's three
kinds (inverse CDF: Exponential, Cauchy; location-scale: Normal, Laplace, Student-t, Logistic;
composition: LogNormal) and Uniform among them. Requires f differentiable in z.

References:
    Kingma, D. P., Welling, M. (2014). Auto-encoding variational Bayes. ICLR.
    Rezende, D. J., Mohamed, S., Wierstra, D. (2014). Stochastic backpropagation and approximate
    inference in deep generative models. ICML.
"""
from __future__ import annotations

import torch

from estimators.registry import register


@register(
    "pathwise",
    needs=("rsample",),
    unbiased=True,
    summary="reparameterization gradient through rsample",
    reference="Kingma & Welling 2014, ICLR; Rezende et al. 2014, ICML",
)
def pathwise(f, dist, num_samples: int = 1) -> torch.Tensor:
    """surrogate_s = f(z_s) with z_s = dist.rsample(): gradient flows through the sample."""
    return f(dist.rsample((num_samples,)))
