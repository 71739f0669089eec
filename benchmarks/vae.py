"""`python -m benchmarks.vae`: train VAEs with every compatible estimator and measure them on the way.

    python -m benchmarks.vae --latent categorical:20x10 --estimators gumbel_softmax reinforce straight_through --steps 2000
    python -m benchmarks.vae --dataset binarized_mnist --data-dir DIR --latent categorical:20x10 --epochs 100

For each latent, KL form, estimator, tau, seed and device a model is trained with Adam; at every
evaluation point it records the test -ELBO of the discrete model (exact samples, analytic KL), the
encoder's gradient variance and bias at frozen parameters on a fixed validation minibatch
(a gradient problem of benchmarks.tasks.vae, measured by the same harness as the toys), the time per step
(with the load average, CPU seconds and cores of the steps so far: benchmarks.timing.TrainingClock), the relaxed and the hard training -ELBO on the same batches (vae_training.relaxed_and_hard_neg_elbo), and
what the model draws (reconstructions and prior samples, saved as arrays: benchmarks.vae_pictures); at the
end an importance-weighted bound with --iw-samples samples. A checkpoint is written at every evaluation
point, and --resume continues an interrupted run from it.

Runs are units of work for the one run loop (benchmarks.sweep): in this process by default, on a local
pool with --workers N, or on Ray with --executor ray.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

# Only what parsing needs: torch and the estimators are imported once the arguments are read.
from benchmarks.cli_common import (UsageError, add_tau_options, add_executor_options, add_hparam_options, check_run_options,
                                   check_same_threads, import_heavy_modules, import_plugins, int_at_least,
                                   non_negative_finite, positive_finite, zero_or_at_least)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.vae", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="digits", help="digits (embedded, default), mnist or binarized_mnist")
    parser.add_argument("--data-dir", type=Path, help="folder with the MNIST files (or set GRADBENCH_DATA)")
    parser.add_argument("--binarize", choices=["dynamic", "threshold"], default="dynamic",
                        help="for intensity datasets: a fresh Bernoulli draw per epoch, or > 0.5")
    parser.add_argument("--latent", nargs="+", default=["categorical:20x10"],
                        help="one or more of gaussian:D, bernoulli:D, categorical:LxK (a table and curves each)")
    parser.add_argument("--hidden", type=int_at_least(1, "--hidden"), nargs="+", default=[512, 256])
    parser.add_argument("--estimators", nargs="+", metavar="NAME", help="names or globs (default: all compatible)")
    add_tau_options(parser, "initial temperatures (default: each estimator's declared default)")
    add_hparam_options(parser)
    parser.add_argument("--anneal", type=non_negative_finite, default=0.0, metavar="R",
                        help="tau = max(tau_min, tau0 exp(-R step)), updated every --anneal-every steps (Jang et al.)")
    parser.add_argument("--anneal-every", type=int_at_least(1, "--anneal-every"), default=1000, metavar="M",
                        help="steps between temperature updates (default 1000, Jang et al.'s)")
    parser.add_argument("--tau-min", type=positive_finite, default=0.5,
                        help="the lowest temperature annealing reaches (default 0.5, Jang et al.'s)")
    parser.add_argument("--epochs", type=int_at_least(1, "--epochs"))
    parser.add_argument("--steps", type=int_at_least(1, "--steps"))
    parser.add_argument("--batch-size", type=int_at_least(2, "--batch-size"), default=100)
    parser.add_argument("--lr", type=positive_finite, default=1e-3)
    parser.add_argument("--samples", type=int_at_least(1, "--samples"), default=1,
                        help="samples per data point and step (raised to an estimator's minimum, e.g. 2 for "
                             "leave-one-out)")
    parser.add_argument("--kl", choices=["analytic", "sampled"], nargs="+", default=["analytic"],
                        help="KL(q||p) in closed form (SGVB B) or estimated from the samples (SGVB A); "
                             "give both to compare their gradient variance")
    parser.add_argument("--evals", type=int_at_least(1, "--evals"), default=5, help="evaluation points (default 5)")
    parser.add_argument("--grad-estimates", type=zero_or_at_least(2, "--grad-estimates"), default=1000,
                        help="N encoder-gradient estimates per evaluation point (0: skip)")
    parser.add_argument("--iw-samples", type=int_at_least(1, "--iw-samples"), default=100,
                        help="samples of the final importance-weighted bound (Jang et al. report 1000)")
    parser.add_argument("--iw-points", type=int_at_least(2, "--iw-points"), default=None,
                        help="a random subset of this many test points (the same for every run) for the "
                             "importance-weighted bound (default: the whole test set)")
    parser.add_argument("--seed", type=int, nargs="+", default=[0])
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="cpu")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--resume", action="store_true",
                        help="skip finished runs and continue unfinished ones from their last evaluation point")
    parser.add_argument("--no-report", action="store_true")
    add_executor_options(parser)
    return parser


# Settings every run of a folder shares; --resume refuses to mix runs made with different ones. The
# latents, KL forms, estimators, temperatures and seeds may change: they only name more runs.
RESUME_MUST_MATCH = ("dataset", "binarize", "hidden", "epochs", "steps", "batch_size", "lr", "samples", "anneal",
                     "anneal_every", "tau_min", "evals", "grad_estimates", "iw_samples", "iw_points")


def check_resumable(folder, args) -> None:
    meta = folder.read_meta()
    if "settings" not in meta:
        raise UsageError(f"{folder.path} was written by an older gradbench that kept no settings to check a resume "
                         "against; start a new run with another --out")
    def shown(value) -> str:
        return "(not given)" if value is None else " ".join(map(str, value)) if isinstance(value, list) else str(value)

    for key, saved in meta["settings"].items():
        if key in RESUME_MUST_MATCH and saved != getattr(args, key):
            option = "--" + key.replace("_", "-")
            raise UsageError(f"{folder.path} was run with {option} {shown(saved)}, not {shown(getattr(args, key))}; "
                             f"resume with the same settings, or start another run with another --out")



def main(argv: list[str] | None = None) -> int:
    argv_used = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv_used)  # before torch is imported: a typo comes back at once
    from benchmarks.executors import ExecutorError, make_executor

    try:
        check_run_options(args, "vae")
        import_plugins(args.imports)
        if args.epochs and args.steps:
            raise UsageError("give --epochs or --steps, not both")
        # A local pool starts here, so that its workers import torch while this process does the same.
        executor = make_executor(args.executor, args.workers, args.ray_address, args.threads)
        import_heavy_modules()  # after the pool's or Ray's start, which import them meanwhile
    except (UsageError, ExecutorError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not (args.epochs or args.steps):
        args.steps = 1000
    import estimators
    from benchmarks.cli_common import resolve_devices
    from benchmarks.data import DataError, load_dataset
    from benchmarks.hparam_grid import HParamUsageError, check_sweeps, settings_for
    from benchmarks.results import CorruptRunError, RunFolder, RunLockedError
    from benchmarks.sweep import run_loop
    from benchmarks.vae_model import Latent, LatentSpecError
    from benchmarks.vae_training import Run, Settings, finished_runs

    try:
        latents = [Latent.parse(text) for text in args.latent]
        chosen = estimators.list_estimators(args.estimators, include_reference=False)
        check_sweeps(args.hparam, chosen, args.tau)
        for latent in latents:
            if not any(s.supports(latent.family) for s in chosen):
                able = [s.name for s in estimators.list_estimators(include_reference=False)
                        if s.supports(latent.family)]
                raise UsageError(f"no chosen estimator supports the {latent.kind} latent ({latent.family}); "
                                 f"these do: {', '.join(able)}")
        devices, _ = resolve_devices(args.device)
        data = load_dataset(args.dataset, args.data_dir)
        out = args.out or Path("runs") / time.strftime("vae-%Y%m%d-%H%M%S")
        folder = RunFolder(out)
        folder.check_unlocked()  # a driver is running it: say so, not "pass --resume"
        if folder.holds_run() and not args.resume:
            raise UsageError(f"{out} already holds a run; pass --resume to continue it, or choose another --out")
        if args.resume:
            check_resumable(folder, args)
            check_same_threads(folder.read_meta(), args, out)
        grids = {spec.name: settings_for(spec, args.hparam, args.tau) for spec in chosen}
    except (UsageError, LatentSpecError, DataError, CorruptRunError, RunLockedError, estimators.UnknownEstimatorError,
            HParamUsageError, ExecutorError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    total_steps = args.steps or args.epochs * math.ceil(len(data.train) / args.batch_size)
    if args.anneal > 0 and total_steps <= args.anneal_every:
        # Found trying the README: --anneal 0.01 on a 200-step run left tau at its start on every row.
        print(f"note: --anneal {args.anneal:g} changes tau every {args.anneal_every} steps (--anneal-every), and "
              f"these runs take {total_steps}: tau stays at its start; pass a smaller --anneal-every")
    settings = Settings.from_args(args, total_steps)
    runs, left_out = [], {}
    for spec in chosen:
        # The same declarations as every call: a value the estimator cannot take (ReinMax's tau >= 1,
        # gumbel_rao's k >= 1) leaves its runs out before anything is trained, with the reason said once.
        combinations, refused = grids[spec.name]
        left_out.update(dict.fromkeys(refused))
        for hparams in combinations:
            runs += [Run(latent, kl, spec.name, hparams.get("tau"), seed, device, tuple(sorted(hparams.items())),
                         settings, tuple(args.imports))
                     for latent in latents if spec.supports(latent.family)
                     for kl in args.kl for seed in args.seed for device in devices]
        if spec.takes_tau and spec.stateful and args.anneal > 0:
            print(f"note: {spec.name} is stateful and {'learns' if 'tau' in spec.learns else 'keeps'} its temperature "
                  f"from its starting value; --anneal does not apply to it (its rows record the tau it used)")
    for why in left_out:
        print(f"left out: {why}")
    if not runs:
        print("error: no run can be trained (reasons above)", file=sys.stderr)
        return 2
    meta = folder.read_meta()

    def union(key, new):  # a resumed folder lists every latent, KL form and seed it holds
        return list(dict.fromkeys([*meta.get(key, []), *new]))

    meta.update({"kind": "vae", "dataset": data.name, "data_source": data.source,
                 "latent": union("latent", args.latent), "kl": union("kl", args.kl), "seeds": union("seeds", args.seed),
                 "hidden": args.hidden, "batch_size": args.batch_size, "lr": args.lr, "anneal": args.anneal,
                 "tau_min": args.tau_min, "settings": {key: getattr(args, key) for key in RESUME_MUST_MATCH}})
    render = None
    if not args.no_report:
        from reports.renderers import render as render_page  # one entry for every kind of run

        render = render_page
    try:
        return run_loop(folder=folder, units=runs, done=lambda f: finished_runs(f.rows) | stopped_runs(f), meta=meta,
                        executor=executor,
                        command=["python", "-m", "benchmarks.vae", *argv_used], step_name="step",
                        label=lambda run: str(run), render=render, described=lambda key: key)
    except (RunLockedError, ExecutorError, CorruptRunError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def stopped_runs(folder) -> set[str]:
    """Runs an earlier invocation stopped on a non-finite loss: the same seed would stop them again."""
    return {line.split(": ", 1)[0] for line in folder.read_meta().get("problems", []) if ": stopped at step" in line}


def __getattr__(name: str):
    # The training side moved to benchmarks.vae_training (so that parsing does not import torch); its
    # names stay reachable here for code written against the old module.
    from benchmarks import vae_training

    try:
        return getattr(vae_training, name)
    except AttributeError:
        raise AttributeError(f"module 'benchmarks.vae' has no attribute {name!r}") from None


if __name__ == "__main__":
    from benchmarks.cli_common import run_cli

    run_cli(main)
