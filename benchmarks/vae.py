"""`python -m benchmarks.vae`: train VAEs with every compatible estimator and measure them on the way.

    python -m benchmarks.vae --latent categorical:20x10 --estimators gumbel_softmax reinforce straight_through --steps 2000
    python -m benchmarks.vae --dataset binarized_mnist --data-dir DIR --latent categorical:20x10 --epochs 100

For each latent, KL form, estimator, tau, seed and device a model is trained with Adam; at every
evaluation point it records the test -ELBO of the discrete model (exact samples, analytic KL), the
encoder's gradient variance and bias at frozen parameters on a fixed validation minibatch
(a gradient problem of benchmarks.tasks.vae, measured by the same harness as the toys), and the time per step; at the end an importance-weighted bound with
--iw-samples samples. A checkpoint is written at every evaluation point, and --resume continues an
interrupted run from it.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import shlex
import sys
import time
from pathlib import Path

import pandas as pd
import torch
from tqdm import tqdm

import estimators
from benchmarks.checkpoints import CheckpointError, checkpoint_path, load_checkpoint, save_checkpoint
from benchmarks.cli_common import UsageError, add_hparam_options, import_plugins, int_at_least, positive_finite, \
    resolve_devices
from benchmarks.hparam_grid import HParamUsageError, check_sweeps, settings_for
from benchmarks.data import DataError, load_dataset
from benchmarks.machine import machine_info, now
from benchmarks.results import CorruptRunError, RunFolder
from benchmarks.measurement import measure
from benchmarks.tasks.vae import vae_problem
from benchmarks.vae_model import VAE, Latent, LatentSpecError


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
    parser.add_argument("--tau", type=positive_finite, nargs="+", default=None,
                        help="initial temperatures (default: each estimator's declared default)")
    add_hparam_options(parser)
    parser.add_argument("--anneal", type=float, default=0.0, metavar="R",
                        help="tau = max(tau_min, tau0 exp(-R step)), updated every --anneal-every steps (Jang et al.)")
    parser.add_argument("--anneal-every", type=int_at_least(1, "--anneal-every"), default=1000, metavar="M")
    parser.add_argument("--tau-min", type=positive_finite, default=0.5)
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
    parser.add_argument("--grad-estimates", type=int_at_least(0, "--grad-estimates"), default=1000,
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
    return parser


def run_key(latent: str, kl: str, estimator: str, tau0, seed: int, device: str, variant: str = "") -> str:
    """A run's name; `variant` lists its other hyperparameters where they differ from the declared
    defaults (--hparam rebar:eta=0.5 gives 'eta=0.5'), so earlier runs keep their keys."""
    tau0 = None if tau0 is None or (isinstance(tau0, float) and math.isnan(tau0)) else float(tau0)
    variant = "" if not isinstance(variant, str) else variant
    return f"{latent}|{kl}|{estimator}|tau0={tau0}|seed={seed}|{device}" + (f"|{variant}" if variant else "")


def finished_runs(rows: list[dict]) -> set[str]:
    """Keys of the runs whose final row (the one with the importance-weighted bound) is written; built
    from the row's own columns, which rows written before run keys existed have too."""
    return {run_key(r["latent"], r.get("kl", "analytic"), r["estimator"], r.get("tau0"), r["seed"],
                    r.get("device", "cpu"), r.get("variant", ""))
            for r in rows if r.get("iw_samples") is not None and not pd.isna(r.get("iw_samples"))}


# Settings every run of a folder shares; --resume refuses to mix runs made with different ones. The
# latents, KL forms, estimators, temperatures and seeds may change: they only name more runs.
RESUME_MUST_MATCH = ("dataset", "binarize", "hidden", "epochs", "steps", "batch_size", "lr", "samples", "anneal",
                     "anneal_every", "tau_min", "evals", "grad_estimates", "iw_samples", "iw_points")


def check_resumable(folder: RunFolder, args) -> None:
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


