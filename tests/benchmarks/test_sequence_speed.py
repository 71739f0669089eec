"""Speed goals of the sequence policies (`pytest --benchmark-only -s tests/benchmarks/test_sequence_speed.py`).

1. Drawing N = 10,000 REINFORCE estimates of the GRU policy's gradient (V = 4, L = 7, S = 8, seq-sparse)
   through the harness (sample, then the teacher-forced log_prob, then one backward pass) against a
   hand-written vectorised REINFORCE for the same policy that draws the tokens and sums their log-probabilities
   in one pass: registry s / hand-written s <= 1.3, from interleaved turns with a sign-test interval
   (benchmarks.speed_goals). Both are vectorised over estimates and sequences; both loop over the L steps.
2. The exact gradient by enumerating the 4^7 = 16,384 sequences (prefix tree, float64): seconds against 1 s,
   the median of repeated runs with its sign-test interval.
"""
import time

import torch

import estimators
from benchmarks.harness import estimate_chunk
from benchmarks.metrics import one_thread
from benchmarks.speed_goals import RatioMeasurement, measure_ratio, median_interval
from benchmarks.tasks import get_problem
from benchmarks.tasks.sequences import _enumeration_inputs, enumerated_objective
from tests.benchmarks.goals import SEQUENCE_ENUMERATION, SEQUENCE_REINFORCE_VS_HANDWRITTEN

N, S = 10_000, 8
PAIRS = 6  # the fewest for a 95% sign-test interval: a call takes 0.5-3 s


def handwritten_reinforce(params: dict, target: torch.Tensor, n_samples: int):
    """REINFORCE for the GRU policy in one pass: a step computes the logits, draws a token (inverse CDF),
    adds its log-probability and feeds its embedding to the next step; the cost is -1[z = target]."""
    bos, embedding, w_ih, w_hh, b_ih, b_hh, w_out, b_out = (params[k] for k in (
        "bos", "embedding", "w_ih", "w_hh", "b_ih", "b_hh", "w_out", "b_out"))
    rows, hidden = bos.shape[0], w_hh.shape[-1]
    x = bos.unsqueeze(1).expand(rows, n_samples, -1).contiguous()
    h = torch.zeros(rows, n_samples, hidden)
    log_prob, tokens = 0.0, []
    for _ in range(len(target)):
        gi = torch.baddbmm(b_ih.unsqueeze(1), x, w_ih.transpose(1, 2))
        gh = torch.baddbmm(b_hh.unsqueeze(1), h, w_hh.transpose(1, 2))
        reset, update = torch.sigmoid(gi[..., :2 * hidden] + gh[..., :2 * hidden]).chunk(2, -1)
        candidate = torch.tanh(gi[..., 2 * hidden:] + reset * gh[..., 2 * hidden:])
        h = candidate + update * (h - candidate)
        logits = torch.baddbmm(b_out.unsqueeze(1), h, w_out.transpose(1, 2))
        log_softmax = logits - logits.logsumexp(-1, keepdim=True)
        with torch.no_grad():
            cumulative = log_softmax.exp().cumsum(-1)
            token = (torch.rand(rows, n_samples, 1) * cumulative[..., -1:] >= cumulative[..., :-1]).sum(-1)
        log_prob = log_prob + log_softmax.gather(-1, token.unsqueeze(-1)).squeeze(-1)
        tokens.append(token)
        x = torch.gather(embedding, 1, token.unsqueeze(-1).expand(rows, n_samples, embedding.shape[-1]))
    cost = -(torch.stack(tokens, -1) == target).all(-1).to(log_prob.dtype)      # (rows, S)
    loss = (cost * log_prob).mean(1).sum()
    return torch.autograd.grad(loss, list(params.values()))


def test_sequence_reinforce_vs_handwritten(benchmark, speed_goal):
    problem = get_problem("seq-sparse")
    estimator = estimators.get("reinforce")
    target = torch.tensor(problem.settings["target"])

    def registry():
        return estimate_chunk(estimator, problem, N, S, "cpu", torch.float32)

    def handwritten():
        return handwritten_reinforce(problem.batched_point(N), target, S)

    assert registry().shape == (N, problem.n_params) and len(handwritten()) == 8
    benchmark.group = "speed goals: sequence policy REINFORCE, N = 10,000, S = 8 (seconds of the whole measurement)"
    # Calls of seconds: no warm call a turn, one call a turn.
    measurement = benchmark.pedantic(measure_ratio, args=(registry, handwritten, PAIRS),
                                     kwargs={"calls_per_turn": 1, "warm_calls": 0}, rounds=1, iterations=1)
    print(f"\nregistry {measurement.numerator_s:.3f} s, hand-written {measurement.denominator_s:.3f} s a call "
          f"({N} estimates)")
    speed_goal(SEQUENCE_REINFORCE_VS_HANDWRITTEN, measurement)


def test_exact_gradient_by_enumeration(benchmark, speed_goal):
    problem = get_problem("seq-sparse")
    inputs = _enumeration_inputs(problem.setting)

    def exact_gradient():
        weights = {name: value.clone().requires_grad_() for name, value in problem.point().items()}
        with one_thread():
            return torch.autograd.grad(enumerated_objective(problem.setting, weights, *inputs), list(weights.values()))

    seconds = []

    def timed_run():
        start = time.perf_counter()
        exact_gradient()
        seconds.append(time.perf_counter() - start)

    exact_gradient()  # warm
    benchmark.group = "speed goals: exact gradient by enumeration of 4^7 sequences"
    # One enumeration a round, so that pytest-benchmark's row is the time of one (a round of 15 read as 188 ms
    # beside the goal's 12.6 ms per enumeration, found by a new user).
    benchmark.pedantic(timed_run, rounds=15, iterations=1)
    median, low, high = median_interval(seconds)
    print(f"\nexact gradient by enumeration: {median * 1e3:.1f} ms median [{low * 1e3:.1f}, {high * 1e3:.1f}]")
    speed_goal(SEQUENCE_ENUMERATION, RatioMeasurement(median, low, high, 0.95, len(seconds), median, 1.0))
