"""Group baselines of RL fine-tuning: REINFORCE whose S samples (one prompt's group) share one baseline.

For S samples z_1..z_S of one distribution with costs f_i = f(z_i), each estimator is

    g = (1/S) sum_i A_i grad log p(z_i)          (surrogate_i = f_i + stop(A_i) (log p(z_i) - stop(log p(z_i))))

with an advantage A_i built from the group's costs (a cost is a negated reward; the advantages negate
with it, so the descent direction on the cost is the ascent direction on the reward):

    RLOO       A_i = f_i - (1/(S-1)) sum_(j != i) f_j          unbiased: b_i does not depend on z_i
               (registered as reinforce_loo; Kool et al. 2019, Ahmadian et al. 2024)
    Dr. GRPO   A_i = f_i - (1/S) sum_j f_j                      = ((S-1)/S) (f_i - b_i^LOO)
    GRPO       A_i = (f_i - mean_j f_j) / (std_j f_j + eps)     std with Bessel's correction, as TRL's

Dr. GRPO's advantage is exactly (S-1)/S times RLOO's, sample by sample, so E[g_DrGRPO] = ((S-1)/S)
grad E[f]: biased towards 0 by the factor 1/S, in closed form (the mean includes f_i itself, and
E[f_i grad log p(z_i)] = grad E f does not vanish as E[b grad log p(z_i)] does for a b free of z_i).

GRPO divides by the group's standard deviation, which depends on every z_i, so E[A_i grad log p(z_i)]
is no longer a multiple of the gradient: groups are reweighted by 1 / (std + eps), and the gradient of
E[f] is replaced by that of a different, group-dependent objective. Its bias has no general closed form.
One case has one: S = 2 and a cost taking two values (a binary reward). Then std = |f_1 - f_2| / sqrt(2)
is constant on every group whose costs differ (groups with equal costs contribute 0 either way), so GRPO
is Dr. GRPO divided by (c / sqrt(2) + eps), c = |f_1 - f_2| the gap between the two values, and

    E[g_GRPO] = (1/2) grad E[f] / (c / sqrt(2) + eps) = grad E[f] / (sqrt(2) c + 2 eps)     (S = 2).

With a binary reward (c = 1) that is grad E[f] / (sqrt(2) + 2 eps), 29% short of it; on Tucker's toy
(c = 0.1) about 7 times too long.

A binary reward r in {0, 1} with P(r = 1) = p gives a closed form at every S. Then grad E[f] = -grad p,
and given K = k successes among the S samples a success contributes E[grad log p(z) | r = 1] = grad p / p
and a failure -grad p / (1 - p), so the group's sum_i (r_i - k/S) grad log p(z_i) has conditional mean
k (S - k) grad p / (S p (1 - p)). GRPO weights the group by w(k) = 1 / (s_k + eps), s_k = sqrt(k (S - k) /
(S (S - 1))) the Bessel std of k ones and S - k zeros, so

    E[g_GRPO] = c_S(p) grad E[f],   c_S(p) = sum_k Binomial(k; S, p) w(k) k (S - k) / (S^2 p (1 - p))

(`binary_reward_scale`): the right direction with the wrong length, which changes with p as the policy
learns. With w = 1 (Dr. GRPO) the sum is E[K (S - K)] / (S^2 p (1 - p)) = (S - 1) / S, as above. For
p = 0.04 (a sparse reward), c_2 = 0.71, c_4 = 1.48 and c_8 = 2.34; as S grows it tends to 1 / sqrt(p (1 - p)).
A group whose costs are all equal has std 0; its advantages are 0 / eps = 0, and with eps = 0 they are
defined as 0 (the numerator is exactly 0).

References:
    Shao, Z. et al. (2024). DeepSeekMath: pushing the limits of mathematical reasoning in open language
    models. arXiv:2402.03300 (GRPO, section 4.1).
    Liu, Z. et al. (2025). Understanding R1-Zero-like training: a critical perspective. arXiv:2503.20783
    (Dr. GRPO: the std and length normalisations removed, and the bias they add).
    Ahmadian, A. et al. (2024). Back to basics: revisiting REINFORCE-style optimization for learning from
    human feedback in LLMs. ACL (RLOO).
    Kool, W., van Hoof, H., Welling, M. (2019). Buy 4 REINFORCE samples, get a baseline for free! ICLR
    workshop.
    von Werra, L. et al. TRL: GRPOTrainer (advantages / (std + 1e-4), torch's Bessel-corrected std).
"""
from __future__ import annotations

