"""Optimisation trajectories on the toys, as units of work: the REBAR / RELAX / ARM toy experiment.

A run minimises E_{z ~ p_theta}[f(z)] of a closed-form toy problem over its parameters theta, from the
problem's point, with one estimator's gradient estimate per step (S samples; the papers' "batch 1"
is S = 1) and Adam or SGD. Because E[f] and its gradient are known in closed form at every theta,
each measurement point records, with no noise:

    the exact loss E[f](theta_k), the parameters theta_k and the exact gradient at theta_k,

and, through the same harness and metrics as the sweep, the bias, variance, MSE and cosine of N fresh
estimates at the frozen theta_k (a stateful estimator measured on a copy, with the state it learned
on the way, as in the papers), plus steps, training seconds and f-evaluations so far, with the load average,
CPU seconds and cores over those training seconds (benchmarks.timing.TrainingClock: every step since the
start, measurements left out).

Training draws from torch's global generator, seeded by the run's seed; each measurement forks its
own stream, so measuring does not change the trajectory: the same seed gives the same path whatever
the executor or --measure-every. A run whose parameters or gradient estimate go non-finite stops with
a message and keeps its earlier points. Runs are short, so an interrupted one restarts from step 0.

References for the settings:
    Tucker, G. et al. (2017). REBAR. NeurIPS (E[(b - t)^2], t = 0.45).
    Grathwohl, W. et al. (2018). Backpropagation through the void. ICLR, Fig. 1 (t = 0.499, Adam 0.01).
    Yin, M., Zhou, M. (2019). ARM. ICLR (p0 in {0.49, 0.499, 0.501, 0.51}).
"""
from __future__ import annotations

import copy
import dataclasses
import json
import math

import torch

import estimators
from benchmarks.harness import format_hparams, surrogate_and_gradients
from benchmarks.measurement import measure
from benchmarks.tasks import ClosedFormProblem, get_problem
from benchmarks.tasks.protocol import constraint_message
from benchmarks.timing import TrainingClock

MEASURED = ("variance_trace", "variance_trace_lo", "variance_trace_hi", "bias_norm", "bias_norm_lo", "bias_norm_hi",
            "bias_significant", "bias_z_max", "mse", "mse_lo", "mse_hi", "cosine", "snr", "rel_bias", "n_finite",
            "nonfinite", "reference", "f_evals")


@dataclasses.dataclass(frozen=True)
class TrajectorySettings:
    """What every run of a grid shares."""
    steps: int
    samples: int
    optimizer: str
    lr: float
    measure_every: int
    estimates: int
    device: str = "cpu"
    dtype: str = "float32"

    def measurement_steps(self) -> list[int]:
        return sorted({0, self.steps, *range(self.measure_every, self.steps + 1, self.measure_every)})


@dataclasses.dataclass(frozen=True)
class TrajectoryRun:
    """One (problem and start, estimator and hyperparameters, seed) trajectory: a unit of work."""
    problem: str
    estimator: str
    hparams: tuple
    seed: int
    settings: TrajectorySettings
    imports: tuple[str, ...] = ()

    @property
    def unit_id(self) -> str:
        return (f"{self.problem}|{self.estimator}[{format_hparams(self.hparams)}]|S={self.settings.samples}|{self.settings.optimizer}"
                f"|lr={self.settings.lr:g}|{self.settings.device}|seed={self.seed}")

    @property
    def steps(self) -> int:
        return self.settings.steps

    @property
    def device(self) -> str:
        return self.settings.device

    def run(self, sink) -> str:
        return train_trajectory(self, sink)


def exact_loss_and_gradient(problem: ClosedFormProblem, theta: dict) -> tuple[float, torch.Tensor]:
    """E[f] and its gradient at theta, by autograd of the closed form in float64."""
    point = {name: value.detach().to("cpu", torch.float64).requires_grad_() for name, value in theta.items()}
    value = problem.expected_cost(point)
    grads = torch.autograd.grad(value, list(point.values()))
    return float(value.detach()), torch.cat([g.reshape(-1) for g in grads])


def problem_at(problem: ClosedFormProblem, theta: dict, step: int) -> ClosedFormProblem:
    """The problem with its point moved to theta (frozen), for the harness to measure there."""
    frozen = {name: value.detach().to("cpu").clone() for name, value in theta.items()}
    return dataclasses.replace(problem, id=f"{problem.id}|step={step}", point=lambda: frozen)


def loss_infimum(problem: ClosedFormProblem) -> float | None:
    """inf over theta of E[f], where the family states it (Tucker's toy: min(t^2, (1 - t)^2))."""
    value = problem.settings.get("infimum")
    return None if value is None else float(value)


