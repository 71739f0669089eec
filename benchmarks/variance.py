"""`python -m benchmarks.variance`: bias, variance and cost of every estimator on the toy objectives.

    python -m benchmarks.variance --tau 0.1 1.0
    python -m benchmarks.variance --estimators 'reinforce*' --objectives 'tucker-*' --samples 1 4
    python -m benchmarks.variance --estimators gumbel_rao rebar --hparam gumbel_rao:k=1,10,100 rebar:eta=0.5,1
    python -m benchmarks.variance --import my_estimators --estimators my_estimator
    python -m benchmarks.variance --list

Writes results.csv, results.json, run.json and the report (index.html with PNGs) into --out.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

# Only what parsing needs: torch, matplotlib and the estimators are imported once the arguments are read.
from benchmarks.cli_common import add_executor_options, add_hparam_options, add_tau_options, int_at_least


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.variance",
        description="Measure gradient bias, variance and cost of every registered estimator on toy "
                    "objectives with exact gradients, and render the report.")
    add_tau_options(parser, "temperatures for estimators that take one (default: each one's own declared default, "
                             "e.g. 1.0 for gumbel_softmax, 0.5 for rebar and relax)", best_temperature=True)
    add_hparam_options(parser)
    parser.add_argument("--estimators", nargs="+", metavar="NAME", help="names or glob patterns (default: all)")
    parser.add_argument("--objectives", nargs="+", metavar="ID",
                        help="problem ids, points (tucker-0.45@theta=-2) or glob patterns (default: the default "
                             "sweep's problems; '*' for every registered one)")
    parser.add_argument("--samples", type=int_at_least(1, "--samples (S, samples per estimate)"), nargs="+",
                        default=[1], metavar="S", help="samples per gradient estimate (default: 1)")
    parser.add_argument("--estimates", type=int_at_least(2, "--estimates (N, estimates per cell)"), default=10_000,
                        metavar="N", help="independent gradient estimates per cell (default: 10000)")
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default=None,
                        help="default: cpu, plus cuda when available")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--seed", type=int, nargs="+", default=[0], metavar="S",
                        help="one or more seeds: each cell is measured once per seed (a stateful estimator's "
                             "variance depends on the state its seed led it to); default 0")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: runs/variance-<date>-<time>)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out, skipping finished cells")
    parser.add_argument("--no-report", action="store_true", help="write results only; render later with python -m reports")
    parser.add_argument("--list", action="store_true", help="print the estimators and objectives, then exit")
    add_executor_options(parser)
    return parser


def print_listing() -> None:
    import estimators
    from benchmarks.tasks import list_problems

    print("Estimators:")
    for spec in estimators.list_estimators():
        hparams = ", ".join(f"{k}={d.default!r} ({d.constraint.describe(k)})" for k, d in spec.hparam_decls.items()) or "-"
        flags = "unbiased" if spec.unbiased else "biased"
        print(f"  {spec.name:<20} {flags:<9} applies to: {spec.applies_to}  hparams: {hparams}  "
              f"f_evals/sample={spec.f_evals}{f'+{spec.f_evals_per_coordinate}/coordinate' if spec.f_evals_per_coordinate else ''}"
              f"{f' (+{spec.f_evals_per_call}/call)' if spec.f_evals_per_call else ''}"
              f"{f' (+{spec.f_evals_per_state}/state enumerated)' if spec.f_evals_per_state else ''}  min S={spec.min_samples}"
              f"{'  (reference)' if spec.is_reference else ''}")
        print(f"  {'':<20} {spec.summary}. {spec.reference}")
    print("\nObjectives:")
    default = {problem.id for problem in list_problems()}
    for problem in list_problems(["*"]):
        print(f"  {problem.id:<42} {problem.family:<12} {'' if problem.id in default else '(not in the default) '}"
              f"{problem.description}")


# Settings every cell of a folder shares; estimators, problems, temperatures, S and seeds only add cells.
RESUME_MUST_MATCH = {"n_estimates": "--estimates", "dtype": "--dtype"}


def prepare_folder(args):
    from benchmarks.cli_common import UsageError, check_same_threads
    from benchmarks.results import RunFolder
    from benchmarks.run_lock import LOCK_FILES

    out = args.out or Path("runs") / time.strftime("variance-%Y%m%d-%H%M%S")
    folder = RunFolder(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; name a folder")
    folder.check_unlocked()  # a driver is running it: say so, not "pass --resume"
    if folder.holds_run() and not args.resume:
        meta = folder.read_meta()
        done = len(folder.rows) + folder.unabsorbed_parts()  # a stopped driver may have left part files
        raise UsageError(f"{out} already holds a run (started {meta.get('started', '?')}, {done} cells "
                         "done); pass --resume to continue it, or choose another --out")
    if out.exists() and any(f.name not in LOCK_FILES for f in out.iterdir()) and not folder.holds_run():
        raise UsageError(f"{out} is not empty and holds no gradbench run; choose an empty or new --out")
    if args.resume and folder.holds_run():
        meta = folder.read_meta()
        check_same_threads(meta, args, out)
        for key, option in RESUME_MUST_MATCH.items():
            if key in meta and meta[key] != getattr(args, option.strip("-")):
                raise UsageError(f"{out} was run with {option} {meta[key]}, not {getattr(args, option.strip('-'))}; "
                                 f"resume with {option} {meta[key]}, or start another run with another --out")
    return folder


def main(argv: list[str] | None = None) -> int:
    argv_used = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv_used)  # before torch is imported: a typo comes back at once
    from benchmarks.cli_common import UsageError, check_run_options, import_heavy_modules, import_plugins

    from benchmarks.executors import ExecutorError, make_executor

    try:
        check_run_options(args, "variance")
        import_plugins(args.imports)
        if args.list:
            print_listing()
            return 0
        # A local pool starts here, so that its workers import torch while this process does the same.
        executor = make_executor(args.executor, args.workers, args.ray_address, args.threads)
        import_heavy_modules()  # after the pool's or Ray's start, which import them meanwhile
    except (UsageError, ExecutorError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    import estimators
    from benchmarks.cli_common import resolve_devices, unsupported_lines, unsupported_message
    from benchmarks.harness import VarianceUnit, enumerate_cells
    from benchmarks.hparam_grid import HParamUsageError, check_sweeps
    from benchmarks.results import CorruptRunError, RunLockedError
    from benchmarks.sweep import run_loop
    from benchmarks.tasks import InvalidPointError, UnknownProblemError, list_problems

    try:
        specs = estimators.list_estimators(args.estimators, include_reference=bool(args.estimators))
        check_sweeps(args.hparam, specs, args.tau)
        objectives = list_problems(args.objectives)
        devices, device_note = resolve_devices(args.device)
        folder = prepare_folder(args)
        cells, skipped = enumerate_cells(specs, objectives, args.tau, args.samples, args.estimates, devices,
                                         args.dtype, args.seed, args.hparam)
    except (UsageError, CorruptRunError, RunLockedError, estimators.UnknownEstimatorError, UnknownProblemError,
            InvalidPointError, HParamUsageError, ExecutorError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.estimators:  # estimators named on purpose: say which problems they cannot serve, and who can
        for line in unsupported_lines(specs, objectives):
            print(f"left out: {line}")
    for why, count in Counter(why for _, why in skipped).items():
        print(f"left out {count} cell{'s' if count > 1 else ''}: {why}")
    if not cells:
        print("error: no (estimator, objective, S) combination can be measured: "
              + ("see the reasons above" if skipped else unsupported_message(specs, objectives)), file=sys.stderr)
        return 2
    taus = sorted({dict(cell.hparams)["tau"] for cell in cells if "tau" in dict(cell.hparams)})
    meta = folder.read_meta()
    meta.update({"kind": "variance", "seed": args.seed[0], "seeds": sorted(set(meta.get("seeds", [])) | set(args.seed)),
                 "n_estimates": args.estimates, "dtype": args.dtype,
                 "taus": sorted(set(meta.get("taus", [])) | set(taus)),
                 "samples": sorted(set(meta.get("samples", [])) | set(args.samples)),
                 "devices": sorted(set(meta.get("devices", [])) | set(devices)), "device_note": device_note,
                 "skipped": sorted(set(meta.get("skipped", [])) | {f"{what}: {why}" for what, why in skipped})})
    units = [VarianceUnit(cell, imports=tuple(args.imports)) for cell in cells]
    render = None
    if not args.no_report:
        from reports.renderers import render as render_page  # one entry for every kind of run

        render = render_page
    try:
        code = run_loop(folder=folder, units=units, done=lambda f: f.done, meta=meta, executor=executor,
                        command=["python", "-m", "benchmarks.variance", *argv_used], render=render)
    except (RunLockedError, ExecutorError, CorruptRunError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if note := nonfinite_note(folder.rows):
        print(note, file=sys.stderr)
    return code


def nonfinite_note(rows: list[dict]) -> str:
    """'note: 2 cells gave non-finite estimates, left out of their figures: ...', or ''. The report marks such
    cells (never starred or ranked), but a sweep whose estimator had turned all-nan ended with exit 0 and no
    word of it on the console (found by a tester)."""
    hit = [row for row in rows if (row.get("nonfinite") or 0) > 0]
    if not hit:
        return ""
    shown = ", ".join(f"{row['cell_id']} ({int(row['nonfinite'])} of {int(row['n_estimates'])})" for row in hit[:3])
    return (f"note: {len(hit)} cell{'s' if len(hit) > 1 else ''} gave non-finite estimates, left out of their figures "
            f"(the report marks such a cell degenerate, or lists it as left out where none was finite): "
            f"{shown}{', ...' if len(hit) > 3 else ''}")


if __name__ == "__main__":
    from benchmarks.cli_common import run_cli

    run_cli(main)
