"""Estimates in the parameters a user cares about, as coordinates in an isometric embedding.

A problem with a gradient map J^T (a VAE's encoder Jacobian, benchmarks.tasks.vae) draws its
estimates g_i in the distribution's parameters eta, but reports figures for J^T g_i, whose
dimension (every encoder weight) is too large to form N times. Every figure of gradient_metrics
(variance, bias, MSE, cosine, SNR and their intervals) depends on the mapped vectors only through
their inner products. So with the M = N + 2 vectors

    v_0 = g_ref,   v_1 = mean(g) - g_ref,   v_{1+i} = g_i - mean(g)   (i = 1..N)

and their Gram matrix G_jk = <J^T v_j, J^T v_k> = U diag(lambda) U^T, the rows of
F = U diag(sqrt(lambda)) are points of R^M with exactly those inner products: an isometric copy of
the mapped vectors. The embedded estimates F_0 + F_1 + F_{1+i} and the embedded reference F_0 go
through the same gradient_metrics as every other task. The coordinates themselves have no meaning
(the basis is G's eigenbasis), so per-coordinate figures (bias_z_max) are not reported for them.
"""
from __future__ import annotations

import torch


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
    gram = gradient_map.gram(vectors).double().cpu()
    gram = (gram + gram.T) / 2  # symmetric up to rounding; eigh reads one triangle
    eigenvalues, eigenvectors = torch.linalg.eigh(gram)
    coordinates = eigenvectors * eigenvalues.clamp_min(0).sqrt()
    embedded = torch.full((len(estimates), coordinates.shape[1]), torch.nan, dtype=torch.float64)
    embedded[finite.cpu()] = coordinates[0] + coordinates[1] + coordinates[2:]
    return embedded, coordinates[0]
