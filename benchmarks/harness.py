"""The measuring harness: a grid of independent cells, each drawing N gradient estimates at once.

A cell is (estimator, hparams, problem, S, N, device, dtype, seed): a small picklable unit whose
`run_cell` returns one tidy result row, so any executor (in process, a pool, Ray) can run it. Every
task measures through the same functions: a gradient problem (benchmarks.tasks) in, N estimates and
`gradient_metrics` out.

Vectorisation: the problem's parameters are expanded to an (n, ...) leaf, the distribution gets
batch shape (n,), and one backward pass through `surrogate.mean(0).sum()` gives n independent
estimates (row i of the gradient depends only on row i's samples). Work is chunked so that one
chunk holds at most ELEMENT_BUDGET sample elements (S * n * event size); chunks are looped only
when S is large.
"""
from __future__ import annotations

import dataclasses
import json
import math
import zlib

import torch

from benchmarks.embedding import isometric_embedding
from benchmarks.hparam_grid import settings_for
from benchmarks.metrics import gradient_metrics
from benchmarks.tasks import GradientProblem, get_problem

ELEMENT_BUDGET = 2 ** 22


def format_hparams(pairs) -> str:
    """'k=10,tau=0.5': hyperparameters as they appear in cell and run ids."""
    return ",".join(f"{k}={v:g}" if isinstance(v, (int, float)) else f"{k}={v}" for k, v in pairs)


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
        return (f"{self.estimator}[{format_hparams(self.hparams)}]|{self.objective}|S={self.n_samples}|N={self.n_estimates}"
                f"|{self.device}|{self.dtype}|seed={self.seed}")

    @classmethod
    def from_row(cls, row) -> Cell:
        """The cell a sweep row (of results.csv or results.json, as a mapping) was measured in."""
        hparams = row["hparams"]
        hparams = json.loads(hparams) if isinstance(hparams, str) else dict(hparams)
        cell = cls(str(row["estimator"]), tuple(sorted(hparams.items())), str(row["objective"]), int(row["n_samples"]),
                   int(row["n_estimates"]), str(row["device"]), str(row["dtype"]), int(row["seed"]))
        if "cell_id" in row and cell.cell_id != row["cell_id"]:
            raise ValueError(f"the row's columns make the cell {cell.cell_id!r}, but the row says {row['cell_id']!r}: "
                             "pass a row of a sweep's results.csv or results.json as it was written")
        return cell

    @property
    def rng_seed(self) -> int:
        """A seed of its own for each cell, stable across runs, orders and resumes."""
        return (self.seed * 1_000_003 + zlib.crc32(self.cell_id.encode())) % 2 ** 63


def chunk_size(problem: GradientProblem, n_samples: int, n_estimates: int, device: str = "cpu") -> int:
    per_chunk = problem.estimates_per_chunk(n_samples, device)
    if per_chunk is None:
        per_chunk = ELEMENT_BUDGET // (n_samples * problem.sample_numel)
    return max(1, min(n_estimates, per_chunk))


