"""Sequence problems: an autoregressive policy's expected reward, with the exact gradient by enumeration.

The policy is benchmarks.tasks.autoregressive's GRU (width 16) over V tokens and L steps; its weights are
the parameters measured. The cost is a negated reward, so E[f] is minimised as RL fine-tuning maximises
E[r]:

    seq-sparse   f(z) = -1[z = target]                 sparse; target: the initial policy's greedy sequence
    seq-count    f(z) = -#{t : z_t = 0}                 dense and additive
    seq-modsum   f(z) = -1[sum_t z_t = 0 mod V]         non-additive: no token is good on its own
    seq-kl       f(z) = -1[z = target] + beta (log p_theta0(z) - log p_ref(z)),  beta = 0.2

seq-kl is RL fine-tuning's objective E[r] - beta KL(p_theta || p_ref) with the reference policy p_ref the
initial one. As in RLOO and PPO implementations, the log-ratio is a per-sample term of the cost with
theta0 = the evaluation point held fixed: since E[grad log p] = 0, grad_theta E_theta[f_theta0] at
theta = theta0 is exactly grad (-E r + beta KL) there (tests/test_sequences.py checks it), and f is a
plain function of z that every estimator can evaluate (relaxed tokens included).

Rewards accept relaxed tokens (points of the simplex) through their multilinear extensions, exact on
one-hot tokens: the sparse reward is prod_t y_t[target_t], the count sum_t y_t[0], and the divisibility
the probability that independent tokens drawn from the y_t sum to 0 mod V (a circular convolution).

Evaluation points: `steps` = how many Adam steps (lr 0.003) of the exact gradient lead from the seeded
initial weights (steps = 0) to the point; steps = 10 is part-way to the optimum on every problem (the
sparse reward's success probability goes from 0.04 to 0.55). Other vocabularies and lengths are built
from the id (`seq-sparse@length=3`, `seq-count@vocab=3,length=5,steps=10`, `seq-sparse@target=[0,1,2]`).
The reference is exact by enumerating the V^L sequences (prefix tree, at most 2^14 of them); a longer
sequence gets the mean of many estimates of an unbiased estimator with its standard error (as the VAE),
and its reference method says that the limit was passed (its point must then be steps = 0: the path to
a part-way point needs exact gradients).

The problems are outside the default sweep: `--objectives 'seq-*'`.
"""
from __future__ import annotations

import dataclasses
import functools
import math

import torch

from benchmarks.tasks.autoregressive import (AutoregressiveSequence, all_sequences, check_positive_integer,
                                             enumerate_log_probs, greedy_sequence, policy_weights)
from benchmarks.metrics import one_thread
from benchmarks.tasks.protocol import GradientProblem, InvalidPointError, Reference
from benchmarks.tasks.registry import ProblemFamily, add_family, format_point, format_value
from estimators.exact import MAX_CONFIGURATIONS

ENUMERATION_LIMIT = MAX_CONFIGURATIONS  # 2^14 sequences
HIDDEN = 16
SEED = 0
LOGIT_SCALE = 4.0     # a peaked, 'pretrained-like' initial policy: 0.97 nats a token at V = 4
LEARNING_RATE = 0.003
KL_WEIGHT = 0.2
COUNTED_TOKEN = 0
DEFAULTS = {"vocab": 4, "length": 7}
REFERENCE_ESTIMATES, REFERENCE_SAMPLES = 10_000, 10
REWARDS = ("sparse", "count", "modsum", "kl")
KEYS = {"sparse": ("vocab", "length", "target", "steps"), "count": ("vocab", "length", "steps"),
        "modsum": ("vocab", "length", "steps"), "kl": ("vocab", "length", "target", "steps")}


# --- rewards, on one-hot tokens or points of the simplex (..., L, V) -> (...) -----------------------------

def sparse_reward(tokens: torch.Tensor, target: tuple[int, ...]) -> torch.Tensor:
    """1[z = target]; on the simplex prod_t y_t[target_t]."""
    index = torch.tensor(target, device=tokens.device).expand(*tokens.shape[:-1]).unsqueeze(-1)
    return tokens.gather(-1, index).squeeze(-1).prod(-1)


def count_reward(tokens: torch.Tensor, token: int = COUNTED_TOKEN) -> torch.Tensor:
    """#{t : z_t = token}; on the simplex sum_t y_t[token]."""
    return tokens[..., token].sum(-1)