@dataclasses.dataclass(frozen=True)
class Run:
    """One training run: everything that tells two runs of a sweep apart."""
    latent: Latent
    kl: str
    spec: estimators.EstimatorSpec
    tau0: float | None
    seed: int
    device: str
    hparams: tuple = ()  # every hyperparameter the estimator is built with (tau: its starting value)

    @property
    def variant(self) -> str:
        """The hyperparameters other than tau that differ from their declared defaults, as 'eta=0.5'."""
        defaults = self.spec.hparams
        return " ".join(f"{k}={v:g}" if isinstance(v, (int, float)) else f"{k}={v}"
                        for k, v in self.hparams if k != "tau" and v != defaults.get(k))

    @property
    def key(self) -> str:
        return run_key(str(self.latent), self.kl, self.spec.name, self.tau0, self.seed, self.device, self.variant)

    def __str__(self) -> str:
        tau = "" if self.tau0 is None else f" tau={self.tau0:g}"
        variant = f" {self.variant}" if self.variant else ""
        return f"{self.latent} {self.spec.name}{tau}{variant} kl={self.kl} seed={self.seed} {self.device}"


def temperature(tau0: float | None, step: int, args) -> float | None:
    if tau0 is None or args.anneal <= 0:
        return tau0
    return max(args.tau_min, tau0 * math.exp(-args.anneal * (step // args.anneal_every) * args.anneal_every))


def iw_subset(test_size: int, points: int) -> torch.Tensor:
    """Indices of the test points of the importance-weighted bound: a random subset, the same for every run.

    Not the first points: test sets can be ordered (binarized MNIST's first 2,000 images measured a
    -ELBO 22 nats below the whole set's)."""
    return torch.randperm(test_size, generator=torch.Generator().manual_seed(20170101))[:points]


def epoch_batches(data, args, seed: int, epoch: int, device: str) -> torch.Tensor:
    """The shuffled (and, for intensity data, freshly binarized) training set of one epoch.

    Drawn from a generator seeded by (seed, epoch), so a resumed run sees the same data as an
    uninterrupted one."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(len(data.train), generator=generator)
    return data.binarize(data.train, args.binarize, generator=generator)[order].to(device)


GRADIENT_COLUMNS = ("variance_trace", "variance_trace_lo", "variance_trace_hi", "bias_norm", "bias_norm_lo",
                    "bias_norm_hi", "mse", "mse_lo", "mse_hi", "cosine", "snr", "bias_significant", "reference",
                    "reference_se", "nonfinite")


def encoder_gradient_row(estimator, spec, problem, hparams: dict, n_estimates: int, n_samples: int, seed: int) -> dict:
    """The encoder-gradient figures at this evaluation point, measured through the same harness and
    gradient_metrics as the toys, as `grad_*` columns. A stateful estimator is measured with the state it
    learned in training, on a copy, so that measuring does not change the training run."""
    row = measure(copy.deepcopy(estimator), problem, spec=spec, n_estimates=n_estimates, n_samples=n_samples,
                  hparams=hparams, device=problem.x.device.type, dtype=problem.x.dtype, seed=seed, warmup=False,
                  timing=False)
    return {"grad_n_estimates": row["n_finite"],
            **{f"grad_{name}": row.get(name, float("nan")) for name in GRADIENT_COLUMNS}}


def train_one(run: Run, data, args, folder, progress) -> str:
    """Train one model; every evaluation point becomes a row. Returns 'ok' or why it stopped."""
    spec, tau0, seed, latent, device, kl = run.spec, run.tau0, run.seed, run.latent, run.device, run.kl
    samples = max(args.samples, spec.min_samples)  # e.g. leave-one-out needs two; the report shows S
    torch.manual_seed(seed)
    model = VAE(data.pixels, latent, tuple(args.hidden)).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    # Built with its starting hyperparameters; a stateless one gets the scheduled tau on every call, a
    # stateful one keeps what it was built with (RELAX learns its tau from there: spec.learns).
    estimator = spec.make(**dict(run.hparams))
    scheduled = tau0 is not None and not spec.stateful
    batches_per_epoch = math.ceil(len(data.train) / args.batch_size)
    total = args.steps or args.epochs * batches_per_epoch
    eval_steps = sorted({max(1, round(total * (i + 1) / args.evals)) for i in range(args.evals)})
    probe = data.binarize(data.valid[:args.batch_size], "threshold").to(device)  # fixed minibatch
    test_x = data.binarize(data.test, "threshold").to(device)
    iw_x = test_x[iw_subset(len(test_x), args.iw_points).to(device)] if args.iw_points else test_x
    # seconds: the training steps only (what the estimators cost); wall: since the run began, with the
    # evaluations, checkpoints and data shuffles in between.
    step, seconds, wall_before, epoch_data = 0, 0.0, 0.0, None
    saved = load_checkpoint(checkpoint_path(folder.path, run.key), device) if args.resume else None
    if saved is not None:
        try:
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            if spec.stateful:
                estimator.load_state_dict(saved["estimator"])
            step, seconds, wall_before = saved["step"], saved["seconds"], saved.get("wall_seconds", 0.0)
            torch.set_rng_state(saved["rng"])
            if device == "cuda":
                torch.cuda.set_rng_state(saved["cuda_rng"])
        except (KeyError, RuntimeError, ValueError, TypeError) as error:
            raise CheckpointError(f"checkpoint {checkpoint_path(folder.path, run.key)} does not fit this run "
                                  f"({type(error).__name__}: {error}); delete it to restart that run from step 0, "
                                  "or pass another --out") from None
        progress.update(step)
    wall_start = time.perf_counter()
    while step < total:
        if epoch_data is None or step % batches_per_epoch == 0:
            epoch_data = epoch_batches(data, args, seed, step // batches_per_epoch, device)
        batch = epoch_data[(step % batches_per_epoch) * args.batch_size:][:args.batch_size]
        tau = temperature(tau0, step, args) if scheduled else tau0
        per_call = {"tau": tau} if scheduled else {}
        start = time.perf_counter()
        loss, value = model.loss(batch, estimator, per_call, samples, kl)
        if "tau" in spec.learns:
            tau = estimator.tau  # the temperature this step used, learned from tau0 (RELAX)
        if not math.isfinite(value):
            return f"stopped at step {step}: the loss is not finite ({value}); the other runs go on"
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()
        seconds += time.perf_counter() - start
        step += 1
        progress.update(1)
        if step % 20 == 0 or step == total:  # a redraw per step would cost more than a small step
            progress.set_postfix_str(f"{run} -ELBO {value:.2f}", refresh=False)
        if step in eval_steps:
            row = {"estimator": spec.name, "tau0": tau0, "tau": tau, "variant": run.variant,
                   "hparams": json.dumps({**dict(run.hparams), **({"tau": tau} if tau is not None else {})},
                                         sort_keys=True),
                   "seed": seed, "step": step,
                   "epoch": step / batches_per_epoch, "train_seconds": seconds,
                   "wall_seconds": wall_before + time.perf_counter() - wall_start, "time_per_step_s": seconds / step,
                   "steps_per_s": step / seconds, "train_neg_elbo": value,
                   "test_neg_elbo": float(model.negative_elbo(test_x).mean()),
                   "dataset": data.name, "latent": str(latent), "kl": kl, "n_samples": samples,
                   "batch_size": args.batch_size, "lr": args.lr, "device": device, "status": "ok"}
            if args.grad_estimates:
                problem = vae_problem(model, probe, kl, max(100, args.grad_estimates // 5), step, seed)
                row.update(encoder_gradient_row(estimator, spec, problem, per_call, args.grad_estimates, samples,
                                                seed=seed * 1_000_003 + step))
            if step == eval_steps[-1]:
                bound = model.importance_weighted_bound(iw_x, args.iw_samples)
                row["test_iw_bound"] = float(bound.mean())
                row["test_iw_bound_se"] = float(bound.std() / math.sqrt(len(bound)))
                row["iw_samples"], row["iw_points"] = args.iw_samples, len(bound)
            row["run_id"], row["cell_id"] = run.key, f"{run.key}|step={step}"
            folder.add(row)
            save_checkpoint(checkpoint_path(folder.path, run.key), {
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "estimator": estimator.state_dict() if spec.stateful else None, "step": step, "seconds": seconds,
                "wall_seconds": wall_before + time.perf_counter() - wall_start,
                "rng": torch.get_rng_state(), "cuda_rng": torch.cuda.get_rng_state() if device == "cuda" else None})
    return "ok"


def main(argv: list[str] | None = None) -> int:
    argv_used = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv_used)
    try:
        import_plugins(args.imports)
        if args.resume and args.out is None:
            raise UsageError("--resume needs --out DIR, the folder of the run to continue")
        if args.epochs and args.steps:
            raise UsageError("give --epochs or --steps, not both")
        if not (args.epochs or args.steps):
            args.steps = 1000
        latents = [Latent.parse(text) for text in args.latent]
        chosen = estimators.list_estimators(args.estimators, include_reference=False)
        check_sweeps(args.hparam, chosen)
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
        if folder.holds_run() and not args.resume:
            raise UsageError(f"{out} already holds a run; pass --resume to continue it, or choose another --out")
        if args.resume:
            check_resumable(folder, args)
    except (UsageError, LatentSpecError, DataError, CorruptRunError, estimators.UnknownEstimatorError,
            HParamUsageError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    meta = folder.read_meta()
    meta.setdefault("started", now())
    meta.setdefault("commands", []).append(shlex.join(["python", "-m", "benchmarks.vae", *argv_used]))
    meta.update(machine_info())
    def union(key, new):  # a resumed folder lists every latent, KL form and seed it holds
        return list(dict.fromkeys([*meta.get(key, []), *new]))

    meta.update({"kind": "vae", "dataset": data.name, "data_source": data.source,
                 "latent": union("latent", args.latent), "kl": union("kl", args.kl), "seeds": union("seeds", args.seed),
                 "hidden": args.hidden, "batch_size": args.batch_size, "lr": args.lr, "anneal": args.anneal,
                 "tau_min": args.tau_min, "settings": {key: getattr(args, key) for key in RESUME_MUST_MATCH}})
    folder.write_meta(meta)
    runs, left_out = [], {}
    for spec in chosen:
        # The same declarations as every call: a value the estimator cannot take (ReinMax's tau >= 1,
        # gumbel_rao's k >= 1) leaves its runs out before anything is trained, with the reason said once.
        try:
            settings, refused = settings_for(spec, args.hparam, args.tau)
        except HParamUsageError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        left_out.update(dict.fromkeys(refused))
        for hparams in settings:
            runs += [Run(latent, kl, spec, hparams.get("tau"), seed, device, tuple(sorted(hparams.items())))
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
    finished = finished_runs(folder.rows)
    todo = [run for run in runs if run.key not in finished]
    steps = args.steps or args.epochs * math.ceil(len(data.train) / args.batch_size)
    problems, unreadable = [], 0
    try:
        with tqdm(total=steps * len(todo), desc="training", unit="step", dynamic_ncols=True) as progress:
            for run in todo:
                try:
                    status = train_one(run, data, args, folder, progress)
                except estimators.NotApplicableError as reason:
                    status = str(reason)
                except CheckpointError as reason:  # a run that could not resume: an error, not a result
                    status, unreadable = str(reason), unreadable + 1
                if status != "ok":
                    problems.append(f"{run}: {status}")
                    print(f"\n{problems[-1]}", file=sys.stderr)
    except KeyboardInterrupt:
        print(f"\ninterrupted: finished evaluation points are kept in {folder.path}; continue with "
              f"--out {folder.path} --resume", file=sys.stderr)
        return 130
    retried = {str(run) for run in todo}
    meta["problems"] = [line for line in meta.get("problems", []) if line.split(": ")[0] not in retried] + problems
    meta["finished"] = now()
    folder.write_meta(meta)
    if not folder.rows:
        print("error: no run produced a result", file=sys.stderr)
        return 2
    print(f"{len(folder.rows)} evaluation points in {folder.path / 'results.csv'}")
    if not args.no_report:
        from reports.vae import render_vae_report

        print(f"report: {render_vae_report(folder.path).resolve().as_uri()}")
    if unreadable:
        print(f"error: {unreadable} run{'s' if unreadable > 1 else ''} could not resume from {'their' if unreadable > 1 else 'its'} "
              "checkpoint (above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
