"""The suite's speed goals, as data: which ratio, which way, what threshold (benchmarks.speed_goals).

Each benchmark in this folder measures its goal with interleaved turns and an interval, and hands it to
the `speed_goal` fixture (tests/benchmarks/speed_goals_plugin.py), which records the verdict and, under
--speed-goals=enforce, fails a goal that is not met. A goal without a threshold is recorded only.
"""
from benchmarks.speed_goals import SpeedGoal

VECTORISED_VS_LOOP = SpeedGoal(
    "vectorised vs loop, N = 10,000", "loop s / vectorised s", ">=", 300,
    note="N = 10,000 estimates drawn at once against a Python loop of one-estimate calls")

REGISTRY_OVERHEAD = {
    10_000: SpeedGoal("registry vs hand-written, S = 10,000", "registry s / hand-written s", "<=", 1.15),
    1: SpeedGoal("registry vs hand-written, S = 1", "registry s / hand-written s", "<=",
                 note="recorded, not judged: a call lasts a few hundred microseconds and the fixed cost of "
                      "building torch.distributions objects and the surrogate can exceed 15%"),
}

GUMBEL_SOFTMAX_VS_FUNCTIONAL = SpeedGoal(
    "Gumbel-Softmax vs F.gumbel_softmax, S = 10,000", "F.gumbel_softmax s / registry s", ">=", 1.5)

VAE_STEP_VS_PLAIN = SpeedGoal(
    "VAE training step vs plain PyTorch", "registry s / plain s", "<=", 1.1,
    note="categorical 20x10, 784-512-256, batch 100, gumbel_softmax")

VAE_GRADIENT_VS_FLOOR = SpeedGoal(
    "VAE encoder-gradient measurement vs its floor, N = 1,000", "measurement s / floor s", "<=", 1.25,
    note="categorical 20x10, 784-512-256, batch 100; floor: the decoder and likelihood on all N x 100 samples")

DEFAULT_SWEEP = SpeedGoal(
    "default sweep (python -m benchmarks.variance --tau 0.1 1.0)", "sweep s / 60 s", "<=", 1.0,
    note="one run (55-80 s): no interval, so never decisive")

TRAJECTORY_POINT_VS_CELL = SpeedGoal(
    "trajectory measurement point vs a sweep cell, same N and S", "point s / cell s", "<=", 1.2,
    note="N = 1,000, S = 1; the point adds the exact loss and gradient at theta, the cell its timing calls")

SEQUENCE_REINFORCE_VS_HANDWRITTEN = SpeedGoal(
    "sequence policy REINFORCE vs hand-written, N = 10,000, S = 8", "registry s / hand-written s", "<=", 1.3,
    note="V = 4, L = 7, GRU width 16 (seq-sparse); the hand-written side draws tokens and sums log p in one pass")

SEQUENCE_ENUMERATION = SpeedGoal(
    "exact gradient by enumerating 4^7 sequences vs 1 s", "enumeration s / 1 s", "<=", 0.25,
    note="prefix tree, float64, one thread; the interval is the sign-test interval of repeated runs' median")

POOL_VS_IN_PROCESS = SpeedGoal(
    "main command: --workers 2 vs in process", "in-process s / pool s", ">=", 1.6,
    note="python -m benchmarks.variance --tau 0.1 1.0, report included, one run each (25-45 s): no interval, "
         "so never decisive; both on one torch thread per unit (the default), so their rows are identical")

RAY_VS_POOL = SpeedGoal(
    "main command: Ray vs --workers 2", "ray s / pool s", "<=", 1.2,
    note="a local Ray instance with 2 CPUs against a pool of 2 workers, one run each: never decisive")
