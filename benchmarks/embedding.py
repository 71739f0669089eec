"""Estimates in the parameters a user cares about, as coordinates in an isometric embedding.

A problem with a gradient map J^T (a VAE's encoder Jacobian, benchmarks.tasks.vae) draws its
estimates g_i in the distribution's parameters eta, but reports figures for J^T g_i, whose
dimension (every encoder weight) is too large to form N times. Every figure of gradient_metrics
(variance, bias, MSE, cosine, SNR and their intervals) depends on the mapped vectors only through
their inner products. So with the M = N + 2 vectors

    v_0 = g_ref,   v_1 = mean(g) - g_ref,   v_{1+i} = g_i - mean(g)   (i = 1..N)

and their Gram matrix G_jk = <J^T v_j, J^T v_k>, any F with F F^T = G has rows that are points of
R^M with exactly those inner products: an isometric copy of the mapped vectors. The centred vectors
sum to zero, so G is singular; without the last of them G is (generically) positive definite and its
Cholesky factor gives F, the last row being minus the sum of the other centred rows. Where that
fails (estimates without spread, the exact estimator) F = U diag(sqrt(lambda)) from G = U diag(lambda)
U^T. (Measured on 2 busy cores, torch 2.13: Cholesky of 1,001 x 1,001 in 0.05 s; eigh 0.2 s on one
thread, 4-16 s on two contended ones, hence one thread.) The embedded estimates F_0 + F_1 + F_{1+i} and the embedded reference F_0 go
through the same gradient_metrics as every other task. The coordinates themselves have no meaning
(the basis comes from a factorisation of G), so per-coordinate figures (bias_z_max, variance_max) are
not reported for them.
"""
from __future__ import annotations

import torch

from benchmarks.metrics import one_thread


def isometric_embedding(gradient_map, estimates: torch.Tensor, reference: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """(embedded estimates (N, M), embedded reference (M,)), float64. Rows of `estimates` with a
    non-finite coordinate stay non-finite rows, so gradient_metrics counts them as it does elsewhere."""
    estimates = estimates.reshape(estimates.shape[0], -1)
    finite = torch.isfinite(estimates).all(-1)
    kept = estimates[finite]
    mean = kept.double().mean(0)
    reference = reference.to(device=estimates.device, dtype=torch.float64).reshape(-1)
    vectors = torch.cat([reference.unsqueeze(0), (mean - reference).unsqueeze(0),
                         (kept.double() - mean)]).to(estimates.dtype)
    coordinates = gram_coordinates(gradient_map.gram(vectors).double().cpu())
    embedded = torch.full((len(estimates), coordinates.shape[1]), torch.nan, dtype=torch.float64)
    embedded[finite.cpu()] = coordinates[0] + coordinates[1] + coordinates[2:]
    return embedded, coordinates[0]


def gram_coordinates(gram: torch.Tensor) -> torch.Tensor:
    """F with F F^T = gram, for the Gram matrix of [v_0, v_1, centred rows that sum to zero]. On one thread:
    the factorisation then rounds the same in every executor (and eigh is fastest there, see above)."""
    with one_thread():
        gram = (gram + gram.T) / 2  # symmetric up to rounding
        head = gram[:-1, :-1]
        factor, info = torch.linalg.cholesky_ex(head)
        if int(info) == 0 and bool(torch.isfinite(factor).all()):
            last = -factor[2:].sum(0, keepdim=True)  # the centred rows sum to zero
            return torch.cat([factor, last])
        eigenvalues, eigenvectors = torch.linalg.eigh(gram)
        return eigenvectors * eigenvalues.clamp_min(0).sqrt()
