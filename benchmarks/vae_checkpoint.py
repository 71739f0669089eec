"""A VAE that `python -m benchmarks.vae` trained, back from its run folder as a gradient problem.

    from benchmarks import measure
    from benchmarks.vae_checkpoint import load_trained_run

    run = load_trained_run("runs/vae-grid", "categorical:20x10|analytic|gumbel_softmax|tau0=1.0|seed=0|cpu")
    measure("reinforce_loo", run.problem, n_estimates=1000, n_samples=2)      # another estimator, same model
    measure(run.estimator, run.problem, spec=run.spec, n_estimates=run.n_estimates,  # the run's own estimator,
            n_samples=run.n_samples, seed=run.seed, warmup=False)                    # its state, its draws

The run id is the `run_id` column of the folder's results.csv. The problem is the one the run measured at
the step its checkpoint holds (the last evaluation point it reached; benchmarks.tasks.vae.vae_problem):
the -ELBO on the run's fixed minibatch (the first batch-size validation images, thresholded), decoder
frozen, in the encoder's parameters, against the same estimated or enumerated reference. So measuring
the run's own estimator there with the seed and N the run measured with (`run.seed`, `run.n_estimates`)
gives that row's `grad_*` figures again (tested).

The checkpoint is read with torch's weights-only loader (benchmarks.checkpoints.load_checkpoint): a run
folder from elsewhere cannot run code when it is loaded.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import os
from pathlib import Path

import torch

import estimators
from benchmarks.checkpoints import checkpoint_path, load_checkpoint
from benchmarks.data import DATA_ENV, DataError
from benchmarks.results import RunFolder
from benchmarks.tasks.vae import VAEProblem, vae_problem
from benchmarks.vae_model import VAE, Latent
from benchmarks.vae_training import cached_dataset, evaluation_seed, probe_batch
from estimators.registry import unknown_name_message


class TrainedRunError(ValueError):
    """A folder, run id or checkpoint that cannot give the trained model: the message says why."""


@dataclasses.dataclass(frozen=True)
class TrainedRun:
    """One training run at the step its checkpoint holds."""
    problem: VAEProblem
    trained: object            # the run's estimator as the checkpoint holds it (see `estimator`)
    spec: estimators.EstimatorSpec
    hparams: dict              # what it was built with (a learned tau: its starting value)
    n_samples: int             # the samples per estimate it trained with
    step: int
    row: dict                  # the run's row of results.json at that step

    @property
    def seed(self) -> int:
        """The seed of the run's own encoder-gradient measurement at this step (training's seed, the step)."""
        return evaluation_seed(int(self.row["seed"]), self.step)

    @property
    def n_estimates(self) -> int:
        """The estimates that measurement drew (--grad-estimates)."""
        drawn = self.row.get("grad_n_estimates")
        if drawn is None or drawn != drawn:
            raise TrainedRunError(f"run {self.row['run_id']!r} measured no encoder gradients (--grad-estimates 0); "
                                  "give measure an n_estimates of your own")
        return int(drawn)

    @property
    def threads(self) -> int:
        """The torch threads the run measured on (its --threads): its figures depend on them in their last
        digits, so `measure(..., threads=run.threads)` gives them again."""
        threads = self.row.get("torch_threads")
        return 1 if threads is None or threads != threads else int(threads)

    @property
    def estimator(self):
        """A copy of the run's estimator, a stateful one with the state it learned: measuring a stateful
        estimator updates its state, so each measurement starts from the checkpoint's."""
        return copy.deepcopy(self.trained)


