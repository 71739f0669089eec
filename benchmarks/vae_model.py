"""The VAE of the training task: an MLP encoder and decoder, a Bernoulli likelihood, and a Gaussian,
Bernoulli or categorical latent, sampled through any registered estimator (the surrogate contract).

    latent kinds:  gaussian:D      q = N(mu, sigma^2),  p = N(0, I)          (Kingma & Welling 2014)
                   bernoulli:D     q = Bernoulli(logits), p = Bernoulli(1/2)
                   categorical:LxK q = L one-hot categoricals over K classes, p uniform (Jang et al. 2017)

    -ELBO(x) = E_q[-log p(x|z)] + KL(q(z|x) || p(z))

With `kl="analytic"` the KL is exact (Latent.kl_to_prior, closed form) and only -log p(x|z) goes
through the estimator (Kingma & Welling's SGVB form B); with `kl="sampled"` the estimator sees
f(z) = -log p(x|z) + log q(z|x) - log p(z) (form A), which needs exact samples (not relaxed ones).
"""
from __future__ import annotations

import dataclasses
import math
import re

import torch
import torch.distributions as D
import torch.nn.functional as F
from torch import nn

from estimators import NotApplicableError


class LatentSpecError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class Latent:
    kind: str        # "gaussian" | "bernoulli" | "categorical"
    size: int        # D, or L for categorical
    classes: int = 1  # K for categorical

    @classmethod
    def parse(cls, text: str) -> "Latent":
        # Signed numbers match here so that gaussian:-3 gets the message about sizes, not "unknown latent".
        match = re.fullmatch(r"(gaussian|bernoulli):(-?\d+)|categorical:(-?\d+)x(-?\d+)", text.strip())
        if not match:
            raise LatentSpecError(f"unknown latent {text!r}; use gaussian:D, bernoulli:D or categorical:LxK "
                                  "(e.g. gaussian:20, bernoulli:200, categorical:20x10)")
        if match.group(1):
            latent = cls(match.group(1), int(match.group(2)))
        else:
            latent = cls("categorical", int(match.group(3)), int(match.group(4)))
        if latent.size < 1 or (latent.kind == "categorical" and latent.classes < 2):
            raise LatentSpecError(f"latent {text!r} has no randomness to learn: D and L must be >= 1 and K >= 2 "
                                  "(e.g. gaussian:20, bernoulli:200, categorical:20x10)")
        return latent

    @property
    def family(self) -> str:
        return {"gaussian": "normal", "bernoulli": "bernoulli", "categorical": "categorical"}[self.kind]

    @property
    def code_size(self) -> int:
        """Width of z as the decoder sees it."""
        return self.size * self.classes

    @property
    def param_size(self) -> int:
        """Width of the encoder's output."""
        return 2 * self.size if self.kind == "gaussian" else self.code_size

    @property
    def configurations(self) -> float:
        return {"gaussian": math.inf, "bernoulli": 2.0 ** self.size,
                "categorical": float(self.classes) ** self.size}[self.kind]

    def __str__(self) -> str:
        return f"categorical:{self.size}x{self.classes}" if self.kind == "categorical" else f"{self.kind}:{self.size}"

    def posterior(self, params: torch.Tensor, validate_args: bool | None = False) -> D.Distribution:
        """q(z|x) from the encoder's output (..., param_size), one event per data point."""
        if self.kind == "gaussian":
            loc, pre_scale = params.chunk(2, dim=-1)
            return D.Independent(D.Normal(loc, F.softplus(pre_scale) + 1e-4, validate_args=validate_args), 1)
        if self.kind == "bernoulli":
            return D.Independent(D.Bernoulli(logits=params, validate_args=validate_args), 1)
        logits = params.reshape(*params.shape[:-1], self.size, self.classes)
        return D.Independent(_one_hot_categorical(logits, validate_args), 1)

    def prior(self, like: torch.Tensor) -> D.Distribution:
        zeros = torch.zeros((), dtype=like.dtype, device=like.device)
        if self.kind == "gaussian":
            return D.Independent(D.Normal(zeros.expand(self.size), 1.0 + zeros), 1)
        if self.kind == "bernoulli":
            return D.Independent(D.Bernoulli(logits=zeros.expand(self.size)), 1)
        return D.Independent(D.OneHotCategorical(logits=zeros.expand(self.size, self.classes)), 1)

    def kl_to_prior(self, q: D.Distribution) -> torch.Tensor:
        """KL(q(z|x) || p(z)) per data point, in closed form:

            gaussian     sum_d  (mu^2 + sigma^2 - 1) / 2 - log sigma
            bernoulli    sum_d  p log p + (1 - p) log(1 - p) + log 2,  log p = -softplus(-l)
            categorical  sum_l sum_k  p_k (log p_k + log K)

        Equal to torch.distributions.kl_divergence(q, prior) (tests/test_vae.py), written out because the
        library's categorical and Bernoulli versions mask zero probabilities with boolean indexing, which
        measured ~1 ms per training step on CPU: about 7% of a 784-512-256 step, against a 1.1x budget."""
        base = q.base_dist
        if self.kind == "gaussian":
            return (0.5 * (base.loc.square() + base.scale.square() - 1.0) - base.scale.log()).sum(-1)
        if self.kind == "bernoulli":
            logits = base.logits
            p = torch.sigmoid(logits)
            return (-p * F.softplus(-logits) - (1.0 - p) * F.softplus(logits)).sum(-1) + self.size * math.log(2.0)
        log_p = base.logits  # normalised by Categorical: log softmax
        return (log_p.exp() * (log_p + math.log(self.classes))).sum((-1, -2))

    def flatten(self, z: torch.Tensor) -> torch.Tensor:
        return z.reshape(*z.shape[:-2], self.code_size) if self.kind == "categorical" else z

    def harden(self, z: torch.Tensor) -> torch.Tensor:
        """The exact discrete sample a relaxed one rounds to, passed straight through (value: the hard
        point; gradient: that of z, so that an estimator differentiating f, such as MuProp at the mean,
        still can). A categorical point goes to the one-hot of its largest coordinate: argmax of
        softmax((l + g) / tau) is argmax (l + g), the Gumbel-max sample; a Bernoulli one to 1[z > 1/2]:
        sigmoid((l + L) / tau) > 1/2 exactly when l + L > 0. Hard points (0/1) are returned unchanged,
        bit for bit, and a Gaussian z as it is."""
        if self.kind == "gaussian":
            return z
        if self.kind == "bernoulli":
            hard = (z.detach() > 0.5).to(z.dtype)
        else:
            classes = torch.arange(z.shape[-1], device=z.device)  # not F.one_hot: it fails inside vmap
            hard = (z.detach().argmax(-1, keepdim=True) == classes).to(z.dtype)
        return hard + (z - z.detach())


