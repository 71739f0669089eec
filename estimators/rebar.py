"""REBAR and RELAX: score function with a control variate built on the Concrete relaxation,
evaluated at the conditional noise z~ ~ p(z | b) so that its expectation is known.

With z = logits + noise (logistic for a Bernoulli, Gumbel for a categorical), b = H(z) the exact
discrete sample, z~ the conditional noise given b (estimators.conditional) and c(z) = f(sigma_tau(z))
(or a learned c for RELAX):

    g = [f(b) - eta c(z~)] grad log p(b) + eta grad c(z) - eta grad c(z~)

unbiased for any eta and tau, since E[grad c(z)] = E[grad c(z~)] + E[c(z~) grad log p(b)].
Three f-evaluations per sample: f(b), c(z), c(z~).

RELAX replaces eta f(sigma_tau(z)) by eta f(sigma_tau(z)) + r_psi(sigma_tau(z)), r_psi a small
network, and trains psi, eta and log tau to minimise the estimate's variance with the single-sample
gradient of E||g||^2 (the mean of g does not depend on them), g taken in the logits as passed (for a
categorical, not in torch's normalised copy of them, whose extra all-ones component never reaches
them). That gradient needs g as a function of psi, so each call differentiates its own surrogate once
more (create_graph); the update is applied at the start of the next call, so that the surrogate
handed back is not invalidated.

References:
    Tucker, G., Mnih, A., Maddison, C. J., Lawson, D., Sohl-Dickstein, J. (2017). REBAR: low-variance,
    unbiased gradient estimates for discrete latent variable models. NeurIPS.
    Grathwohl, W., Choi, D., Wu, Y., Roeder, G., Duvenaud, D. (2018). Backpropagation through the
    void: optimizing control variates for black-box gradient estimation. ICLR.
"""
from __future__ import annotations

import math

import torch

from estimators import sampling
from estimators.conditional import conditional_gumbel, conditional_logistic, tied_gumbel, tied_logistic
from estimators.families import base_distribution, family_of
from estimators.hparams import HParam, REAL, greater_than, one_of
from estimators.registry import register
from estimators.relaxed import gumbel_noise, logistic_noise, softmax_last
from estimators.surrogates import magic_box_delta


def relaxation_pair(dist, num_samples: int, coupling: str = "independent"):
    """(b, z, z~, relax): hard sample, its noise, the conditional noise, and z -> sigma_tau(z).

    coupling "tied": z~ is tied to z (equal in value, the conditional gradient; Tucker et al.'s code);
    "independent": z~ from fresh uniforms v."""
    logits = base_distribution(dist).logits
    if family_of(dist) == "bernoulli":
        z = logits + logistic_noise(num_samples, logits)
        b = (z.detach() > 0).to(logits.dtype)
        z_tilde = tied_logistic(logits, z, b) if coupling == "tied" else conditional_logistic(logits, b)
        return b, z, z_tilde, lambda x, tau: torch.sigmoid(x / tau)
    z = logits + gumbel_noise(num_samples, logits)
    classes = torch.arange(logits.shape[-1], device=logits.device)
    b = (z.detach().argmax(-1, keepdim=True) == classes).to(logits.dtype)
    z_tilde = tied_gumbel(logits, z, b) if coupling == "tied" else conditional_gumbel(logits, b)
    masked = torch.isneginf(logits.detach())

    def relax(x, tau):
        if torch.is_tensor(tau) and tau.requires_grad:
            # RELAX's learned temperature: a masked class (logit -inf) has x = -inf, whose x / tau has the
            # derivative inf in tau, and 0 * inf = nan. Dividing a finite stand-in keeps that derivative 0.
            return softmax_last((x.masked_fill(masked, 0.0) / tau).masked_fill(masked, -math.inf))
        return softmax_last(x / tau)
    return b, z, z_tilde, relax


def control_variate_surrogate(f, dist, b, control, control_tilde, eta, keep_weight_graph=False):
    """f(b) + stop(f(b) - eta c~) delta log p(b) + eta (c - c~) - stop(eta (c - c~)): value f(b)."""
    cost = f(b)
    correction = eta * (control - control_tilde)
    weight_tilde = control_tilde if keep_weight_graph else control_tilde.detach()
    return (cost + (cost.detach() - eta * weight_tilde) * magic_box_delta(sampling.log_prob(dist, b))
            + correction - correction.detach())


TEMPERATURE = HParam(0.5, greater_than(0.0), "the temperature of the relaxation in the control variate")


@register("rebar", needs=("relaxable",), unbiased=True, f_evals=3,
          hparams={"tau": TEMPERATURE, "eta": HParam(1.0, REAL, "the control variate's scale"),
                   "coupling": HParam("tied", one_of("tied", "independent"),
                                      "tied: z~ from the u behind b, as in Tucker et al.'s code; independent: fresh v")},
          summary="REBAR: score function with the Concrete relaxation at conditional noise (tied to b's) as control variate",
          reference="Tucker et al. 2017, NeurIPS")
def rebar(f, dist, num_samples: int = 1, *, tau: float = 0.5, eta: float = 1.0, coupling: str = "tied") -> torch.Tensor:
    """surrogate = f(b) + stop(f(b) - eta c(z~)) delta log p(b) + eta (c(z) - c(z~)) - stop(...).

    coupling "tied" (the default, as in the authors' code) ties z~ to the z behind b; "independent"
    draws z~'s uniforms afresh. Both unbiased; their variances differ."""
    b, z, z_tilde, relax = relaxation_pair(dist, num_samples, coupling)
    return control_variate_surrogate(f, dist, b, f(relax(z, tau)), f(relax(z_tilde, tau)), eta)


