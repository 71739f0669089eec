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

import torch

from estimators import sampling
from estimators.errors import check_num_samples
from estimators.families import base_distribution
from estimators.reinforce import SCORE_FAMILIES
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
    check_num_samples(num_samples, 1, "muprop")
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


@register("reinforce_nvil", families=SCORE_FAMILIES, unbiased=True, hparams={"lr": 0.03}, warmup_calls=100, warmup_rows=100,
          summary="score function with an NVIL-style learned baseline b(context), trained on (f - b)^2",
          reference="Mnih & Gregor 2014, ICML (NVIL), without variance normalisation")
class ReinforceNVIL:
    """REINFORCE with b = MLP(detached distribution parameters); `reset()` re-initialises the MLP."""

    hidden = 16

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.network: torch.nn.Module | None = None
        self.optimizer: torch.optim.Optimizer | None = None

    def _context(self, dist) -> torch.Tensor:
        base = base_distribution(dist)
        params = [getattr(base, name) for name in ("logits", "loc", "scale", "concentration", "rate",
                                                   "concentration1", "concentration0") if hasattr(base, name)]
        batch = dist.batch_shape
        return torch.cat([p.detach().expand(*batch, *p.shape[len(batch):]).reshape(*batch, -1) for p in params], -1)

    def __call__(self, f, dist, num_samples: int = 1, *, lr: float = 0.03) -> torch.Tensor:
        check_num_samples(num_samples, 1, "reinforce_nvil")
        context = self._context(dist)
        if self.network is None:
            self.network = torch.nn.Sequential(torch.nn.Linear(context.shape[-1], self.hidden), torch.nn.Tanh(),
                                               torch.nn.Linear(self.hidden, 1)).to(context)
            self.optimizer = torch.optim.Adam(self.network.parameters(), lr=lr)
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
