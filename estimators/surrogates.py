"""Building blocks for surrogates: tensors whose value is a cost and whose gradient is an estimate."""
from __future__ import annotations

import torch


def magic_box_delta(log_prob: torch.Tensor) -> torch.Tensor:
    """`log_prob - log_prob.detach()`: zero in the forward pass, gradient of log_prob backward.

    Multiplying a detached weight by it adds `weight * grad log p` to the gradient without changing
    the forward value (the DiCE construction of Foerster et al. 2018, in its additive form).
    """
    return log_prob - log_prob.detach()


def straight_through(forward: torch.Tensor, backward: torch.Tensor) -> torch.Tensor:
    """A tensor equal to `forward` whose gradient flows through `backward` (`v + d - d.detach()`)."""
    return forward.detach() + (backward - backward.detach())


def score_function_surrogate(cost: torch.Tensor, log_prob: torch.Tensor, baseline) -> torch.Tensor:
    """cost + (cost - b) * (log p - stop(log p)): value = cost; gradient = grad cost + (cost - b) grad log p.

    The cost keeps its own graph, so parameters of f itself (a decoder) get their pathwise gradient.
    """
    weight = cost.detach() - baseline
    return cost + weight * magic_box_delta(log_prob)
