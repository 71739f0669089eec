"""What a VAE draws at each evaluation point, saved as pixel arrays so that the report only reads files.

At every evaluation point a run writes RUN/pictures/<run>/step-000500.npz (numpy's savez_compressed,
written atomically; read back with allow_pickle=False, so a run folder from elsewhere cannot run code):

    originals        (n, pixels)   a fixed set of test images, as the model sees them (binarized like the
                                   test set), the same for every run of every folder on that dataset
    reconstructions  (n, pixels)   pixel means sigmoid(decoder(z)) of one z ~ q(z|x) each: an exact sample,
                                   hard (one-hot, 0/1) for discrete latents, as the discrete model is evaluated
    prior            (64, pixels)  pixel means for 64 codes z ~ p(z): one-hot uniform categoricals, fair
                                   coins, or N(0, I)
    image_shape      (2,)          rows, columns: (8, 8) for the digits, (28, 28) for MNIST
    step             ()            the training step

Each row of the run's results names its file (column `pictures`, relative to the run folder); the report
(reports/vae_pictures.py) reads them with numpy alone and draws the grids: no model is built to render.

The latent draws come from a fixed seed in a forked random state: the training run's own random stream
is untouched, and every run of a latent decodes the same prior codes and draws its reconstructions' codes
from the same random stream, so that the pictures of two estimators differ by their models only.
"""
from __future__ import annotations

import math
import os
import tempfile
import zlib
from pathlib import Path

import numpy as np
import torch

from benchmarks.tasks.protocol import forked_rng

FOLDER = "pictures"
N_RECONSTRUCTIONS = 10
N_PRIOR = 64  # an 8 x 8 grid
PICTURE_SEED = 20170102


def image_shape(pixels: int) -> tuple[int, int]:
    """(rows, columns) of a flattened square image: 64 -> (8, 8), 784 -> (28, 28); a strip otherwise."""
    side = math.isqrt(pixels)
    return (side, side) if side * side == pixels else (1, pixels)


def picture_indices(test_images: torch.Tensor, count: int = N_RECONSTRUCTIONS, pool: int = 1000,
                    iterations: int = 25) -> torch.Tensor:
    """The test images whose reconstructions are drawn: fixed, the same for every run, and varied.

    Ten random MNIST test images are often half ones (they have the fewest ink pixels and the tightest
    cluster), so the images are the medoids of `count` k-means clusters (k-means++ start, Lloyd steps,
    a seeded generator) of a fixed random pool of test images: typical images of different shapes, chosen
    without labels; mostly different digits, not always (on MNIST: two 0s and two 9s, no 3 or 8)."""
    generator = torch.Generator().manual_seed(PICTURE_SEED)
    candidates = torch.randperm(len(test_images), generator=generator)[:pool]
    if len(candidates) <= count:
        return candidates
    x = test_images[candidates.to(test_images.device)].double().cpu()
    centres = x[torch.randint(len(x), (1,), generator=generator)]
    while len(centres) < count:  # k-means++: far from the chosen centres is likelier
        distance = torch.cdist(x, centres).min(1).values.square()
        centres = torch.cat([centres, x[torch.multinomial(distance, 1, generator=generator)]])
    for _ in range(iterations):
        assignment = torch.cdist(x, centres).argmin(1)
        centres = torch.stack([x[assignment == k].mean(0) if (assignment == k).any() else centres[k]
                               for k in range(count)])
    chosen = torch.cdist(centres, x).argmin(1).unique(sorted=False)
    return candidates[chosen]


def pictures_path(run_folder: str | Path, run_key: str, step: int) -> Path:
    """RUN/pictures/<readable run name>-<checksum of the exact key>/step-000500.npz."""
    safe = "".join(c if c.isalnum() or c in "-_.=" else "_" for c in run_key)[:180]
    return Path(run_folder) / FOLDER / f"{safe}-{zlib.crc32(run_key.encode()):08x}" / f"step-{step:06d}.npz"


@torch.no_grad()
def draw_pictures(model, test_images: torch.Tensor, step: int) -> dict[str, np.ndarray]:
    """The arrays of one evaluation point (see the module's docstring), as float32 pixel means in [0, 1]."""
    with forked_rng(PICTURE_SEED):
        # The prior first: its codes do not depend on the model, so they are the same for every run.
        prior = model.latent.prior(test_images).sample((N_PRIOR,))
        q = model.latent.posterior(model.encoder(test_images))
        reconstructions = model.pixel_means(q.sample())
        prior_means = model.pixel_means(prior)
    return {"originals": test_images.float().cpu().numpy(),
            "reconstructions": reconstructions.float().cpu().numpy(),
            "prior": prior_means.float().cpu().numpy(),
            "image_shape": np.array(image_shape(test_images.shape[-1]), dtype=np.int64),
            "step": np.array(step, dtype=np.int64)}


def save_pictures(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write the arrays atomically (a temporary file renamed over the target): a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:  # a file object: savez would append .npz to a name
            np.savez_compressed(stream, **arrays)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
