"""A trained VAE at a checkpoint as a gradient problem in its encoder's parameters.

For a fixed minibatch x (B data points) with the decoder frozen, the objective is the -ELBO averaged
over the batch, as a function of the latent's parameters eta = encoder(x):

    L(eta) = (1/B) sum_b ( E_{q(z|eta_b)}[-log p(x_b|z)] + KL(q(z|eta_b) || p(z)) )     (analytic KL)
    L(eta) = (1/B) sum_b   E_{q(z|eta_b)}[-log p(x_b|z) + log q(z|eta_b) - log p(z)]    (sampled KL)

The harness draws N estimates of dL/deta (eta expanded to an (N, B, |eta|) leaf, one backward pass),
exactly as on the toys. The encoder's gradient is the fixed linear map g_enc = J^T g_eta, J the
encoder's Jacobian at x; `EncoderGram` applies it through Gram matrices, layer by layer, without
forming a parameter-sized vector: the weight gradient of a Linear layer is sum_b delta_b h_b^T, so

    <J^T u, J^T v> = sum_layers [ sum_{b,b'} (delta^u_b . delta^v_b') (h_b . h_b') + (sum_b delta^u_b) . (sum_b delta^v_b) ]

with delta^u the cotangent u backpropagated to the layer's output. benchmarks.embedding turns those
inner products into coordinates for the one `gradient_metrics`.

Reference: exact by enumerating the latent when each data point has at most 2^14 configurations (the
registry's enumeration estimator); otherwise estimated by an unbiased estimator chosen from the
registry's metadata (benchmarks.tasks.reference), its standard error in encoder-parameter space.
"""
from __future__ import annotations

import copy
import dataclasses
import functools

import torch
from torch import nn

import estimators
from benchmarks.tasks.protocol import GradientProblem, Reference
from benchmarks.symmetric_product import symmetric_product
from benchmarks.tasks.reference import estimated_reference
from benchmarks.vae_model import VAE
from estimators import NotApplicableError

MAX_ENUMERATION = 2 ** 14
REFERENCE_SAMPLES = 10
# Decoder rows (estimates x samples x batch) per chunk. On CPU 5,000 rows of the 784-wide decoder keep
# the (rows, 784) logits and their gradient in cache-sized pieces (measured 1.7x faster than 50,000);
# a GPU wants large launches instead.
ROWS_BUDGET = {"cpu": 5_000, "cuda": 200_000}
# Cotangent rows (vectors x batch) per chunk of the squared-norm pass: on CPU 10,000 rows keep the
# backpropagated cotangents at 20 MB a layer instead of 200 MB (measured 0.63 s against 1.1 s
# unchunked for N = 1,000, B = 100, 784-512-256).
GRAM_ROWS_BUDGET = {"cpu": 10_000, "cuda": 1_000_000}


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


def _backpropagated(layers, cotangents: torch.Tensor):
    """(layer input Gram h h^T, cotangent at the layer's output) for each layer, from the last one back."""
    delta = cotangents
    for index in range(len(layers) - 1, -1, -1):
        weight, inputs, mask = layers[index]
        yield inputs @ inputs.T, delta
        if index > 0:
            delta = (delta @ weight).mul_(mask)                              # back through Linear, ReLU


