"""Implicit reparameterization for Gamma, Beta and Dirichlet through torch's `rsample`.

For a sample z = F^{-1}(u; theta) whose inverse CDF has no closed form, differentiate the identity
F(z; theta) = u implicitly: dz/dtheta = -(dF/dtheta) / p(z; theta). torch's Gamma, Beta and
Dirichlet `rsample` implement this (Beta and Dirichlet through Gamma), so the estimator is the
pathwise one restricted to these families. Requires f differentiable in z. Unbiased.

Reference:
    Figurnov, M., Mohamed, S., Mnih, A. (2018). Implicit reparameterization gradients. NeurIPS.
"""
from __future__ import annotations

import torch

from estimators.registry import register


@register("implicit_reparam", families=("gamma", "beta", "dirichlet"), unbiased=True,
          summary="implicit reparameterization gradient (torch rsample for Gamma, Beta, Dirichlet)",
          reference="Figurnov, Mohamed & Mnih 2018, NeurIPS")
def implicit_reparam(f, dist, num_samples: int = 1) -> torch.Tensor:
    """surrogate_s = f(z_s), z_s = dist.rsample() with dz/dtheta = -(dF/dtheta) / p(z)."""
    return f(dist.rsample((num_samples,)))