def modsum_reward(tokens: torch.Tensor) -> torch.Tensor:
    """1[sum_t z_t = 0 mod V]; on the simplex P(sum_t k_t = 0 mod V) for independent k_t ~ y_t."""
    vocab = tokens.shape[-1]
    residue = tokens[..., 0, :]                                       # distribution of the partial sum mod V
    for t in range(1, tokens.shape[-2]):
        step = tokens[..., t, :]
        residue = sum(step[..., v:v + 1] * residue.roll(v, -1) for v in range(vocab))
    return residue[..., 0]


@functools.lru_cache(maxsize=16)
def _initial_weights(vocab: int) -> dict[str, torch.Tensor]:
    # shared, read only: every use clones or converts them
    return policy_weights(vocab, HIDDEN, SEED, LOGIT_SCALE)


# --- the problem ----------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class SequenceSetting:
    """What defines a sequence problem, apart from its evaluation point."""
    reward: str
    vocab: int
    length: int
    target: tuple[int, ...] | None   # sparse and kl only

    @property
    def sequences(self) -> int:
        return self.vocab ** self.length

    @property
    def enumerable(self) -> bool:
        return self.sequences <= ENUMERATION_LIMIT

    def initial_weights(self) -> dict[str, torch.Tensor]:
        return _initial_weights(self.vocab)

    def reward_of(self, tokens: torch.Tensor) -> torch.Tensor:
        if self.reward in ("sparse", "kl"):
            return sparse_reward(tokens, self.target)
        if self.reward == "count":
            return count_reward(tokens)
        return modsum_reward(tokens)

    def limit_text(self) -> str:
        return (f"{self.vocab}^{self.length} = {self.sequences} sequences exceed the enumeration limit of "
                f"2^{int(math.log2(ENUMERATION_LIMIT))} = {ENUMERATION_LIMIT}")


class SequenceCost:
    """f(z) = -r(z) (+ beta (log p_theta0(z) - log p_ref(z)) for the KL problem), on (..., L, V) tokens."""

    def __init__(self, setting: SequenceSetting, point: "callable | None" = None):
        self.setting, self.point = setting, point

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        cost = -self.setting.reward_of(tokens)
        if self.setting.reward == "kl":
            cost = cost + KL_WEIGHT * (_log_prob(self.point(), tokens) - _log_prob(self.setting.initial_weights(), tokens))
        return cost


def _log_prob(weights: dict[str, torch.Tensor], tokens: torch.Tensor) -> torch.Tensor:
    weights = {name: value.to(tokens) for name, value in weights.items()}
    # validate_args=False: relaxed tokens (points of the simplex) are valid arguments of the cost
    return AutoregressiveSequence(weights, tokens.shape[-2], validate_args=False).log_prob(tokens)


def enumerated_objective(setting: SequenceSetting, weights: dict[str, torch.Tensor],
                         reward_all: torch.Tensor, reference_log_probs: torch.Tensor | None) -> torch.Tensor:
    """E_theta[f_theta0] at theta0 = the weights' value, summed over all V^L sequences (differentiable in
    the weights): its gradient is the problem's exact gradient at those weights."""
    log_probs = enumerate_log_probs(weights, setting.length)
    cost = -reward_all
    if reference_log_probs is not None:
        cost = cost + KL_WEIGHT * (log_probs.detach() - reference_log_probs)
    return (log_probs.exp() * cost).sum()


@functools.lru_cache(maxsize=64)
def _enumeration_inputs(setting: SequenceSetting) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The reward of every sequence and, for the KL problem, the reference policy's log-probabilities."""
    with one_thread():
        reward_all = setting.reward_of(all_sequences(setting.vocab, setting.length))
        reference = enumerate_log_probs(setting.initial_weights(), setting.length) if setting.reward == "kl" else None
    return reward_all, reference


@functools.lru_cache(maxsize=64)
def trained_weights(setting: SequenceSetting, steps: int) -> dict[str, torch.Tensor]:
    """The weights after `steps` Adam steps (lr LEARNING_RATE) of the exact gradient from the initial ones."""
    weights = {name: value.clone().requires_grad_() for name, value in setting.initial_weights().items()}
    if steps:
        # On one thread: float64 sums in another order would move the point in its last digits, and the same
        # id must give the same point in this process, a pool worker or Ray (as benchmarks.metrics does).
        with one_thread():
            reward_all, reference = _enumeration_inputs(setting)
            first = {name: torch.zeros_like(value) for name, value in weights.items()}
            second = {name: torch.zeros_like(value) for name, value in weights.items()}
            for step in range(1, steps + 1):
                grads = torch.autograd.grad(enumerated_objective(setting, weights, reward_all, reference),
                                            list(weights.values()))
                with torch.no_grad():
                    for (name, value), grad in zip(weights.items(), grads):
                        adam_step(value, grad, first[name], second[name], step)
    return {name: value.detach() for name, value in weights.items()}