def measurement_row(run: TrajectoryRun, problem: ClosedFormProblem, spec, estimator, theta: dict, step: int,
                    dtype: torch.dtype, f_evals_per_step: int, infimum: float | None, clock: TrainingClock) -> dict:
    """One measurement point: the exact loss and gradient at theta and the figures of N fresh estimates
    there, measured on a copy of the estimator (measuring must not train a stateful estimator's state)
    and on a random stream of its own (it must not move the training stream)."""
    settings = run.settings
    current = {name: value.detach()[0] for name, value in theta.items()}
    loss, gradient = exact_loss_and_gradient(problem, current)
    measured = measure(copy.deepcopy(estimator), problem_at(problem, current, step), spec=spec,
                       n_estimates=settings.estimates, n_samples=settings.samples, device=settings.device,
                       dtype=dtype, warmup=False, timing=False, seed=run.seed * 1_000_003 + step,
                       bootstrap_seed=run.seed)
    row = {"cell_id": f"{run.unit_id}|step={step}", "run_id": run.unit_id, "problem": run.problem,
           "family": problem.family, "estimator": spec.name, "hparams": json.dumps(dict(run.hparams), sort_keys=True),
           "tau": dict(run.hparams).get("tau"), "seed": run.seed, "step": step, "n_samples": settings.samples,
           "n_estimates": settings.estimates, "optimizer": settings.optimizer, "lr": settings.lr,
           "device": settings.device, "dtype": settings.dtype, "unbiased": spec.unbiased,
           "exact_loss": loss, "loss_infimum": infimum,
           "params": json.dumps({name: value.tolist() for name, value in current.items()}),
           "theta": float(next(iter(current.values())).reshape(-1)[0]),
           "exact_grad": json.dumps(gradient.tolist()), "exact_grad_norm": float(gradient.norm()),
           "train_seconds": clock.wall_s, **clock.columns(), "f_evals_so_far": step * f_evals_per_step,
           **{name: measured.get(name, math.nan) for name in MEASURED}}
    if "tau" in spec.learns:
        row["tau"] = estimator.tau
    return row


def train_trajectory(run: TrajectoryRun, sink) -> str:
    settings = run.settings
    problem = get_problem(run.problem)
    if not isinstance(problem, ClosedFormProblem):
        raise estimators.NotApplicableError(f"{run.problem} has no closed-form loss; trajectories need one")
    spec = estimators.get_spec(run.estimator)
    if not spec.supports(problem.distribution_type):
        raise estimators.NotApplicableError(f"{spec.name} does not apply to {problem.family} ({run.problem})")
    dtype = getattr(torch, settings.dtype)
    torch.manual_seed(run.seed)
    estimator = spec.make(**dict(run.hparams))
    # theta as (1, ...) leaves, the harness's batched shape for one estimate per step.
    theta = {name: value.to(settings.device, dtype).unsqueeze(0).clone().requires_grad_()
             for name, value in problem.point().items()}
    optimizer = (torch.optim.Adam if settings.optimizer == "adam" else torch.optim.SGD)(theta.values(), lr=settings.lr)
    sample_numel, states = problem.sample_numel, problem.support_size
    f_evals_per_step = spec.f_evals_per_estimate(settings.samples, sample_numel, states)
    infimum = loss_infimum(problem)
    measure_at = set(settings.measurement_steps())
    clock = TrainingClock()  # the steps only: the measurements between them are not the estimator's cost

    def record(step: int) -> None:
        row = measurement_row(run, problem, spec, estimator, theta, step, dtype, f_evals_per_step, infimum, clock)
        sink.add(row)

    record(0)
    for step in range(1, settings.steps + 1):
        clock.start()
        _, estimate = surrogate_and_gradients(estimator, problem, 1, settings.samples, settings.device, dtype,
                                              params=theta)
        if not torch.isfinite(estimate).all():
            return f"stopped at step {step}: the gradient estimate is not finite; earlier points are kept"
        offset = 0
        for value in theta.values():
            value.grad = estimate[:, offset:offset + value[0].numel()].reshape(value.shape).to(value.dtype)
            offset += value[0].numel()
        optimizer.step()
        clock.stop(settings.device)
        sink.advance(1)
        if not all(torch.isfinite(value).all() for value in theta.values()):
            return f"stopped at step {step}: the parameters are not finite; earlier points are kept"
        try:  # a step can leave the family's support (a negative sigma): the loss means nothing there
            problem.distribution(theta, validate_args=True)
        except ValueError as error:
            return (f"stopped at step {step}: the parameters left the {problem.family} family's support "
                    f"({constraint_message(error)}); earlier points are kept")
        if step in measure_at:
            record(step)
    return "ok"

