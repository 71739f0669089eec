"""The measuring harness: a grid of independent cells, each drawing N gradient estimates at once.

A cell is (estimator, hparams, objective, S, N, device, dtype, seed): a small picklable unit whose
`run_cell` returns one tidy result row, so any executor (in process, a pool, Ray) can run it.

Vectorisation: the objective's parameters are expanded to an (n, ...) leaf, the distribution gets
batch shape (n,), and one backward pass through `surrogate.mean(0).sum()` gives n independent
estimates (row i of the gradient depends only on row i's samples). Work is chunked so that one
chunk holds at most ELEMENT_BUDGET sample elements (S * n * event size); chunks are looped only
when S is large.
"""
from __future__ import annotations

import dataclasses
import json
import time
import zlib

import torch

import estimators
from benchmarks.metrics import gradient_metrics
from benchmarks.objectives import Objective, get_objective
from benchmarks.timing import measure

ELEMENT_BUDGET = 2 ** 22
TIMING_SECONDS = 0.02


@dataclasses.dataclass(frozen=True)
class Cell:
    estimator: str
    hparams: tuple[tuple[str, float], ...]
    objective: str
    n_samples: int
    n_estimates: int
    device: str = "cpu"
    dtype: str = "float32"
    seed: int = 0

    @property
    def tau(self) -> float | None:
        return dict(self.hparams).get("tau")

    @property
    def cell_id(self) -> str:
        hp = ",".join(f"{k}={v:g}" if isinstance(v, (int, float)) else f"{k}={v}" for k, v in self.hparams)
        return (f"{self.estimator}[{hp}]|{self.objective}|S={self.n_samples}|N={self.n_estimates}"
                f"|{self.device}|{self.dtype}|seed={self.seed}")

    @property
    def rng_seed(self) -> int:
        """A seed of its own for each cell, stable across runs, orders and resumes."""
        return (self.seed * 1_000_003 + zlib.crc32(self.cell_id.encode())) % 2 ** 63