def adam_step(value, grad, first, second, step, lr=LEARNING_RATE, betas=(0.9, 0.999), eps=1e-8) -> None:
    """Adam (Kingma & Ba 2015), in place, as torch.optim.Adam's defaults; written out because building a
    torch.optim optimizer imports torch._dynamo (2 s)."""
    first.mul_(betas[0]).add_(grad, alpha=1 - betas[0])
    second.mul_(betas[1]).addcmul_(grad, grad, value=1 - betas[1])
    denominator = (second / (1 - betas[1] ** step)).sqrt_().add_(eps)
    value.addcdiv_(first, denominator, value=-lr / (1 - betas[0] ** step))


@dataclasses.dataclass(frozen=True, eq=False)
class SequenceProblem(GradientProblem):
    """A sequence problem: its point (trained weights) is computed on first use, not when registered."""

    setting: SequenceSetting | None = None
    steps: int = 0

    @property
    def distribution_type(self) -> type:
        return AutoregressiveSequence

    @property
    def sample_numel(self) -> int:
        return self.setting.length * self.setting.vocab

    @property
    def support_size(self) -> int | None:
        return None  # no estimator enumerates it (the exact estimator serves one categorical site)

    def reference(self) -> Reference:
        return _sequence_reference(self)

    def record(self) -> dict:
        """Settings and the point, as what reproduces it (the weights follow from seed and steps)."""
        weights = self.point()
        return {**self.settings, "point": {"steps": self.steps,
                                           "weights_norm": math.sqrt(sum(float(w.square().sum()) for w in weights.values()))}}


@functools.lru_cache(maxsize=64)
def _sequence_reference(problem: SequenceProblem) -> Reference:
    setting = problem.setting
    if not setting.enumerable:
        from benchmarks.tasks.reference import estimated_reference  # it draws through the harness

        reference = estimated_reference(problem, REFERENCE_ESTIMATES, REFERENCE_SAMPLES)
        return dataclasses.replace(reference, method=f"{reference.method}; by sampling, as {setting.limit_text()}")
    weights = {name: value.clone().requires_grad_() for name, value in problem.point().items()}
    with one_thread():
        value = enumerated_objective(setting, weights, *_enumeration_inputs(setting))
        grads = torch.autograd.grad(value, list(weights.values()))
    return Reference(torch.cat([g.reshape(-1) for g in grads]).detach(), 0.0,
                     f"enumeration of {setting.vocab}^{setting.length} = {setting.sequences} sequences",
                     float(value.detach()))


def _target(value, vocab: int, length: int, where: str) -> tuple[int, ...]:
    values = (value,) if isinstance(value, (int, float)) else tuple(value)
    if len(values) != length:
        raise InvalidPointError(f"{where}: target={format_value(values)} has {len(values)} tokens, the sequences "
                                f"have length {length}; give {length} tokens in 0..{vocab - 1}")
    for token in values:
        if not float(token).is_integer() or not 0 <= token < vocab:
            raise InvalidPointError(f"{where}: target={format_value(values)} has the token {token:g}, outside the "
                                    f"vocabulary 0..{vocab - 1} (vocab = {vocab}); give tokens in 0..{vocab - 1}")
    return tuple(int(token) for token in values)


