"""`python -m benchmarks.trajectory`: optimise toy problems with each estimator, with the exact loss and
the bias and variance of fresh estimates measured along the way (the REBAR / RELAX / ARM toy figure).

    python -m benchmarks.trajectory --preset relax-fig1 --seeds 0 1 2 --workers 2
    python -m benchmarks.trajectory --preset arm-toy
    python -m benchmarks.trajectory --problems tucker-0.45 --start theta=2 --estimators reinforce disarm --steps 500

Each (problem, estimator and hyperparameters, seed) is a run of the shared run loop; its rows are the
measurement points (benchmarks.trajectory_runs). Writes results.csv, results.json, run.json and the
report (index.html with PNGs) into --out.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

# Only what parsing needs: torch and the estimators are imported once the arguments are read.
from benchmarks.cli_common import (UsageError, add_tau_options, add_executor_options, add_hparam_options, check_run_options,
                                   check_same_threads, import_heavy_modules, import_plugins, int_at_least,
                                   positive_finite)

# The papers' settings. RELAX (Grathwohl et al. 2018, Fig. 1): t = 0.499, Adam lr 0.01, one sample per
# step. ARM (Yin & Zhou 2019): p0 in {0.49, 0.499, 0.501, 0.51}; 3,000 steps (Adam at the same lr here).
PRESETS = {
    "relax-fig1": {"problems": ["tucker-0.499"], "estimators": ["reinforce", "rebar", "relax"], "steps": 10_000,
                   "samples": 1, "optimizer": "adam", "lr": 0.01, "measure_every": 100},
    "arm-toy": {"problems": ["tucker-0.49", "tucker-0.499", "tucker-0.501", "tucker-0.51"],
                "estimators": ["reinforce", "rebar", "relax", "arm", "disarm"], "steps": 3_000, "samples": 1,
                "optimizer": "adam", "lr": 0.01, "measure_every": 100},
}
DEFAULTS = {"problems": ["tucker-0.499"], "estimators": None, "steps": 1_000, "samples": 1, "optimizer": "adam",
            "lr": 0.01, "measure_every": None, "estimates": 1_000}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.trajectory", description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), help="a paper's setting (options given beside it win): "
                        + "; ".join(f"{k}: {v['problems']} with {v['estimators']}, {v['steps']} steps"
                                    for k, v in PRESETS.items()))
    parser.add_argument("--problems", nargs="+", metavar="ID", help="toy problems (ids or globs; default tucker-0.499)")
    parser.add_argument("--start", metavar="POINT", help="start every problem here instead of its symmetric point, "
                        "e.g. theta=2 (the family's point keys, as in problem ids)")
    parser.add_argument("--estimators", nargs="+", metavar="NAME", help="names or globs (default: all that apply)")
    add_tau_options(parser, "temperatures (default: each estimator's declared default)")
    add_hparam_options(parser)
    parser.add_argument("--samples", type=int_at_least(1, "--samples"), help="samples per gradient estimate (default 1)")
    parser.add_argument("--steps", type=int_at_least(1, "--steps"), help="optimisation steps (default 1000)")
    parser.add_argument("--optimizer", choices=["adam", "sgd"], help="default adam, as in the papers")
    parser.add_argument("--lr", type=positive_finite, help="learning rate (default 0.01, the papers')")
    parser.add_argument("--seed", "--seeds", dest="seeds", type=int, nargs="+", default=[0], metavar="S",
                        help="one run per seed (--seed, as in the other CLIs, or --seeds)")
    parser.add_argument("--measure-every", type=int_at_least(1, "--measure-every"), metavar="M",
                        help="measure every M steps (default: steps / 20), and at the start and the end")
    parser.add_argument("--estimates", type=int_at_least(2, "--estimates"), metavar="N",
                        help="fresh gradient estimates at each measurement point (default 1000)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--out", type=Path, help="output folder (default runs/trajectory-<date>-<time>)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out: finished runs are skipped")
    parser.add_argument("--no-report", action="store_true")
    add_executor_options(parser)
    return parser


def settled(args) -> argparse.Namespace:
    """The options with the preset's values where none was given, then the defaults."""
    preset = dict(PRESETS.get(args.preset, {}))
    if args.steps is not None and args.steps != preset.get("steps"):
        preset.pop("measure_every", None)  # the preset's grid fits its own length; another length gets steps / 20
    for key, default in DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, preset.get(key, default))
    if args.measure_every is None:
        args.measure_every = max(1, args.steps // 20)
    return args


def main(argv: list[str] | None = None) -> int:
    argv_used = sys.argv[1:] if argv is None else list(argv)
    args = settled(build_parser().parse_args(argv_used))
    from benchmarks.executors import ExecutorError, make_executor

    try:
        check_run_options(args, "trajectory")
        import_plugins(args.imports)
        executor = make_executor(args.executor, args.workers, args.ray_address, args.threads)
        import_heavy_modules()  # after the pool's or Ray's start, which import them meanwhile
    except (UsageError, ExecutorError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    import estimators
    from benchmarks.cli_common import resolve_devices, unsupported_lines, unsupported_message
    from benchmarks.hparam_grid import HParamUsageError, check_sweeps, settings_for
    from benchmarks.results import CorruptRunError, RunFolder, RunLockedError
    from benchmarks.sweep import run_loop
    from benchmarks.tasks import ClosedFormProblem, InvalidPointError, UnknownProblemError, get_problem, list_problems
    from benchmarks.trajectory_runs import TrajectoryRun, TrajectorySettings

    try:
        resolve_devices(args.device, all_allowed=False)
        problems = list_problems(args.problems)
        if args.start:
            problems = [get_problem(f"{problem.id.split('@')[0]}@{args.start}") for problem in problems]
        closed = [p for p in problems if isinstance(p, ClosedFormProblem)]
        if not closed:
            raise UsageError("no chosen problem has a closed-form loss; trajectories need one (the toys do)")
        specs = estimators.list_estimators(args.estimators, include_reference=bool(args.estimators))
        check_sweeps(args.hparam, specs, args.tau)
        out = args.out or Path("runs") / time.strftime("trajectory-%Y%m%d-%H%M%S")
        folder = RunFolder(out)
        folder.check_unlocked()  # a driver is running it: say so, not "pass --resume"
        if folder.holds_run() and not args.resume:
            raise UsageError(f"{out} already holds a run; pass --resume to continue it, or choose another --out")
        saved = folder.read_meta()
        check_same_threads(saved, args, out)
        for key in ("steps", "samples", "optimizer", "lr", "measure_every", "n_estimates"):
            given = args.estimates if key == "n_estimates" else getattr(args, key)
            if args.resume and key in saved and saved[key] != given:
                option = "--estimates" if key == "n_estimates" else "--" + key.replace("_", "-")
                raise UsageError(f"{out} was run with {option} {saved[key]}, not {given}; resume with the same "
                                 "settings, or start another run with another --out")
        grids = {spec.name: settings_for(spec, args.hparam, args.tau) for spec in specs}
    except (UsageError, CorruptRunError, RunLockedError, estimators.UnknownEstimatorError, UnknownProblemError,
            InvalidPointError, HParamUsageError, ExecutorError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    settings = TrajectorySettings(args.steps, args.samples, args.optimizer, args.lr, args.measure_every,
                                  args.estimates, args.device)
    runs, left_out = [], {}
    if args.estimators:  # estimators named on purpose: say which problems they cannot serve, and who can
        left_out.update(dict.fromkeys(unsupported_lines(specs, closed)))
    for problem in closed:
        for spec in specs:
            if not spec.supports(problem.distribution_type):
                continue
            if args.samples < spec.min_samples:
                left_out[f"{spec.name} needs S >= {spec.min_samples} (add --samples {spec.min_samples})"] = None
                continue
            combinations, refused = grids[spec.name]
            left_out.update(dict.fromkeys(refused))
            runs += [TrajectoryRun(problem.id, spec.name, tuple(sorted(hparams.items())), seed, settings,
                                   tuple(args.imports)) for hparams in combinations for seed in args.seeds]
    for why in left_out:
        print(f"left out: {why}")
    if not runs:
        print("error: no (problem, estimator) pair can be run: "
              + ("see the reasons above" if left_out else unsupported_message(specs, closed)), file=sys.stderr)
        return 2
    meta = folder.read_meta()
    meta.update({"kind": "trajectory", "preset": args.preset, "steps": args.steps, "samples": args.samples,
                 "optimizer": args.optimizer, "lr": args.lr, "measure_every": args.measure_every,
                 "n_estimates": args.estimates, "seeds": sorted(set(meta.get("seeds", [])) | set(args.seeds))})

    def done(folder) -> set[str]:
        """Runs that reached the last step, and runs that stopped (non-finite values, outside the support):
        rerunning one gives the same stop, since the same seed gives the same trajectory."""
        finished = {row["run_id"] for row in folder.rows if row.get("step") == args.steps}
        return finished | {line.split(": ", 1)[0] for line in folder.read_meta().get("problems", [])
                           if ": stopped at step" in line}

    render = None
    if not args.no_report:
        from reports.renderers import render as render_page  # one entry for every kind of run

        render = render_page
    try:
        return run_loop(folder=folder, units=runs, done=done, meta=meta, executor=executor,
                        command=["python", "-m", "benchmarks.trajectory", *argv_used], step_name="step",
                        label=lambda run: f"{run.problem} {run.estimator} seed={run.seed}", render=render)
    except (RunLockedError, ExecutorError, CorruptRunError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    from benchmarks.cli_common import run_cli

    run_cli(main)
