"""`benchmarks.measure`: bias, variance and cost of one estimator on one gradient problem, as a tidy row.

    from benchmarks import measure
    row = measure("reinforce_loo", problem, n_estimates=10_000, n_samples=4)
    row["variance_trace"], row["bias_norm_lo"], row["bias_norm_hi"], row["time_per_estimate_s"]

`problem` is a registered id (`'tucker-0.45@theta=-2'`) or any object that follows the protocol of
benchmarks.tasks.protocol (a user's own cost and distribution, with a closed-form or estimated
reference). The sweep's cells, the VAE's evaluation points and a user's model are all measured here.
"""
from __future__ import annotations

import functools
import json
import time

import torch

import estimators
from benchmarks.harness import Cell, chunk_size, draw_estimates, estimate_chunk, problem_metrics, run_cell, warm_up
from benchmarks.metrics import torch_threads
from benchmarks.tasks import GradientProblem, get_problem
from benchmarks.tasks.protocol import forked_rng
from benchmarks.timing import hygiene_columns
from benchmarks.timing import measure as time_calls

TIMING_SECONDS = 0.02


def _estimator_spec_hparams(estimator, spec, hparams: dict | None):
    """(ready estimator, its spec, the hyperparameters it runs with)."""
    if isinstance(estimator, str):
        estimator = estimators.get_spec(estimator)
    if isinstance(estimator, estimators.EstimatorSpec):
        used = estimator.check_hparams(hparams)
        return estimator.make(**used), estimator, used
    if spec is None:  # a bare callable: measured with no registry metadata (one f-evaluation per sample)
        spec = estimators.EstimatorSpec(name=getattr(estimator, "__name__", type(estimator).__name__),
                                        factory=lambda: estimator, families=(), needs=(), unbiased=False,
                                        summary="", reference="")
    built = getattr(estimator, "hparams", None)  # a stateful instance knows what it was built with
    if built is not None:
        if hparams and any(built.get(k) != v for k, v in hparams.items()):
            raise estimators.HyperparameterError(
                f"this {spec.name} instance was built with {built}; a stateful estimator takes its "
                f"hyperparameters when built, so build one with {hparams} instead of passing them here")
        return estimator, spec, dict(built)
    bound = dict(getattr(estimator, "keywords", None) or {})  # a registered function bound by spec.make
    if hparams:
        if spec.hparam_decls:  # a registered estimator's values are checked as on any call
            spec.check_hparams(hparams)
        return functools.partial(estimator, **hparams), spec, {**bound, **hparams}
    return estimator, spec, bound


def measure(estimator, problem: GradientProblem | str, *, n_estimates: int = 10_000, n_samples: int = 1,
            hparams: dict | None = None, device: str = "cpu", dtype: torch.dtype = torch.float32, seed: int = 0,
            bootstrap_seed: int = 0, warmup: bool = True, timing: bool = True, validate_args: bool = False,
            spec: estimators.EstimatorSpec | None = None, threads: int | None = None) -> dict:
    """Draw n_estimates independent gradient estimates (each from n_samples samples) and return their
    metrics against the problem's reference, with intervals, and (with `timing`) their cost.

    `estimator`: a registered name, an EstimatorSpec, or a ready instance (e.g. a stateful estimator
    with the state it learned in training; pass its `spec` for the metadata, and `warmup=False` to
    measure that state rather than a settled fresh one). `hparams` default to the spec's; a stateful
    estimator is built with them (a ready stateful instance keeps those it was built with). The global RNGs
    (CPU and CUDA) are left as they were: the draws use a fork seeded with `seed`. `threads`: torch threads to
    measure on (default: this process's); the figures depend on it in their last digits, so to get a run's
    figures again, use the run's (a row's `torch_threads`)."""
    problem = get_problem(problem) if isinstance(problem, str) else problem
    estimator, spec, hparams = _estimator_spec_hparams(estimator, spec, hparams)
    kind = problem.distribution_type
    if (spec.families or spec.needs) and not spec.supports(kind):
        able = [s.name for s in estimators.list_estimators() if s.supports(kind)]
        raise estimators.UnsupportedFamilyError(
            f"estimator {spec.name!r} does not support problem {problem.id!r} (family {problem.family!r}); it "
            f"supports {spec.applies_to}. Estimators that support {problem.family!r}: {', '.join(able) or 'none'}")
    if n_estimates < 2 or n_samples < 1:
        raise ValueError(f"measure needs n_estimates >= 2 and n_samples >= 1, got {n_estimates} and {n_samples}")
    with forked_rng(seed), torch_threads(threads):
        step = chunk_size(problem, n_samples, n_estimates, device)
        if warmup:
            warm_up(spec, estimator, problem, n_samples, device, dtype, step, validate_args)
        start = time.perf_counter()
        estimates = draw_estimates(estimator, problem, n_estimates, n_samples, device, dtype, validate_args)
        seconds_per_row = (time.perf_counter() - start) / n_estimates
        if timing:
            # Slow cells are timed on fewer rows (about TIMING_SECONDS a call): per-estimate cost is
            # amortised over the batch either way, and the sweep stays short.
            rows = max(1, min(step, int(TIMING_SECONDS / max(seconds_per_row, 1e-12))))
            timed = time_calls(lambda: estimate_chunk(estimator, problem, rows, n_samples, device, dtype),
                               device, memory=True, warmup=0, min_repeats=3, min_time_s=0.03)  # the draw warmed up
        metrics = problem_metrics(estimates, problem, dtype, seed=bootstrap_seed)  # an estimated reference draws too
    row = {
        "estimator": spec.name,
        "hparams": _json(hparams),
        "objective": problem.id,
        "problem_version": problem.version,
        "eval_point": problem.eval_point,
        "family": problem.family,
        "objective_params": _json(problem.record()),
        "n_samples": n_samples,
        "n_estimates": n_estimates,
        "device": device,
        "dtype": str(dtype).removeprefix("torch."),
        "unbiased": spec.unbiased,
        "exact_value": problem.exact_value(),
        **metrics,
        "f_evals": spec.f_evals_per_estimate(n_samples, problem.sample_numel, problem.support_size),
    }
    if timing:
        time_per_estimate = timed.median_s / rows
        row.update({
            "time_per_estimate_s": time_per_estimate,
            "time_per_estimate_min_s": timed.min_s / rows,
            "time_per_estimate_max_s": timed.max_s / rows,
            "timing_repeats": timed.repeats,
            "estimates_per_call": rows,
            "peak_memory_bytes": timed.peak_memory_bytes,
            "memory_kind": timed.memory_kind,
            "estimates_per_s": 1.0 / time_per_estimate,
            **hygiene_columns(timed.load_avg_start, timed.load_avg_end, timed.cpu_s, timed.wall_s, timed.wait_share),
        })
        if "variance_trace" in row:
            row["variance_x_time"] = row["variance_trace"] * time_per_estimate
            row["variance_x_fevals"] = row["variance_trace"] * row["f_evals"]
    return row


def rerun(row) -> dict:
    """A variance sweep's row measured again: `row` is a row of its results.csv or results.json (a mapping).
    Its cell, with the cell's seeds (the draws use Cell.rng_seed, derived from the cell's id and grid seed; the
    bootstrap the grid seed) and the row's `torch_threads`, gives the same statistics; the timing columns are
    new. Estimators or problems registered by a run's `--import` modules need those imported first."""
    threads = row.get("torch_threads")
    with torch_threads(None if threads is None else int(threads)):
        return run_cell(Cell.from_row(row))


def _json(value) -> str:
    return json.dumps(value, sort_keys=True)
