"""Minimal hand-written PyTorch versions of the built-in estimators, without the registry, the
surrogate helpers or torch.distributions: the yardstick for the registry's overhead.

Each returns the scalar loss whose gradient with respect to the parameters is the sum over the n
rows of their estimates, as `surrogate.mean(0).sum()` does for the registry's estimators.
"""
import torch
import torch.nn.functional as F


def bernoulli_sample(logits, s):
    z = (torch.rand(s, *logits.shape, dtype=logits.dtype) < torch.sigmoid(logits)).to(logits.dtype)
    return z, (z * logits - F.softplus(logits)).sum(-1)  # log p(z) = z l - log(1 + e^l)


def categorical_sample(logits, s):
    probs = torch.softmax(logits, -1)
    index = torch.multinomial(probs.reshape(-1, probs.shape[-1]), s, replacement=True).T.reshape(s, *probs.shape[:-1])
    log_probs = torch.log_softmax(logits, -1)
    return F.one_hot(index, logits.shape[-1]).to(logits.dtype), log_probs.expand(s, *log_probs.shape).gather(
        -1, index.unsqueeze(-1)).squeeze(-1)


def normal_sample(mu, sigma, s):
    x = (mu + sigma * torch.randn(s, *mu.shape)).detach()
    return x, -0.5 * ((x - mu) / sigma) ** 2 - sigma.log()


def score_loss(cost, logp, baseline):
    return ((cost - baseline) * logp).mean(0).sum()


def reinforce(f, params, family, s, baseline=None, **_):
    z, logp = SAMPLERS[family](params, s)
    cost = f(z)
    b = baseline(cost) if baseline else 0.0
    return score_loss(cost, logp, b)


def leave_one_out(cost):
    return (cost.sum(0, keepdim=True) - cost) / (cost.shape[0] - 1)


def group_mean(cost):
    return cost.mean(0, keepdim=True)


def grpo(f, params, family, s, eps=1e-4, **_):
    z, logp = SAMPLERS[family](params, s)
    cost = f(z).detach()
    advantage = (cost - cost.mean(0, keepdim=True)) / (cost.std(0, keepdim=True) + eps)
    return (advantage * logp).mean(0).sum()


class MovingAverage:
    def __init__(self, decay=0.9):
        self.decay, self.value = decay, None

    def __call__(self, cost):
        b = 0.0 if self.value is None else self.value
        mean = cost.mean()
        self.value = mean if self.value is None else self.decay * self.value + (1 - self.decay) * mean
        return b


def concrete(params, family, s, tau):
    logits = params["logits"]
    u = torch.rand(s, *logits.shape, dtype=logits.dtype)
    if family == "bernoulli":
        return torch.sigmoid((logits + u.log() - torch.log1p(-u)) / tau)
    return torch.softmax((logits - (-u.log()).log()) / tau, -1)


def gumbel_softmax(f, params, family, s, tau=1.0, **_):
    return f(concrete(params, family, s, tau)).mean(0).sum()


def st_gumbel_softmax(f, params, family, s, tau=1.0, **_):
    y = concrete(params, family, s, tau)
    if family == "bernoulli":
        hard = (y > 0.5).to(y.dtype)
    else:
        hard = F.one_hot(y.argmax(-1), y.shape[-1]).to(y.dtype)
    return f(hard + y - y.detach()).mean(0).sum()


def straight_through(f, params, family, s, **_):
    logits = params["logits"]
    probs = torch.sigmoid(logits) if family == "bernoulli" else torch.softmax(logits, -1)
    z, _ = SAMPLERS[family](params, s)
    return f(z + probs - probs.detach()).mean(0).sum()


def pathwise(f, params, family, s, **_):
    return f(params["mu"] + params["sigma"] * torch.randn(s, *params["mu"].shape)).mean(0).sum()


SAMPLERS = {
    "bernoulli": lambda p, s: bernoulli_sample(p["logits"], s),
    "categorical": lambda p, s: categorical_sample(p["logits"], s),
    "normal": lambda p, s: normal_sample(p["mu"], p["sigma"], s),
}

HANDWRITTEN = {
    "reinforce": lambda: reinforce,
    "reinforce_loo": lambda: lambda *a, **k: reinforce(*a, baseline=leave_one_out, **k),
    "reinforce_drgrpo": lambda: lambda *a, **k: reinforce(*a, baseline=group_mean, **k),
    "reinforce_grpo": lambda: grpo,
    "reinforce_ema": lambda: (lambda ema: lambda *a, decay=0.9, **k: reinforce(*a, baseline=ema, **k))(MovingAverage()),
    "gumbel_softmax": lambda: gumbel_softmax,
    "st_gumbel_softmax": lambda: st_gumbel_softmax,
    "straight_through": lambda: straight_through,
    "pathwise": lambda: pathwise,
}