def chunk_size(objective: Objective, n_samples: int, n_estimates: int) -> int:
    return max(1, min(n_estimates, ELEMENT_BUDGET // (n_samples * objective.sample_numel)))


def estimate_chunk(estimator, objective: Objective, n: int, n_samples: int, hparams: dict,
                   device: str, dtype: torch.dtype) -> torch.Tensor:
    """n independent gradient estimates, each from n_samples samples, as an (n, P) tensor."""
    params = objective.batched_point(n, device, dtype)
    # Argument validation costs tens of microseconds a call; it is on in the tests, off here.
    dist = objective.distribution(params, validate_args=False)
    surrogate = estimator(objective.cost, dist, num_samples=n_samples, **hparams)
    leaves = list(params.values())
    grads = torch.autograd.grad(surrogate.mean(0).sum(), leaves, allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(n, -1)
                      for g, p in zip(grads, leaves)], dim=1)


def draw_estimates(estimator, objective: Objective, n_estimates: int, n_samples: int, hparams: dict,
                   device: str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(N, P) gradient estimates, drawn in vectorised chunks."""
    step = chunk_size(objective, n_samples, n_estimates)
    parts = [estimate_chunk(estimator, objective, min(step, n_estimates - start), n_samples, hparams, device, dtype)
             for start in range(0, n_estimates, step)]
    return torch.cat(parts)


def rounding_scale(objective: Objective, dtype: torch.dtype) -> float:
    """Float rounding in an estimate: machine epsilon times the scale of the cost and gradient,
    times a margin for the sums that build it."""
    scale = max(abs(objective.exact_value()), float(objective.exact_gradient().abs().max()))
    return 64 * torch.finfo(dtype).eps * scale


def run_cell(cell: Cell, bootstrap_seed: int = 0) -> dict:
    """Measure one cell: metrics of N estimates against the exact gradient, and their cost."""
    spec = estimators.get_spec(cell.estimator)
    objective = get_objective(cell.objective)
    dtype = getattr(torch, cell.dtype)
    hparams = dict(cell.hparams)
    estimator = spec.make()
    fork_devices = [torch.device(cell.device)] if torch.device(cell.device).type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(cell.rng_seed)
        step = chunk_size(objective, cell.n_samples, cell.n_estimates)
        # Let a stateful estimator's state settle, untimed. Each of the n rows is an independent run
        # of the estimator, with state of its own where the estimator keeps it per batch element.
        for _ in range(spec.warmup_calls):
            estimate_chunk(estimator, objective, min(step, spec.warmup_rows or step), cell.n_samples, hparams,
                           cell.device, dtype)
        start = time.perf_counter()
        estimates = draw_estimates(estimator, objective, cell.n_estimates, cell.n_samples, hparams,
                                   cell.device, dtype)
        seconds_per_row = (time.perf_counter() - start) / cell.n_estimates
        # Slow cells are timed on fewer rows (about TIMING_SECONDS a call): per-estimate cost is
        # amortised over the batch either way, and the sweep stays short.
        rows = max(1, min(step, int(TIMING_SECONDS / max(seconds_per_row, 1e-12))))
        timing = measure(lambda: estimate_chunk(estimator, objective, rows, cell.n_samples, hparams,
                                                cell.device, dtype), cell.device, memory=True,
                         warmup=0, min_repeats=3, min_time_s=0.03)  # the draw above was the warm-up
    row = {
        "estimator": cell.estimator,
        "tau": cell.tau,
        "hparams": json.dumps(hparams, sort_keys=True),
        "objective": cell.objective,
        "family": objective.family,
        "objective_params": json.dumps(objective.record(), sort_keys=True),
        "n_samples": cell.n_samples,
        "n_estimates": cell.n_estimates,
        "device": cell.device,
        "dtype": cell.dtype,
        "seed": cell.seed,
        "unbiased": spec.unbiased,
        "exact_value": objective.exact_value(),
        **gradient_metrics(estimates, objective.exact_gradient(), seed=bootstrap_seed,
                           rounding=rounding_scale(objective, dtype)),
    }
    time_per_estimate = timing.median_s / rows
    row.update({
        "f_evals": spec.f_evals_per_estimate(cell.n_samples, objective.sample_numel),
        "time_per_estimate_s": time_per_estimate,
        "time_per_estimate_min_s": timing.min_s / rows,
        "time_per_estimate_max_s": timing.max_s / rows,
        "timing_repeats": timing.repeats,
        "estimates_per_call": rows,
        "peak_memory_bytes": timing.peak_memory_bytes,
        "memory_kind": timing.memory_kind,
        "estimates_per_s": 1.0 / time_per_estimate,
    })
    if "variance_trace" in row:
        row["variance_x_time"] = row["variance_trace"] * time_per_estimate
        row["variance_x_fevals"] = row["variance_trace"] * row["f_evals"]
    row["cell_id"] = cell.cell_id
    return row


def enumerate_cells(specs, objectives, taus, samples, n_estimates, devices, dtype="float32", seed=0):
    """Every compatible cell, and (cell description, reason) for the combinations left out.

    Estimators without a temperature are measured once per (objective, S), not once per tau.
    """
    cells, skipped = [], []
    for objective in objectives:
        for spec in specs:
            if objective.family not in spec.families:
                continue
            for n_samples in samples:
                if n_samples < spec.min_samples:
                    skipped.append((f"{spec.name} on {objective.id} at S={n_samples}",
                                    f"{spec.name} needs S >= {spec.min_samples} (add --samples {spec.min_samples} or more)"))
                    continue
                settings = ([{**spec.hparams, "tau": float(t)} for t in taus] if spec.takes_tau
                            else [dict(spec.hparams)])
                for hparams in settings:
                    for device in devices:
                        cells.append(Cell(spec.name, tuple(sorted(hparams.items())), objective.id,
                                          n_samples, n_estimates, device, dtype, seed))
    return cells, skipped