def surrogate_and_gradients(estimator, problem: GradientProblem, n: int, n_samples: int,
                            device: str = "cpu", dtype: torch.dtype = torch.float32,
                            validate_args: bool = False, params: dict | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(surrogate (S, n, ...), gradient estimates (n, P)): n independent estimates from n_samples samples each.

    `estimator` is ready to call, bound to its hyperparameters (`spec.make(**hparams)`). `params`: leaves
    of shape (n, ...) to differentiate at instead of n copies of the problem's point (an optimisation
    trajectory moves them).

    The surrogate's forward value is the per-sample cost estimate; the gradient of the problem's
    deterministic term (if any: the VAE's analytic KL) is added to every estimate. At the problem's own
    point that gradient is the same for every row, so it is taken once, on one copy of the point (the
    KL of the categorical VAE over all n rows was 15% of a measurement's drawing); rows at points of
    their own (`params`) each get their own."""
    shared = params is None
    params = problem.batched_point(n, device, dtype) if shared else params
    # Argument validation costs tens of microseconds a call: the tests turn it on, the sweep leaves it off.
    dist = problem.distribution(params, validate_args=validate_args)
    surrogate = estimator(problem.cost_for(dist), dist, num_samples=n_samples)
    per_estimate = surrogate.mean(0)                                  # (n, *data batch)
    if not shared:
        deterministic = problem.deterministic_cost(params)
        if deterministic is not None:
            per_estimate = per_estimate + deterministic
    grads = _gradients(problem, per_estimate, params)
    if shared:
        one = problem.batched_point(1, device, dtype)
        deterministic = problem.deterministic_cost(one)
        if deterministic is not None:
            grads = grads + _gradients(problem, deterministic, one)
    return surrogate, grads


def _gradients(problem: GradientProblem, per_estimate: torch.Tensor, params: dict) -> torch.Tensor:
    """(n, P): row i the gradient of row i's objective with respect to its own leaves. The objective is
    summed over a data batch, or averaged over it as a training loss is (the VAE's minibatch)."""
    n = per_estimate.shape[0]
    objective = per_estimate.reshape(n, -1).mean(1).sum() if problem.batch_mean else per_estimate.sum()
    leaves = list(params.values())
    grads = torch.autograd.grad(objective, leaves, allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(n, -1) for g, p in zip(grads, leaves)],
                     dim=1)


def estimate_chunk(estimator, problem: GradientProblem, n: int, n_samples: int,
                   device: str = "cpu", dtype: torch.dtype = torch.float32, validate_args: bool = False) -> torch.Tensor:
    """n independent gradient estimates, each from n_samples samples, as an (n, P) tensor."""
    return surrogate_and_gradients(estimator, problem, n, n_samples, device, dtype, validate_args)[1]


def draw_estimates(estimator, problem: GradientProblem, n_estimates: int, n_samples: int,
                   device: str = "cpu", dtype: torch.dtype = torch.float32, validate_args: bool = False) -> torch.Tensor:
    """(N, P) gradient estimates, drawn in vectorised chunks. The only estimate drawer: the sweep, the
    VAE, the public `benchmarks.measure` and the tests (with validate_args on) all draw through it."""
    step = chunk_size(problem, n_samples, n_estimates, device)
    parts = [estimate_chunk(estimator, problem, min(step, n_estimates - start), n_samples, device, dtype,
                            validate_args)
             for start in range(0, n_estimates, step)]
    return torch.cat(parts)


def warm_up(spec, estimator, problem: GradientProblem, n_samples: int, device: str, dtype,
            rows: int, validate_args: bool = False) -> None:
    """Let a stateful estimator's state settle, untimed. Each of the rows is an independent run of the
    estimator, with state of its own where the estimator keeps it per batch element; a state shared by
    all rows (a learned baseline network) is trained on batches of spec.warmup_rows rows."""
    for _ in range(spec.warmup_calls):
        estimate_chunk(estimator, problem, min(rows, spec.warmup_rows or rows), n_samples, device, dtype,
                       validate_args)


def rounding_scale(problem: GradientProblem, dtype: torch.dtype) -> float:
    """Float rounding in an estimate: machine epsilon times the scale of the cost and gradient,
    times a margin for the sums that build it."""
    value = problem.exact_value()
    scale = max(abs(value) if math.isfinite(value) else 0.0, float(problem.exact_gradient().abs().max()))
    return 64 * torch.finfo(dtype).eps * scale


def problem_metrics(estimates: torch.Tensor, problem: GradientProblem, dtype: torch.dtype,
                    seed: int = 0) -> dict:
    """gradient_metrics of the estimates against the problem's reference, in the parameters the problem
    reports (through its gradient map, if it has one), with the reference's standard error."""
    reference = problem.reference()
    row = {"reference": reference.method, "reference_se": reference.standard_error}
    if problem.gradient_map is None or int(torch.isfinite(estimates).all(-1).sum()) < 2:  # < 2: nothing to map
        return {**row, **gradient_metrics(estimates, reference.gradient, seed=seed,
                                          rounding=rounding_scale(problem, dtype),
                                          reference_se=reference.standard_error)}
    embedded, target = isometric_embedding(problem.gradient_map, estimates, reference.gradient)
    return {**row, **gradient_metrics(embedded, target, seed=seed, reference_se=reference.standard_error,
                                      coordinates=False)}


@dataclasses.dataclass(frozen=True)
class VarianceUnit:
    """A cell as a unit of work for the run loop (benchmarks.sweep): one row, written through the sink.
    Its bootstrap draws use the cell's seed, so the row does not depend on the executor."""
    cell: Cell
    imports: tuple[str, ...] = ()
    steps: int = 1

    @property
    def unit_id(self) -> str:
        return self.cell.cell_id

    @property
    def device(self) -> str:
        return self.cell.device

    @property
    def cost_hint(self) -> float:
        """A rough relative cost, for a pool to start the longest cells first: warm-up calls of a stateful
        estimator, f-evaluations per sample, S."""
        import estimators

        spec = estimators.get_spec(self.cell.estimator)
        return (1 + spec.warmup_calls) * spec.f_evals_per_estimate(self.cell.n_samples, 1)

    def run(self, sink) -> str:
        sink.add(run_cell(self.cell))
        sink.advance(1)
        return "ok"


def run_cell(cell: Cell, bootstrap_seed: int | None = None) -> dict:
    """Measure one cell: metrics of N estimates against the exact gradient, and their cost. The estimates are
    drawn with the cell's own seed (Cell.rng_seed), the bootstrap with `bootstrap_seed` (default: the cell's
    grid seed, as the sweep does)."""
    from benchmarks.measurement import measure  # measure builds on this module

    bootstrap_seed = cell.seed if bootstrap_seed is None else bootstrap_seed
    row = measure(cell.estimator, get_problem(cell.objective), n_estimates=cell.n_estimates, n_samples=cell.n_samples,
                  hparams=dict(cell.hparams), device=cell.device, dtype=getattr(torch, cell.dtype),
                  seed=cell.rng_seed, bootstrap_seed=bootstrap_seed)
    row.update({"tau": cell.tau, "seed": cell.seed, "dtype": cell.dtype, "cell_id": cell.cell_id})
    return row


def enumerate_cells(specs, problems, taus, samples, n_estimates, devices, dtype="float32", seed=0, sweeps=()):
    """Every compatible cell, and (cell description, reason) for the combinations left out.

    Each estimator is measured at every combination of its swept hyperparameters (`taus` for a
    temperature, `sweeps` from --hparam; its declared defaults otherwise), so one without a swept
    hyperparameter is measured once per (objective, S). A combination that breaks a declared
    constraint is left out here, before anything runs, with the registry's message.
    """
    seeds = [seed] if isinstance(seed, int) else list(seed)
    cells, skipped = [], []
    grids = {spec.name: settings_for(spec, list(sweeps), taus) for spec in specs}
    for objective in problems:
        kind = objective.distribution_type
        for spec in specs:
            if not spec.supports(kind):
                continue
            settings, refused = grids[spec.name]
            skipped += [(f"{spec.name} on {objective.id}", why) for why in refused]
            for n_samples in samples:
                if n_samples < spec.min_samples:
                    skipped.append((f"{spec.name} on {objective.id} at S={n_samples}",
                                    f"{spec.name} needs S >= {spec.min_samples} (add --samples {spec.min_samples} or more)"))
                    continue
                for hparams in settings:
                    for device in devices:
                        cells += [Cell(spec.name, tuple(sorted(hparams.items())), objective.id,
                                       n_samples, n_estimates, device, dtype, one_seed) for one_seed in seeds]
    return cells, skipped