def sequence_problem(reward: str, steps: float = 0, vocab: float = DEFAULTS["vocab"],
                     length: float = DEFAULTS["length"], target=None) -> SequenceProblem:
    """The sequence problem with this reward at `steps` exact-gradient steps from the initial weights."""
    if reward not in REWARDS:
        raise ValueError(f"unknown sequence reward {reward!r}; known: {', '.join(REWARDS)}")
    family_id = f"seq-{reward}"
    given = {"vocab": vocab, "length": length, "target": target, "steps": steps}
    where = f"point of {family_id!r}"
    try:
        vocab = check_positive_integer("vocab", vocab, 2, "one token has one sequence and no gradient")
        length = check_positive_integer("length", length)
        steps = check_positive_integer("steps", steps, 0, "exact-gradient steps from the initial weights")
    except ValueError as error:
        raise InvalidPointError(f"{where}: {error}") from None
    if target is not None and reward not in ("sparse", "kl"):
        raise InvalidPointError(f"{where}: target={format_value(tuple(target))} is given, but only seq-sparse and "
                                "seq-kl have a target; leave it out")
    setting = SequenceSetting(reward, vocab, length, None)
    if steps and not setting.enumerable:
        raise InvalidPointError(f"{where}: steps={steps} needs the exact gradient by enumeration, but "
                                f"{setting.limit_text()}; use steps=0, or a shorter length or a smaller vocab")
    if reward in ("sparse", "kl"):
        target = greedy_sequence(setting.initial_weights(), length) if target is None else \
            _target(target, vocab, length, where)
        setting = dataclasses.replace(setting, target=target)
    # The id names what differs from the defaults (the initial policy's greedy target is the default one).
    symmetric_steps = 10 if reward == "kl" else 0
    shown = {key: value for key, value in given.items()
             if value is not None and not (key in DEFAULTS and float(value) == DEFAULTS[key])
             and not (key == "steps" and float(value) == symmetric_steps)}
    shown = {key: (tuple(float(v) for v in value) if key == "target" else float(value)) for key, value in shown.items()}
    problem_id = f"{family_id}@{format_point(shown)}" if shown else family_id
    description = {
        "sparse": lambda: f"-1[z = target {list(setting.target)}]",
        "count": lambda: f"-#tokens equal to {COUNTED_TOKEN} (additive)",
        "modsum": lambda: f"-1[sum of tokens divisible by {vocab}] (non-additive)",
        "kl": lambda: f"-1[z = target {list(setting.target)}] + {KL_WEIGHT:g} KL(p || p_init)",
    }[reward]()
    settings = {"reward": reward, "vocab": vocab, "length": length, "hidden": HIDDEN, "seed": SEED,
                "logit_scale": LOGIT_SCALE, "steps": steps, "lr": LEARNING_RATE}
    if setting.target is not None:
        settings["target"] = list(setting.target)
    if reward == "kl":
        settings["kl_weight"] = KL_WEIGHT
    point = functools.partial(_point, setting, steps)
    return SequenceProblem(
        id=problem_id, family="autoregressive", eval_point=format_point(shown) if shown else f"steps={steps}",
        description=f"{description}, z ~ GRU policy (width {HIDDEN}, seed {SEED}) over V = {vocab} tokens, "
                    f"L = {length}, after {steps} exact-gradient Adam steps",
        point=point,
        make_distribution=functools.partial(_distribution, length),
        cost=SequenceCost(setting, point),
        settings=settings,
        setting=setting, steps=steps,
    )


def _point(setting: SequenceSetting, steps: int) -> dict[str, torch.Tensor]:
    return {name: value.clone() for name, value in trained_weights(setting, steps).items()}


def _distribution(length: int, params, validate_args) -> AutoregressiveSequence:
    return AutoregressiveSequence(params, length, validate_args=validate_args)


@dataclasses.dataclass(frozen=True)
class SequenceFamily(ProblemFamily):
    """A sequence problem family: its keys (steps, vocab, length, target) are checked by the builder, and
    its point is not built at registration (a part-way point is trained on first use)."""

    keys: tuple[str, ...] = ()

    def at(self, **point) -> GradientProblem:
        unknown = set(point) - set(self.keys)
        if unknown:
            raise InvalidPointError(f"point of {self.id!r} has no {', '.join(sorted(unknown))}; its point is set by "
                                    f"{self.keys_help}")
        for key, value in point.items():
            if key != "target" and not isinstance(value, (int, float)):
                raise InvalidPointError(f"point of {self.id!r}: {key}={format_value(value)} must be a number")
        return self.build(**point)


KEYS_HELP = {
    "sparse": "steps (exact-gradient steps from the initial weights), vocab, length, target (a list of tokens)",
    "count": "steps (exact-gradient steps from the initial weights), vocab, length",
}
KEYS_HELP["kl"], KEYS_HELP["modsum"] = KEYS_HELP["sparse"], KEYS_HELP["count"]

# Registered, outside the default sweep: the initial policy and a part-way point for each reward; for the KL
# problem only the part-way point (at steps = 0 the policy is its reference, the KL term and its gradient
# vanish, and the problem is seq-sparse's initial point).
for _reward in ("sparse", "count", "modsum"):
    add_family(SequenceFamily(f"seq-{_reward}", functools.partial(sequence_problem, _reward), {"steps": 0.0},
                              KEYS_HELP[_reward], keys=KEYS[_reward]), more_points=[{"steps": 10.0}], default=False)
add_family(SequenceFamily("seq-kl", functools.partial(sequence_problem, "kl"), {"steps": 10.0}, KEYS_HELP["kl"],
                          keys=KEYS["kl"]), default=False)
