"""Bias and variance of a VAE's encoder gradient, at frozen parameters, on a fixed minibatch.

For a fixed minibatch x the encoder's gradient is a fixed linear map of the gradient with respect to
the latent's parameters eta = encoder(x): g_enc = J^T g_eta, J the encoder's Jacobian. So

1. N estimates of g_eta are drawn at once, as on the toy objectives (eta expanded to an (N, ...)
   leaf, one backward pass), in chunks;
2. every figure needed is a squared norm ||J^T c||^2 of some cotangent c (g_i - mean, g_i - g_ref,
   mean - g_ref), and for an MLP it is computed layer by layer without forming a parameter-sized
   vector: the weight gradient of a Linear layer is sum_b delta_b h_b^T, whose squared norm is
   sum_{b,b'} (delta_b . delta_b') (h_b . h_b'), two B x B Gram matrices. Backpropagating N
   cotangents of width B x |eta| costs a few B x B x width products per layer instead of N
   backward passes through the 784 x 512 layer.

Reference gradient: exact by enumerating the latent when each data point has at most 2^14
configurations; otherwise the mean of many estimates of an unbiased estimator (pathwise for the
Gaussian, reinforce_loo otherwise), whose standard error is recorded beside it.
"""
from __future__ import annotations

import math

import torch
from torch import nn

import estimators
from benchmarks.vae_model import VAE

MAX_ENUMERATION = 2 ** 14
REFERENCE_SAMPLES = 10
# Decoder rows (estimates x samples x batch) per chunk. On CPU 5,000 rows of the 784-wide decoder keep
# the (rows, 784) logits and their gradient in cache-sized pieces (measured 1.7x faster than 50,000);
# a GPU wants large launches instead.
ROWS_BUDGET = {"cpu": 5_000, "cuda": 200_000}
# Cotangent rows (estimates x batch) per chunk of the Gram-matrix pass: on CPU 10,000 rows keep the
# backpropagated cotangents at 20 MB a layer instead of 200 MB (measured 0.63 s against 1.1 s
# unchunked for N = 1,000, B = 100, 784-512-256).
GRAM_ROWS_BUDGET = {"cpu": 10_000, "cuda": 1_000_000}