def squared_norms(layers, cotangents: torch.Tensor, rows_budget: int | None = None) -> torch.Tensor:
    """||J^T c||^2 over all encoder parameters for each of the (n, B, |eta|) cotangents c, in chunks of at
    most rows_budget cotangent rows (vectors x B)."""
    if len(cotangents) == 0:
        return cotangents.new_zeros(0)
    rows_budget = rows_budget or GRAM_ROWS_BUDGET.get(cotangents.device.type, GRAM_ROWS_BUDGET["cuda"])
    chunk = max(1, rows_budget // cotangents.shape[1])
    parts = []
    for start in range(0, len(cotangents), chunk):
        total = 0
        for inputs_gram, delta in _backpropagated(layers, cotangents[start:start + chunk]):
            total = total + ((delta @ delta.transpose(1, 2)) * inputs_gram).sum((1, 2))   # weight gradient
            total = total + delta.sum(1).square().sum(-1)                                 # bias gradient
        parts.append(total)
    return torch.cat(parts)


def gram_matrix(layers, cotangents: torch.Tensor) -> torch.Tensor:
    """<J^T c_i, J^T c_j> for all pairs of the (M, B, |eta|) cotangents: per layer the flattened cotangents
    times the flattened (h h^T) cotangents, an (M, B width) x (B width, M) product, symmetric: only its upper
    triangle is computed, in fixed tiles that round the same on any number of threads
    (benchmarks.symmetric_product), so the figures do not depend on the executor."""
    gram = cotangents.new_zeros(len(cotangents), len(cotangents))
    for inputs_gram, delta in _backpropagated(layers, cotangents):
        gram += symmetric_product(delta.flatten(1), (inputs_gram @ delta).flatten(1))      # weight gradient
        sums = delta.sum(1)
        gram += symmetric_product(sums, sums)                                             # bias gradient
    return gram


class EncoderGram:
    """The encoder's gradient map J^T at a fixed minibatch, applied through Gram matrices."""

    def __init__(self, model: VAE, x: torch.Tensor):
        self.layers = encoder_layers(model, x)
        self.batch, self.width = len(x), model.latent.param_size

    def _cotangents(self, vectors: torch.Tensor) -> torch.Tensor:
        weight_dtype = self.layers[0][0].dtype
        return vectors.reshape(len(vectors), self.batch, self.width).to(weight_dtype)

    def squared_norms(self, vectors: torch.Tensor) -> torch.Tensor:
        return squared_norms(self.layers, self._cotangents(vectors))

    def gram(self, vectors: torch.Tensor) -> torch.Tensor:
        return gram_matrix(self.layers, self._cotangents(vectors))


@dataclasses.dataclass(frozen=True, eq=False)
class VAEProblem(GradientProblem):
    """The encoder-gradient problem of one model at one evaluation point (see the module docstring)."""

    model: VAE | None = None
    x: torch.Tensor | None = None
    kl: str = "analytic"
    reference_estimates: int = 200

    def cost_for(self, dist):
        reconstruction = self.model.reconstruction_cost(self.x)
        if self.kl == "analytic":
            return reconstruction
        latent = self.model.latent
        prior = latent.prior(self.x).expand(dist.batch_shape)

        def cost(z):
            if latent.kind != "gaussian" and not ((z == 0) | (z == 1)).all():
                raise NotApplicableError("--kl sampled evaluates log q(z) at the estimator's samples, and this "
                                         "estimator passes relaxed ones; use --kl analytic with it")
            return reconstruction(z) + dist.log_prob(z) - prior.log_prob(z)
        return cost

    def deterministic_cost(self, params):
        if self.kl != "analytic":
            return None
        latent = self.model.latent
        return latent.kl_to_prior(latent.posterior(params["eta"]))

    def estimates_per_chunk(self, n_samples: int, device: str) -> int:
        return ROWS_BUDGET.get(torch.device(device).type, ROWS_BUDGET["cuda"]) // (n_samples * len(self.x))

    def reference(self) -> Reference:
        # Per thread count: the reference's own draws round differently on other threads (benchmarks.executors),
        # and a run's figures come back only with the reference made on its threads.
        return _vae_reference(self, torch.get_num_threads())


@functools.lru_cache(maxsize=8)
def _vae_reference(problem: VAEProblem, threads: int) -> Reference:
    from benchmarks.harness import draw_estimates  # the harness imports the tasks

    if problem.model.latent.configurations <= MAX_ENUMERATION:
        device, dtype = problem.x.device.type, problem.x.dtype
        exact = draw_estimates(estimators.get("exact"), problem, 1, 1, device, dtype)[0]
        return Reference(exact.double().cpu(), 0.0, "exact (enumeration)")
    return estimated_reference(problem, problem.reference_estimates, REFERENCE_SAMPLES, device=problem.x.device.type,
                               dtype=problem.x.dtype, seed=problem.settings.get("seed", 0))


def vae_problem(model: VAE, x: torch.Tensor, kl: str = "analytic", reference_estimates: int = 200,
                step: int | None = None, seed: int = 0) -> VAEProblem:
    """The problem of `model` as it is now, on the fixed minibatch x. The problem keeps a copy of the
    model: training goes on after the evaluation point, and a reference computed later must still see
    the weights the encoder's activations (the Gram map) were taken at."""
    model = copy.deepcopy(model)
    latent = model.latent
    eta = model.encoder(x).detach()
    return VAEProblem(
        id=f"vae-{latent}-{kl}" + ("" if step is None else f"@step={step}"), family=latent.family,
        eval_point="" if step is None else f"step={step}",
        description=f"-ELBO of a {latent} VAE on a fixed minibatch of {len(x)}, {kl} KL, in the encoder's parameters",
        point=lambda: {"eta": eta},
        make_distribution=lambda params, v: latent.posterior(params["eta"], validate_args=v),
        settings={"latent": str(latent), "kl": kl, "batch": len(x), "step": step, "seed": seed},
        gradient_map=EncoderGram(model, x), batch_mean=True, model=model, x=x, kl=kl, reference_estimates=reference_estimates)
