"""Control variates for the score function, as wrappers around `reinforce`'s surrogate.

MuProp (Gu et al. 2016): the first-order Taylor expansion of f around the mean mu = E[z] is a
control variate whose expectation is known,

    grad = E[(f(z) - f(mu) - f'(mu)^T (z - mu)) grad log p(z)] + f'(mu)^T grad mu.

It needs f differentiable at the mean (a relaxed input), and one more f-evaluation (with its
gradient) per call. Unbiased for any f.

NVIL-style learned baseline (Mnih & Gregor 2014): b_psi(context), a small network of the
distribution's (detached) parameters, trained by SGD on (f(z) - b_psi)^2, so that the baseline
follows the input as the VAE's encoder output varies. The baseline is computed before the samples
are used to train it, so it is independent of them and the estimator stays unbiased. NVIL's
variance normalisation (dividing by a running standard deviation) rescales the gradient and is
left out here, to keep the estimator unbiased.

References:
    Gu, S., Levine, S., Sutskever, I., Mnih, A. (2016). MuProp: Unbiased backpropagation for
    stochastic neural networks. ICLR.
    Mnih, A., Gregor, K. (2014). Neural variational inference and learning in belief networks. ICML.
"""
from __future__ import annotations

import math

import torch

from estimators import sampling
from estimators.families import base_distribution
from estimators.hparams import HParam, greater_than
from estimators.reinforce import SCORE_NEEDS
from estimators.registry import register
from estimators.surrogates import magic_box_delta


def _event_sum(x, dist):
    dims = tuple(range(-len(dist.event_shape), 0))
    return x.sum(dims) if dims else x


@register("muprop", families=("bernoulli", "categorical", "normal"), unbiased=True, f_evals=1, f_evals_per_call=1,
          summary="MuProp: score function with a first-order Taylor control variate at the mean",
          reference="Gu et al. 2016, ICLR")
def muprop(f, dist, num_samples: int = 1) -> torch.Tensor:
    """surrogate = f(z) + stop(f(z) - f(mu) - f'(mu)(z - mu)) delta log p(z) + stop(f'(mu)) . (mu - stop(mu))."""
    mean = dist.mean
    at_mean = mean.detach().requires_grad_()
    with torch.enable_grad():
        cost_at_mean = f(at_mean.unsqueeze(0)).squeeze(0)
        slope, = torch.autograd.grad(cost_at_mean.sum(), at_mean)
    z = sampling.sample(dist, num_samples)
    cost = f(z)
    taylor = cost_at_mean.detach() + _event_sum(slope * (z - at_mean.detach()), dist)
    analytic = _event_sum(slope * (mean - mean.detach()), dist)
    return cost + (cost.detach() - taylor) * magic_box_delta(sampling.log_prob(dist, z)) + analytic


@register("reinforce_nvil", needs=SCORE_NEEDS, unbiased=True,
          hparams={"lr": HParam(0.03, greater_than(0.0), "Adam's learning rate for the baseline network")}, warmup_calls=100, warmup_rows=100,
          summary="score function with an NVIL-style learned baseline b(context), trained on (f - b)^2",
          reference="Mnih & Gregor 2014, ICML (NVIL), without variance normalisation")
class ReinforceNVIL:
    """REINFORCE with b = MLP(detached distribution parameters); `reset()` re-initialises the MLP.

    Built with its learning rate; the network is created on the first call, when the size of the
    context is known. `state_dict()` / `load_state_dict()` save and restore the network and its
    optimizer as tensors and numbers (loadable with `torch.load(weights_only=True)`)."""

    hidden = 16

    def __init__(self, *, lr: float = 0.03):
        self.lr = lr
        self.reset()

    def _build(self, features: int, like: torch.Tensor) -> None:
        self.network = torch.nn.Sequential(torch.nn.Linear(features, self.hidden), torch.nn.Tanh(),
                                           torch.nn.Linear(self.hidden, 1)).to(like)
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=self.lr)

    def state_dict(self) -> dict:
        if self.network is None:
            return {}
        return {"features": self.network[0].in_features, "network": self.network.state_dict(),
                "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.reset()
        if state:
            self._build(int(state["features"]), state["network"]["0.weight"])
            self.network.load_state_dict(state["network"])
            self.optimizer.load_state_dict(state["optimizer"])
            for group in self.optimizer.param_groups:  # the lr it was built with, not the saved one
                group["lr"] = self.lr

    def reset(self) -> None:
        self.network: torch.nn.Module | None = None
        self.optimizer: torch.optim.Optimizer | None = None

    def _context(self, dist) -> torch.Tensor:
        base = base_distribution(dist)
        params = [getattr(base, name) for name in ("logits", "loc", "scale", "concentration", "rate",
                                                   "concentration1", "concentration0") if hasattr(base, name)]
        if hasattr(base, "logits"):
            # A masked class (logit -inf) would make the network's pre-activations inf - inf = nan and its
            # weights nan after one step, for good. Clamped at +-log(1 / eps) (+-16 in float32, +-36 in float64),
            # where a probability is within rounding of 0 or 1: a clamp at the smallest normal float's log (-87)
            # saturated every tanh unit of the baseline, which could then no longer follow the context.
            limit = -math.log(torch.finfo(base.logits.dtype).eps)
            params[0] = params[0].clamp(-limit, limit)
        batch = dist.batch_shape
        return torch.cat([p.detach().expand(*batch, *p.shape[len(batch):]).reshape(*batch, -1) for p in params], -1)

    def __call__(self, f, dist, num_samples: int = 1) -> torch.Tensor:
        context = self._context(dist)
        if self.network is None:
            self._build(context.shape[-1], context)
        with torch.enable_grad():
            baseline = self.network(context).squeeze(-1)              # (*batch), before seeing the costs
        z = sampling.sample(dist, num_samples)
        cost = f(z)
        surrogate = cost + (cost.detach() - baseline.detach()) * magic_box_delta(sampling.log_prob(dist, z))
        with torch.enable_grad():  # train the baseline on this call's costs, for the next call
            self.optimizer.zero_grad()
            (cost.detach() - baseline).square().mean().backward(inputs=list(self.network.parameters()))
            self.optimizer.step()
        return surrogate