def eta_gradients(model: VAE, x: torch.Tensor, estimator, hparams: dict, n: int, num_samples: int,
                  kl: str = "analytic", rows_budget: int | None = None) -> torch.Tensor:
    """(n, B, |eta|) estimates of d(-ELBO averaged over the batch)/d eta, eta = encoder(x) frozen.

    Chunks hold at most rows_budget decoder rows (estimates x samples x batch)."""
    eta = model.encoder(x).detach()
    rows_budget = rows_budget or ROWS_BUDGET.get(x.device.type, ROWS_BUDGET["cuda"])
    chunk = max(1, rows_budget // (num_samples * len(x)))
    parts = []
    decoder_params = [p for p in model.decoder.parameters() if p.requires_grad]
    try:
        # Frozen decoder: its weight gradients (a third of the backward pass) are not computed.
        for p in decoder_params:
            p.requires_grad_(False)
        for start in range(0, n, chunk):
            rows = min(chunk, n - start)
            leaf = eta.expand(rows, *eta.shape).clone().requires_grad_()
            shadow = _EncoderOutput(model, leaf)
            loss, _ = shadow.loss(x, estimator, hparams, num_samples, kl)
            grad, = torch.autograd.grad(loss * rows, leaf)  # loss is a mean over the rows: undo it
            parts.append(grad)
    finally:
        for p in decoder_params:
            p.requires_grad_(True)
    return torch.cat(parts)


class _EncoderOutput(VAE):
    """The model with its encoder replaced by a fixed (rows, B, |eta|) output, decoder shared."""

    def __init__(self, model: VAE, eta: torch.Tensor):
        nn.Module.__init__(self)
        self.latent, self.decoder = model.latent, model.decoder
        self.encoder = lambda x: eta


def encoder_layers(model: VAE, x: torch.Tensor):
    """(weight, input, relu-mask-of-input) for each Linear layer of the encoder, in forward order."""
    layers, h, mask = [], x, None
    for module in model.encoder:
        if isinstance(module, nn.Linear):
            layers.append((module.weight.detach(), h.detach(), mask))
            h = module(h)
        elif isinstance(module, nn.ReLU):
            mask = (h > 0).to(h.dtype).detach()
            h = module(h)
        else:
            raise TypeError(f"the Gram-matrix method handles Linear and ReLU layers, got {type(module).__name__}")
    return layers


def squared_norms(layers, cotangents: torch.Tensor, rows_budget: int | None = None) -> torch.Tensor:
    """||J^T c||^2 over all encoder parameters for each of the (n, B, |eta|) cotangents c.

    Done in chunks of at most rows_budget cotangent rows (estimates x B)."""
    if len(cotangents) == 0:
        return cotangents.new_zeros(0)
    rows_budget = rows_budget or GRAM_ROWS_BUDGET.get(cotangents.device.type, GRAM_ROWS_BUDGET["cuda"])
    chunk = max(1, rows_budget // cotangents.shape[1])
    return torch.cat([_squared_norms(layers, cotangents[start:start + chunk])
                      for start in range(0, len(cotangents), chunk)])


def _squared_norms(layers, cotangents: torch.Tensor) -> torch.Tensor:
    total = torch.zeros(cotangents.shape[0], dtype=cotangents.dtype, device=cotangents.device)
    delta = cotangents
    for index in range(len(layers) - 1, -1, -1):
        weight, inputs, mask = layers[index]
        inputs_gram = inputs @ inputs.T                                     # (B, B)
        delta_gram = delta @ delta.transpose(1, 2)                           # (n, B, B)
        total += (delta_gram * inputs_gram).sum((1, 2))                      # weight gradient
        total += delta.sum(1).square().sum(-1)                               # bias gradient
        if index > 0:
            delta = (delta @ weight).mul_(mask)                              # back through Linear, ReLU
    return total


def reference_gradient(model: VAE, x: torch.Tensor, kl: str, n_estimates: int) -> tuple[torch.Tensor, str, float]:
    """(g_ref in eta space (B, |eta|), how it was made, its standard error in encoder-parameter space).

    The standard error is the root-mean-square error of the reference as an estimate of the encoder's
    exact gradient, sqrt(E ||J^T (g_ref - E g)||^2) = sqrt(trace Cov / n): 0 for enumeration, else
    from the same Gram-matrix pass as the estimators' variance."""
    latent = model.latent
    if latent.configurations <= MAX_ENUMERATION:
        grad = eta_gradients(model, x, estimators.get("exact"), {}, 1, 1, "analytic")[0]
        return grad, "exact (enumeration)", 0.0
    name = "pathwise" if latent.kind == "gaussian" else "reinforce_loo"
    spec = estimators.get_spec(name)
    draws = eta_gradients(model, x, spec.make(), dict(spec.hparams), n_estimates, REFERENCE_SAMPLES, kl)
    mean = draws.double().mean(0)
    trace = squared_norms(encoder_layers(model, x), draws - mean.to(draws.dtype)).double().sum() / (n_estimates - 1)
    return mean.to(draws.dtype), f"{name}, {n_estimates} x {REFERENCE_SAMPLES} samples", math.sqrt(trace / n_estimates)


def encoder_gradient_metrics(model: VAE, x: torch.Tensor, spec_name: str, hparams: dict, n: int,
                             num_samples: int, kl: str, reference, rows_budget: int | None = None) -> dict:
    """variance_trace, bias_norm and mse of the encoder gradient (all encoder parameters), with intervals.

    One Gram-matrix pass over the N centred cotangents c_i = g_i - mean gives every figure:

        variance = sum_i ||J^T c_i||^2 / (N - 1)
        bias     = ||J^T (mean - g_ref)||
        mse      = (1/N) sum_i ||J^T (g_i - g_ref)||^2 = (N - 1)/N variance + bias^2

    (the cross term 2/N sum_i <J^T c_i, J^T (mean - g_ref)> vanishes because the c_i sum to zero).
    The N-estimate pass runs in the model's dtype: on centred cotangents float32 agrees with float64
    to ~1e-6 relative (tests/test_vae.py), far inside the ~1/sqrt(N) sampling error; the single bias
    vector is done in float64."""
    spec = estimators.get_spec(spec_name)
    estimator = spec.make()
    for _ in range(spec.warmup_calls):
        eta_gradients(model, x, estimator, hparams, min(n, spec.warmup_rows or 50), num_samples, kl, rows_budget)
    draws = eta_gradients(model, x, estimator, hparams, n, num_samples, kl, rows_budget)
    finite = torch.isfinite(draws).flatten(1).all(-1)
    draws = draws[finite]
    count = len(draws)
    ref, how, ref_se = reference
    if count < 2:  # no spread to measure: say so in the row rather than stop the run
        nan = float("nan")
        return {"estimator": spec_name, "grad_n_estimates": count, "grad_nonfinite": int((~finite).sum()),
                **{f"grad_{name}{end}": nan for name in ("variance_trace", "bias_norm") for end in ("", "_lo", "_hi")},
                "grad_mse": nan, "grad_reference": how, "grad_reference_se": ref_se}
    layers = encoder_layers(model, x)
    mean = draws.double().mean(0)
    spread = squared_norms(layers, draws - mean.to(draws.dtype)).double() * count / (count - 1)
    variance = float(spread.mean())
    variance_se = float(spread.std() / math.sqrt(count))
    layers64 = [(w.double(), h.double(), None if m is None else m.double()) for w, h, m in layers]
    bias = float(squared_norms(layers64, (mean - ref.double()).unsqueeze(0))[0].sqrt())
    # |observed - true bias| <= ||mean - E g|| + ||g_ref - g_exact||, and by Chebyshev (Markov on the
    # squared norm) each term is under sqrt(E||.||^2 / (alpha/2)) with probability >= 1 - alpha/2:
    # E||mean - E g||^2 = variance / N, E||g_ref - g_exact||^2 = ref_se^2. alpha = 0.05 in all.
    radius = math.sqrt(variance / (count * 0.025)) + math.sqrt(ref_se ** 2 / 0.025)
    return {
        "estimator": spec_name, "grad_n_estimates": count, "grad_nonfinite": int((~finite).sum()),
        "grad_variance_trace": variance, "grad_variance_trace_lo": variance - 1.96 * variance_se,
        "grad_variance_trace_hi": variance + 1.96 * variance_se,
        "grad_bias_norm": bias, "grad_bias_norm_lo": max(0.0, bias - radius), "grad_bias_norm_hi": bias + radius,
        "grad_mse": variance * (count - 1) / count + bias ** 2, "grad_reference": how, "grad_reference_se": ref_se,
    }