@register("relax", needs=("relaxable",), unbiased=True, f_evals=3,
          hparams={"tau": HParam(0.5, greater_than(0.0), "the starting temperature; RELAX learns log tau"),
                   "lr": HParam(0.01, greater_than(0.0), "Adam's learning rate for psi, eta and log tau")},
          learns=("tau",), warmup_calls=100, warmup_rows=100,
          summary="RELAX: REBAR's control variate plus a learned network, trained to minimise variance",
          reference="Grathwohl et al. 2018, ICLR")
class Relax:
    """RELAX with c(z) = eta f(sigma_tau(z)) + r_psi(sigma_tau(z)); `reset()` forgets what was learned.

    Built with the starting temperature and the learning rate. The temperature is then learned (the
    paper's log tau), so a schedule does not apply to it: `tau` reads the one the last call used. The
    network, eta, log tau, the optimizer and the update pending for the next call are saved and
    restored by `state_dict()` / `load_state_dict()` as tensors and numbers."""

    hidden = 16

    def __init__(self, *, tau: float = 0.5, lr: float = 0.01):
        self.initial_tau, self.lr = tau, lr
        self.reset()

    @property
    def tau(self) -> float:
        """The temperature of the last call (the starting value before any call). A call first applies
        the update its predecessor computed, so the next call's temperature is known only once it runs."""
        return self.initial_tau if self.network is None else float(self.log_tau.detach().exp())

    def state_dict(self) -> dict:
        if self.network is None:
            return {}
        return {"features": self.network[0].in_features, "network": self.network.state_dict(),
                "eta": self.eta.detach().clone(), "log_tau": self.log_tau.detach().clone(),
                "optimizer": self.optimizer.state_dict(), "pending": self.pending}

    def load_state_dict(self, state: dict) -> None:
        self.reset()
        if state:
            self._setup(int(state["features"]), state["eta"])
            self.network.load_state_dict(state["network"])
            with torch.no_grad():
                self.eta.copy_(state["eta"])
                self.log_tau.copy_(state["log_tau"])
            self.optimizer.load_state_dict(state["optimizer"])
            for group in self.optimizer.param_groups:  # the lr it was built with, not the saved one
                group["lr"] = self.lr
            self.pending = None if state["pending"] is None else [g.clone() for g in state["pending"]]

    def reset(self) -> None:
        self.network: torch.nn.Module | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.pending: list[torch.Tensor] | None = None

    def _setup(self, features: int, like: torch.Tensor) -> None:
        self.network = torch.nn.Sequential(torch.nn.Linear(features, self.hidden), torch.nn.Tanh(),
                                           torch.nn.Linear(self.hidden, 1)).to(like)
        # start as REBAR with eta = 1 (and independent conditional noise, as the RELAX authors' autograd code)
        torch.nn.init.zeros_(self.network[2].weight)
        torch.nn.init.zeros_(self.network[2].bias)
        self.eta = torch.ones((), dtype=like.dtype, device=like.device, requires_grad=True)
        self.log_tau = torch.full((), math.log(self.initial_tau), dtype=like.dtype, device=like.device,
                                  requires_grad=True)
        self.parameters = [*self.network.parameters(), self.eta, self.log_tau]
        self.optimizer = torch.optim.Adam(self.parameters, lr=self.lr)

    def _apply_pending_update(self) -> None:
        if self.pending is not None:
            self.optimizer.zero_grad()
            for parameter, grad in zip(self.parameters, self.pending):
                parameter.grad = grad
            self.optimizer.step()
            self.pending = None

    def __call__(self, f, dist, num_samples: int = 1) -> torch.Tensor:
        b, z, z_tilde, relax = relaxation_pair(dist, num_samples)
        event_ndim = len(dist.event_shape)
        features = math.prod(dist.event_shape) if event_ndim else 1
        if self.network is None:
            self._setup(features, z)
        self._apply_pending_update()
        temperature = self.log_tau.exp()

        def control(noise):
            relaxed = relax(noise, temperature)
            flat = relaxed.reshape(*relaxed.shape[:relaxed.dim() - event_ndim], features)
            return self.eta * f(relaxed) + self.network(flat).squeeze(-1)

        surrogate = control_variate_surrogate(f, dist, b, control(z), control(z_tilde), 1.0, keep_weight_graph=True)
        logits = base_distribution(dist).logits
        if logits.requires_grad and torch.is_grad_enabled():
            # Single-sample gradient of E||g||^2 in (psi, eta, log tau), applied at the next call.
            estimate, = torch.autograd.grad(surrogate.mean(0).sum(), logits, create_graph=True, retain_graph=True)
            if family_of(dist) == "categorical":
                # torch keeps a categorical's logits normalised (l - logsumexp l); the variance to minimise is
                # that of the gradient in the logits the user passed (Grathwohl et al.'s theta), which drops
                # the component along the all-ones direction: g_raw = g - softmax(l) sum(g).
                estimate = estimate - logits.detach().exp() * estimate.sum(-1, keepdim=True)
            grads = torch.autograd.grad(estimate.square().sum(), self.parameters, retain_graph=True, allow_unused=True)
            self.pending = [g.detach() if g is not None else torch.zeros_like(p) for g, p in zip(grads, self.parameters)]
        return surrogate