def _one_hot_categorical(logits: torch.Tensor, validate_args: bool | None) -> D.OneHotCategorical:
    """OneHotCategorical(logits) whose inner Categorical gets validate_args too.

    torch's constructor builds the inner Categorical without passing validate_args on (torch 2.13), so
    it checks its logits on every construction and every log_prob even when asked not to: ~0.3 ms of a
    ~17 ms training step on CPU (measured), against the 1.1x budget over a plain PyTorch step. Built
    here the way torch's own OneHotCategorical.expand builds one, with no global state touched."""
    categorical = D.Categorical(logits=logits, validate_args=validate_args)
    dist = D.OneHotCategorical.__new__(D.OneHotCategorical)
    dist._categorical = categorical
    D.Distribution.__init__(dist, categorical.batch_shape, categorical.param_shape[-1:], validate_args=validate_args)
    return dist


def mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:])):
        layers.append(nn.Linear(fan_in, fan_out))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class VAE(nn.Module):
    """Encoder pixels -> hidden... -> latent params; decoder code -> reversed hidden... -> pixel logits."""

    def __init__(self, pixels: int, latent: Latent, hidden: tuple[int, ...] = (512, 256)):
        super().__init__()
        self.latent = latent
        self.encoder = mlp([pixels, *hidden, latent.param_size])
        self.decoder = mlp([latent.code_size, *reversed(hidden), pixels])

    def reconstruction_cost(self, x: torch.Tensor):
        """f(z) = -log p(x|z), summed over pixels, for z of shape (S, B, *event)."""
        def cost(z: torch.Tensor) -> torch.Tensor:
            logits = self.decoder(self.latent.flatten(z))
            return F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)
        return cost

    def objective(self, x: torch.Tensor, estimator, hparams: dict, num_samples: int = 1, kl: str = "analytic",
                  hard: bool = False) -> torch.Tensor:
        """The estimator's surrogate of the -ELBO per data point (B,), averaged over its S samples: its
        forward value is the estimator's estimate of the -ELBO (for Gumbel-Softmax, whose cost is
        evaluated at relaxed samples, the relaxed -ELBO), its gradient the estimator's gradient.

        hard=True evaluates the cost at `Latent.harden` of whatever the estimator passes it: the same
        noise, rounded to the exact discrete sample it stands for. For estimators that evaluate the
        cost at exact samples (REINFORCE, straight-through, REBAR, ...) that changes nothing, bit for bit."""
        q = self.latent.posterior(self.encoder(x))
        reconstruction = self.reconstruction_cost(x)
        if kl == "analytic":
            cost = (lambda z: reconstruction(self.latent.harden(z))) if hard else reconstruction
            surrogate = estimator(cost, q, num_samples=num_samples, **hparams)
            return surrogate.mean(0) + self.latent.kl_to_prior(q)
        prior = self.latent.prior(x).expand(q.batch_shape)

        def cost(z):
            if hard:
                z = self.latent.harden(z)
            if self.latent.kind != "gaussian" and not ((z == 0) | (z == 1)).all():
                raise NotApplicableError("--kl sampled evaluates log q(z) at the estimator's samples, and this "
                                         "estimator passes relaxed ones; use --kl analytic with it")
            return reconstruction(z) + q.log_prob(z) - prior.log_prob(z)
        return estimator(cost, q, num_samples=num_samples, **hparams).mean(0)

    def loss(self, x: torch.Tensor, estimator, hparams: dict, num_samples: int = 1, kl: str = "analytic"):
        """(surrogate loss to minimise, -ELBO estimate per data point as a float): both mean over the batch."""
        loss = self.objective(x, estimator, hparams, num_samples, kl).mean()
        return loss, float(loss.detach())

    @torch.no_grad()
    def negative_elbo(self, x: torch.Tensor, samples: int = 1) -> torch.Tensor:
        """-ELBO per data point with exact (hard) samples from q and the analytic KL."""
        q = self.latent.posterior(self.encoder(x))
        z = q.sample((samples,))
        return self.reconstruction_cost(x)(z).mean(0) + self.latent.kl_to_prior(q)

    @torch.no_grad()
    def pixel_means(self, z: torch.Tensor) -> torch.Tensor:
        """Bernoulli means sigmoid(decoder(z)) of the pixels for latent codes z (..., *event)."""
        return torch.sigmoid(self.decoder(self.latent.flatten(z)))

    @torch.no_grad()
    def importance_weighted_bound(self, x: torch.Tensor, k: int, rows_budget: int = 100_000) -> torch.Tensor:
        """-log (1/k) sum_j p(x, z_j) / q(z_j|x), z_j ~ q (Burda et al. 2016): a tighter bound on -log p(x).

        Computed in blocks of data points and samples holding at most rows_budget decoder rows, so a
        1000-sample bound on a 10,000-image test set needs ~0.3 GB, not tens of GB."""
        samples_per_chunk = max(1, min(k, rows_budget // max(1, len(x))))
        points_per_block = max(1, rows_budget // samples_per_chunk)
        bounds = []
        for first in range(0, len(x), points_per_block):
            block = x[first:first + points_per_block]
            q = self.latent.posterior(self.encoder(block))
            prior = self.latent.prior(block).expand(q.batch_shape)
            cost = self.reconstruction_cost(block)
            log_w = torch.cat([
                -cost(z) + prior.log_prob(z) - q.log_prob(z)
                for z in (q.sample((min(samples_per_chunk, k - start),)) for start in range(0, k, samples_per_chunk))
            ])
            bounds.append(-(torch.logsumexp(log_w, 0) - math.log(k)))
        return torch.cat(bounds)