def load_trained_run(run_folder: str | Path, run_id: str, *, data_dir: str | Path | None = None,
                     reference_estimates: int | None = None, device: str | None = None) -> TrainedRun:
    """The run `run_id` of the `python -m benchmarks.vae` folder `run_folder`, at its checkpoint's step.

    `data_dir`: where MNIST lies, for a run on mnist or binarized_mnist (as --data-dir was; default: $GRADBENCH_DATA,
    else the folder the run read, recorded in its run.json).
    `reference_estimates`: for a problem whose reference is estimated, the estimates it takes (default: what
    the run used, max(100, --grad-estimates / 5)). `device`: where to load it (default: the run's own)."""
    if reference_estimates is not None and (isinstance(reference_estimates, bool)
                                            or not isinstance(reference_estimates, int) or reference_estimates < 2):
        raise TrainedRunError(f"reference_estimates must be a whole number >= 2, got {reference_estimates!r} "
                              "(or leave it out: the run's own)")
    folder = RunFolder(Path(run_folder))
    meta = folder.read_meta()
    if meta.get("kind") != "vae" or "settings" not in meta:
        raise TrainedRunError(f"{folder.path} holds no python -m benchmarks.vae run (no run.json with its settings)")
    rows = [row for row in folder.rows if row.get("run_id") == run_id]
    if not rows:
        known = sorted({str(row.get("run_id")) for row in folder.rows if row.get("run_id")})
        raise TrainedRunError(unknown_name_message(f"run id in {folder.path}", run_id, known)
                              + " (the run_id column of results.csv)")
    path = checkpoint_path(folder.path, run_id)
    device = device or rows[0].get("device", "cpu")
    try:
        where = torch.device(device)
    except RuntimeError as error:
        raise TrainedRunError(f"device {device!r}: {error}; use 'cpu' or 'cuda'") from None
    if where.type == "cuda" and not torch.cuda.is_available():
        raise TrainedRunError(f"device {device!r}: this machine has no CUDA GPU; load it with device='cpu'")
    saved = load_checkpoint(path, device)
    if saved is None:
        raise TrainedRunError(f"{path} is missing: run {run_id!r} has rows but no checkpoint (deleted?), and the "
                              "trained model lives only there; pick another run, or train this one again")
    step = int(saved["step"])
    row = next((r for r in rows if int(r["step"]) == step), None)
    if row is None:
        raise TrainedRunError(f"{path} holds step {step}, which no row of run {run_id!r} has; a run stopped "
                              "between its checkpoint and its row: continue it with --resume first")
    settings = meta["settings"]
    if data_dir is None and not os.environ.get(DATA_ENV) and settings["dataset"] != "digits":
        data_dir = meta.get("data_source")  # the folder the run read (absolute), if it is still there
    try:
        data = cached_dataset(settings["dataset"], None if data_dir is None else str(data_dir))
    except DataError as error:  # its hint names the CLI's --data-dir; this caller passes data_dir=
        raise TrainedRunError(f"{error}; here: load_trained_run(..., data_dir=DIR)") from None
    latent = Latent.parse(row["latent"])
    model = VAE(data.pixels, latent, tuple(settings["hidden"])).to(device)
    model.load_state_dict(saved["model"])
    probe = probe_batch(data, settings["batch_size"]).to(device)
    if reference_estimates is None:
        reference_estimates = max(100, int(settings.get("grad_estimates") or 0) // 5)
    problem = vae_problem(model, probe, row.get("kl", "analytic"), reference_estimates, step, int(row["seed"]))
    spec = estimators.get_spec(row["estimator"])
    if not isinstance(row.get("hparams"), str):  # an older folder: its estimator cannot be rebuilt exactly
        raise TrainedRunError(f"{folder.path} was written before rows recorded their hyperparameters (no hparams "
                              "column); train the run again with this version to load it")
    hparams = dict(json.loads(row["hparams"]))
    if row.get("tau0") is not None and "tau" in hparams and "tau" in spec.learns:
        hparams["tau"] = float(row["tau0"])  # built with its starting value; the learned one is in its state
    estimator = spec.make(**hparams)
    if spec.stateful:
        estimator.load_state_dict(saved["estimator"])
    return TrainedRun(problem, estimator, spec, hparams, int(row["n_samples"]), step, row)
