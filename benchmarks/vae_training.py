"""Training runs of the VAE task as units of work: one run per (latent, KL form, estimator and its
hyperparameters, seed, device), trained with Adam and measured at its evaluation points.

The CLI (`python -m benchmarks.vae`, benchmarks/vae.py) builds the runs and hands them to the run
loop (benchmarks.sweep), which runs them in this process, on a local pool or on Ray. See vae.py for
what a run records.
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import json
import math
import time
from pathlib import Path

import pandas as pd
import torch

import estimators
from benchmarks.checkpoints import CheckpointError, checkpoint_path, load_checkpoint, save_checkpoint, saved_step
from benchmarks.data import load_dataset
from benchmarks.measurement import measure
from benchmarks.tasks.protocol import forked_rng
from benchmarks.tasks.vae import vae_problem
from benchmarks.timing import TrainingClock
from benchmarks.units import steps_done
from benchmarks.vae_model import VAE, Latent
from benchmarks.vae_pictures import draw_pictures, picture_indices, pictures_path, save_pictures


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


@dataclasses.dataclass(frozen=True)
class Settings:
    """What every run of a grid shares (the parsed options a run needs), frozen so that a run can be
    pickled to a worker process or a Ray node instead of carrying the argparse namespace."""
    dataset: str
    data_dir: str | None
    binarize: str
    hidden: tuple
    total_steps: int
    batch_size: int
    lr: float
    samples: int
    anneal: float
    anneal_every: int
    tau_min: float
    evals: int
    grad_estimates: int
    iw_samples: int
    iw_points: int | None

    @classmethod
    def from_args(cls, args, total_steps: int) -> "Settings":
        return cls(args.dataset, None if args.data_dir is None else str(args.data_dir), args.binarize,
                   tuple(args.hidden), total_steps, args.batch_size, args.lr, args.samples, args.anneal,
                   args.anneal_every, args.tau_min, args.evals, args.grad_estimates, args.iw_samples, args.iw_points)


@functools.lru_cache(maxsize=2)
def cached_dataset(name: str, data_dir: str | None):
    """A worker loads the data once, however many runs it is given."""
    return load_dataset(name, None if data_dir is None else Path(data_dir))


@dataclasses.dataclass(frozen=True)
class Run:
    """One training run, a unit of work for the run loop (benchmarks.sweep): everything that tells two
    runs of a grid apart, and the settings they share. Picklable: the estimator goes by name."""
    latent: Latent
    kl: str
    estimator: str
    tau0: float | None
    seed: int
    device: str
    hparams: tuple = ()  # every hyperparameter the estimator is built with (tau: its starting value)
    settings: Settings | None = None
    imports: tuple[str, ...] = ()

    @property
    def spec(self) -> estimators.EstimatorSpec:
        return estimators.get_spec(self.estimator)

    @property
    def unit_id(self) -> str:
        return self.key

    @property
    def steps(self) -> int:
        return self.settings.total_steps

    def steps_done(self, run_folder: Path) -> int:
        """The step of this run's checkpoint in `run_folder` (0 without one), from the step file beside it:
        the driver counts it as done, and `train` advances the progress bar from there."""
        return saved_step(checkpoint_path(run_folder, self.key))

    def run(self, sink) -> str:
        try:
            return train(self, sink)
        except CheckpointError as reason:  # a run that could not resume: a failure, not a result
            return f"failed: {reason}"

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


def temperature(tau0: float | None, step: int, args: Settings) -> float | None:
    if tau0 is None or args.anneal <= 0:
        return tau0
    return max(args.tau_min, tau0 * math.exp(-args.anneal * (step // args.anneal_every) * args.anneal_every))


def iw_subset(test_size: int, points: int) -> torch.Tensor:
    """Indices of the test points of the importance-weighted bound: a random subset, the same for every run.

    Not the first points: test sets can be ordered (binarized MNIST's first 2,000 images measured a
    -ELBO 22 nats below the whole set's)."""
    return torch.randperm(test_size, generator=torch.Generator().manual_seed(20170101))[:points]


def evaluation_seed(seed: int, step: int) -> int:
    """The random stream of a run's measurements at an evaluation point: its own for each run and step."""
    return seed * 1_000_003 + step


def probe_batch(data, batch_size: int) -> torch.Tensor:
    """The fixed minibatch at which the encoder-gradient figures are measured: the first batch-size
    validation images, thresholded (the same at every evaluation point and for every run)."""
    return data.binarize(data.valid[:batch_size], "threshold")


def epoch_batches(data, args: Settings, seed: int, epoch: int, device: str) -> torch.Tensor:
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


RELAXATION_BATCHES = 10  # training batches of the relaxed-vs-hard comparison (1,000 images at batch size 100)


def recent_training_batches(data, args: Settings, seed: int, step: int, device: str, held: tuple,
                            count: int = RELAXATION_BATCHES) -> torch.Tensor:
    """The images of the last `count` training batches before `step` (steps step - count .. step - 1), as
    they were trained on (same shuffle, same binarization draw). `held` is (epoch, its data) that the
    training loop holds; an earlier epoch is drawn again from its seed, so a resumed run gets the same."""
    batches_per_epoch = math.ceil(len(data.train) / args.batch_size)
    epochs = {held[0]: held[1]}
    pieces = []
    for past in range(max(0, step - count), step):
        epoch = past // batches_per_epoch
        if epoch not in epochs:
            epochs[epoch] = epoch_batches(data, args, seed, epoch, device)
        pieces.append(epochs[epoch][(past % batches_per_epoch) * args.batch_size:][:args.batch_size])
    return torch.cat(pieces)


def relaxed_and_hard_neg_elbo(model: VAE, x: torch.Tensor, estimator, spec, hparams: dict, samples: int, kl: str,
                              seed: int) -> dict:
    """The estimator's training objective and the discrete model's -ELBO, on the same images and noise.

    train_neg_elbo_relaxed: the forward value of the estimator's surrogate, i.e. its estimate of the
        -ELBO that it trains (VAE.objective; analytic KL added, or sampled as --kl says), averaged over
        the images and its S samples per image. For Gumbel-Softmax, whose cost is evaluated at Concrete
        samples softmax((l + g) / tau) (binary Concrete for Bernoulli), this is the relaxed -ELBO at
        the run's current tau: the "relaxed" loss the categorical VAE of the articles prints beside the
        "unrelaxed" one. Every other registered estimator evaluates the cost at exact samples (REINFORCE
        and its baselines, MuProp, straight-through, ST Gumbel-Softmax, Gumbel-Rao, ReinMax, REBAR,
        RELAX: their relaxations enter the gradient only), and a Gaussian latent has nothing to relax.
        The training rows' train_neg_elbo is the same quantity on the step's own batch, before the step.
    train_neg_elbo_hard: the same call with the same random numbers, the cost evaluated at the exact
        discrete samples the estimator's points round to (Latent.harden: for Gumbel-Softmax the
        Gumbel-max sample argmax(l + g)), i.e. the discrete model's -ELBO with hard samples, paired
        with the relaxed value sample by sample.
    train_relaxation_gap: relaxed - hard, and train_relaxation_gap_se its standard error over the images
        (paired: the same noise for both). Zero, bit for bit, for an estimator that evaluates the cost at
        exact samples (rounding a hard point returns it unchanged), so the columns also say which
        estimators train a relaxed objective, a plugin's included.

    Measured with the model frozen at the evaluation point, without gradients, in a forked random state
    seeded by `seed` (the training run's stream is untouched), a stateful estimator on a copy."""
    per_image = {}
    for name, hard in (("train_neg_elbo_relaxed", False), ("train_neg_elbo_hard", True)):
        with forked_rng(seed), torch.no_grad():
            instance = copy.deepcopy(estimator) if spec.stateful else estimator
            per_image[name] = model.objective(x, instance, hparams, samples, kl, hard=hard).double()
    gap = per_image["train_neg_elbo_relaxed"] - per_image["train_neg_elbo_hard"]
    return {**{name: float(values.mean()) for name, values in per_image.items()},
            "train_relaxation_gap": float(gap.mean()),
            "train_relaxation_gap_se": float(gap.std() / math.sqrt(len(gap))) if len(gap) > 1 else float("nan")}


def train(run: Run, sink) -> str:
    """Train one model; every evaluation point becomes a row (written through the sink), and a checkpoint
    in the run folder, from which a stopped run continues. Returns 'ok' or why it stopped."""
    args = run.settings
    data = cached_dataset(args.dataset, args.data_dir)
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
    total = args.total_steps
    eval_steps = sorted({max(1, round(total * (i + 1) / args.evals)) for i in range(args.evals)})
    probe = probe_batch(data, args.batch_size).to(device)
    test_x = data.binarize(data.test, "threshold").to(device)
    picture_x = test_x[picture_indices(test_x).to(device)]  # the same test images for every run
    iw_x = test_x[iw_subset(len(test_x), args.iw_points).to(device)] if args.iw_points else test_x
    # clock: the training steps only (what the estimators cost: train_seconds, with the CPU seconds and load
    # of the same steps, see TrainingClock); wall: since the run began, with the evaluations, checkpoints and
    # data shuffles in between.
    step, clock, wall_before, epoch_data = 0, None, 0.0, None
    checkpoint = checkpoint_path(sink.run_folder, run.key)
    counted = steps_done(run, sink.run_folder)  # what the driver's progress bar counts as done already
    saved = load_checkpoint(checkpoint, device)  # a new folder has none; a resumed one continues from it
    if saved is not None:
        try:
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            if spec.stateful:
                estimator.load_state_dict(saved["estimator"])
            step, clock, wall_before = saved["step"], TrainingClock.resumed(saved), saved.get("wall_seconds", 0.0)
            torch.set_rng_state(saved["rng"])
            if device == "cuda":
                torch.cuda.set_rng_state(saved["cuda_rng"])
        except (KeyError, RuntimeError, ValueError, TypeError) as error:
            raise CheckpointError(f"checkpoint {checkpoint} does not fit this run "
                                  f"({type(error).__name__}: {error}); delete it to restart that run from step 0, "
                                  "or pass another --out") from None
    if step != counted:  # resumed from another step than the step file said (see benchmarks.units)
        sink.advance(step - counted)
    if clock is None:
        clock = TrainingClock()  # a new run: its load average at the start is read here
    wall_start = time.perf_counter()
    while step < total:
        if epoch_data is None or step % batches_per_epoch == 0:
            epoch_data = epoch_batches(data, args, seed, step // batches_per_epoch, device)
        batch = epoch_data[(step % batches_per_epoch) * args.batch_size:][:args.batch_size]
        tau = temperature(tau0, step, args) if scheduled else tau0
        per_call = {"tau": tau} if scheduled else {}
        clock.start()
        loss, value = model.loss(batch, estimator, per_call, samples, kl)
        if "tau" in spec.learns:
            tau = estimator.tau  # the temperature this step used, learned from tau0 (RELAX)
        if not math.isfinite(value):
            return f"stopped at step {step}: the loss is not finite ({value}); the other runs go on"
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        clock.stop(device)
        step += 1
        sink.advance(1)
        if step in eval_steps:
            row = {"estimator": spec.name, "tau0": tau0, "tau": tau, "variant": run.variant,
                   "hparams": json.dumps({**dict(run.hparams), **({"tau": tau} if tau is not None else {})},
                                         sort_keys=True),
                   "seed": seed, "step": step,
                   "epoch": step / batches_per_epoch, "train_seconds": clock.wall_s,
                   "wall_seconds": wall_before + time.perf_counter() - wall_start,
                   "time_per_step_s": clock.wall_s / step, "steps_per_s": step / clock.wall_s, **clock.columns(),
                   "train_neg_elbo": value,
                   "test_neg_elbo": float(model.negative_elbo(test_x).mean()),
                   "dataset": data.name, "latent": str(latent), "kl": kl, "n_samples": samples,
                   "batch_size": args.batch_size, "lr": args.lr, "device": device, "status": "ok"}
            row.update(relaxed_and_hard_neg_elbo(
                model, recent_training_batches(data, args, seed, step, device,
                                               ((step - 1) // batches_per_epoch, epoch_data)),
                estimator, spec, per_call, samples, kl, seed=evaluation_seed(seed, step)))
            pictures = pictures_path(sink.run_folder, run.key, step)
            save_pictures(pictures, draw_pictures(model, picture_x, step))
            row["pictures"] = pictures.relative_to(sink.run_folder).as_posix()
            if args.grad_estimates:
                problem = vae_problem(model, probe, kl, max(100, args.grad_estimates // 5), step, seed)
                row.update(encoder_gradient_row(estimator, spec, problem, per_call, args.grad_estimates, samples,
                                                seed=evaluation_seed(seed, step)))
            if step == eval_steps[-1]:
                bound = model.importance_weighted_bound(iw_x, args.iw_samples)
                row["test_iw_bound"] = float(bound.mean())
                row["test_iw_bound_se"] = float(bound.std() / math.sqrt(len(bound)))
                row["iw_samples"], row["iw_points"] = args.iw_samples, len(bound)
            row["run_id"], row["cell_id"] = run.key, f"{run.key}|step={step}"
            sink.add(row)
            save_checkpoint(checkpoint, {
                "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "estimator": estimator.state_dict() if spec.stateful else None, "step": step, **clock.state(),
                "wall_seconds": wall_before + time.perf_counter() - wall_start,
                "rng": torch.get_rng_state(), "cuda_rng": torch.cuda.get_rng_state() if device == "cuda" else None})
    return "ok"
