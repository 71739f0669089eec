"""Training checkpoints of `python -m benchmarks.vae`, so an interrupted run continues where it stopped.

One file per run (latent, KL form, estimator, tau0, seed, device) under RUN/checkpoints/, rewritten
atomically (a temporary file renamed over the old one) at every evaluation point: the model, the optimizer, the step, the
training seconds so far, the estimator's state (for stateful estimators such as NVIL or RELAX), and the
random states. `--resume` loads it and goes on from that step; at most the steps since the last
evaluation point are repeated. The last one of a finished run holds the trained model (~14 MB for
784-512-256 with its Adam state), kept for later analysis.

Beside each checkpoint, a small JSON file (`<name>.step.json`, written atomically after it) says the step
it holds, so that the driver counts the steps a resumed run has done without loading any checkpoint
(nothing in a run folder is unpickled, even by torch's restricted loader, to print a count).
"""
from __future__ import annotations

import json
import os
import pickle
import re
import tempfile
from pathlib import Path

import torch

from benchmarks.results import atomic_write

FOLDER = "checkpoints"


class CheckpointError(ValueError):
    pass


def checkpoint_path(run_folder: Path, cell: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_.=" else "_" for c in cell)
    return Path(run_folder) / FOLDER / f"{safe}.pt"


def step_path(path: Path) -> Path:
    """The JSON file beside the checkpoint at `path` that says its step."""
    return Path(path).with_suffix(".step.json")


def save_checkpoint(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        torch.save(state, temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    # After the checkpoint: the step file never claims more than the checkpoint holds (a kill in between
    # leaves it one evaluation point behind, which the resumed run corrects as it reports its progress).
    atomic_write(step_path(path), json.dumps({"step": int(state["step"])}))


def saved_step(path: Path) -> int:
    """The step the checkpoint at `path` holds, read from its step file, never from the checkpoint; 0 where
    there is no checkpoint (a deleted one restarts its run from step 0, whatever the step file says) or no
    readable step file (a checkpoint written before step files existed: it is still resumed)."""
    if not Path(path).exists():
        return 0
    try:
        step = json.loads(step_path(path).read_text())["step"]
    except (OSError, ValueError, KeyError, TypeError):
        return 0
    return step if isinstance(step, int) and step > 0 else 0


def load_checkpoint(path: Path, device: str) -> dict | None:
    """The saved state, or None when there is none. Loaded with weights_only=True: a checkpoint holds
    tensors, numbers and state dicts only (a stateful estimator's `state_dict()`), never a pickled
    object, so a run folder from elsewhere cannot run code when it is resumed."""
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as error:  # weights_only refused an object: never load it
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
        what = f"an instance of {found.group(1)}" if found else "not only tensors and numbers"
        raise CheckpointError(f"checkpoint {path} holds a pickled Python object ({what}) "
                              "and is refused: loading it could run code. A gradbench before 0.2 pickled stateful "
                              "estimators; delete the file to restart that run from step 0, or pass another "
                              "--out") from None
    except Exception as error:  # a truncated file from a killed machine: say so, never half-load it
        raise CheckpointError(f"checkpoint {path} cannot be read ({type(error).__name__}: {str(error)[:300]}); "
                              "it is truncated, or was written by a gradbench before 0.2 that pickled the "
                              "estimator; delete it to restart that run from step 0, or pass another --out") from None