import torch

from estimators import sampling
from estimators.hparams import HParam, at_least
from estimators.registry import register
from estimators.reinforce import SCORE_NEEDS, reinforce
from estimators.surrogates import magic_box_delta

GROUP_NEEDS_TWO = "a group baseline compares each sample with the others of its group"


def binary_reward_scale(num_samples: int, p: float, eps: float = 1e-4, normalised: bool = True) -> float:
    """c_S(p) with E[g] = c_S(p) grad E[f] for GRPO (normalised) or Dr. GRPO on a cost taking the values
    -1 (probability p) and 0: the module docstring's closed form."""
    from math import exp, lgamma, log, sqrt

    s, total = num_samples, 0.0
    for k in range(1, s):
        weight = 1.0 / (sqrt(k * (s - k) / (s * (s - 1))) + eps) if normalised else 1.0
        log_binomial = lgamma(s + 1) - lgamma(k + 1) - lgamma(s - k + 1) + k * log(p) + (s - k) * log(1 - p)
        total += exp(log_binomial) * weight * k * (s - k)
    return total / (s ** 2 * p * (1 - p))


def group_mean(cost: torch.Tensor) -> torch.Tensor:
    """b_i = (1/S) sum_j f_j, the sample itself included (Dr. GRPO)."""
    return cost.mean(0, keepdim=True)


def group_normalised_advantage(cost: torch.Tensor, eps: float) -> torch.Tensor:
    """A_i = (f_i - mean_j f_j) / (std_j f_j + eps), over the samples' axis 0; 0 where the group's costs
    are all equal and eps = 0."""
    centred = cost - cost.mean(0, keepdim=True)
    scale = cost.std(0, keepdim=True) + eps                    # Bessel-corrected, as torch's and TRL's
    return torch.where(scale > 0, centred / torch.where(scale > 0, scale, 1.0), torch.zeros_like(centred))


@register(
    "reinforce_drgrpo",
    needs=SCORE_NEEDS,
    unbiased=False,
    min_samples=2,
    min_samples_why=GROUP_NEEDS_TWO,
    summary="score function, group-mean baseline (sample included): (S-1)/S times RLOO (Dr. GRPO)",
    reference="Liu et al. 2025, arXiv:2503.20783 (Dr. GRPO)",
)
def reinforce_drgrpo(f, dist, num_samples: int = 2) -> torch.Tensor:
    """surrogate_i = f_i + (f_i - mean_j f_j) delta log p(z_i): E[grad] = ((S-1)/S) grad E[f] (module docstring)."""
    return reinforce(f, dist, num_samples, baseline=lambda cost: group_mean(cost.detach()))


@register(
    "reinforce_grpo",
    needs=SCORE_NEEDS,
    unbiased=False,
    min_samples=2,
    min_samples_why=GROUP_NEEDS_TWO,
    hparams={"eps": HParam(1e-4, at_least(0.0), "added to the group's standard deviation (TRL's default)")},
    summary="score function, group-normalised advantages (f - mean) / (std + eps) (GRPO)",
    reference="Shao et al. 2024, arXiv:2402.03300 (DeepSeekMath, GRPO)",
)
def reinforce_grpo(f, dist, num_samples: int = 2, *, eps: float = 1e-4) -> torch.Tensor:
    """surrogate_i = f_i + A_i delta log p(z_i), A_i = (f_i - mean) / (std + eps): biased, as the std depends
    on z_i (module docstring; at S = 2 with a binary reward E[grad] = grad E[f] / (sqrt(2) + 2 eps))."""
    z = sampling.sample(dist, num_samples)
    cost = f(z)
    advantage = group_normalised_advantage(cost.detach(), eps)
    return cost + advantage * magic_box_delta(sampling.log_prob(dist, z))
