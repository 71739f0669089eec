"""The VAE report's pictures: what each estimator's model draws, one column per estimator.

A VAE run saves, at every evaluation point, the pixel means of its reconstructions of a fixed set of
test images and of 64 samples from the prior (benchmarks/vae_pictures.py: one .npz per run and step,
named in the rows' `pictures` column). This module only reads those arrays, with numpy and without
pickles, and draws them with matplotlib: no model is built and no model code runs at render time.

Per latent and evaluation point two PNGs:
    pictures-<latent>-reconstructions-step-000500.png   the test images (left) and, one column per
                                                         estimator, their reconstructions
    pictures-<latent>-prior-step-000500.png             per estimator an 8 x 8 grid of prior samples
The page shows the last evaluation point's and links the earlier ones. Images are drawn at the
dataset's shape (8 x 8 digits, 28 x 28 MNIST), white on black, pixel means from 0 to 1.

With several seeds the pictures are the first seed's (the page says so). A run stopped by a non-finite
loss, or whose last pictures are not finite, shows its last finite pictures, and the page says which.
"""
from __future__ import annotations

import re
import textwrap
import zlib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from reports.ticks import save_figure  # noqa: E402

KEYS = ("originals", "reconstructions", "prior", "image_shape", "step")
PRIOR_PANELS_PER_ROW = 4


class PicturesError(ValueError):
    """A pictures file that cannot be read or does not hold what a VAE run writes."""


def load_pictures(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of one evaluation point; PicturesError when the file is missing, truncated or not ours.
    Read with allow_pickle=False: a run folder from elsewhere cannot run code here."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {key: stored[key] for key in KEYS}
    except (OSError, ValueError, KeyError, EOFError, zlib.error) as error:
        raise PicturesError(f"{path} cannot be read ({type(error).__name__}: {str(error)[:200]})") from None
    shape = arrays["image_shape"]
    if shape.shape != (2,):
        raise PicturesError(f"{path}: image_shape is {shape.tolist()}, not (rows, columns)")
    pixels = int(shape[0]) * int(shape[1])
    for key in ("originals", "reconstructions", "prior"):
        if arrays[key].ndim != 2 or arrays[key].shape[1] != pixels:
            raise PicturesError(f"{path}: {key} has shape {arrays[key].shape}, not (n, {pixels})")
    return arrays


def finite(arrays: dict[str, np.ndarray]) -> bool:
    """Whether every pixel is a number (a diverged model decodes NaN)."""
    return all(np.isfinite(arrays[key]).all() for key in ("reconstructions", "prior"))


def mosaic(images: np.ndarray, shape, columns: int) -> np.ndarray:
    """Flattened images (n, pixels) as one array of `columns` images a row, one NaN pixel between them
    (drawn as the page's white)."""
    rows_of_images = -(-len(images) // columns)
    height, width = (int(v) for v in shape)
    out = np.full((rows_of_images * (height + 1) - 1, columns * (width + 1) - 1), np.nan)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        out[r * (height + 1):r * (height + 1) + height, c * (width + 1):c * (width + 1) + width] = \
            image.reshape(height, width)
    return out


TITLE_CHARS = 13  # a column title's line: words are never split, so a longer one widens the columns
CHAR_INCHES = 0.075  # one character of an 8-point title, with room to spare


def _title_lines(title: str, chars: int = TITLE_CHARS) -> list[str]:
    return textwrap.wrap(title, chars, break_long_words=False, break_on_hyphens=False) or [""]


def _column_inches(titles: list[str], least: float) -> float:
    """Wide enough for the longest line of any column's title (two at 18 characters overlapped, found by a
    new user: 'disarm kl=analytic' beside 'disarm kl=sampled')."""
    return max([least] + [CHAR_INCHES * len(line) + 0.1 for title in titles for line in _title_lines(title)])


def _show(ax, image: np.ndarray, title: str, chars: int = TITLE_CHARS) -> None:
    cmap = plt.get_cmap("gray").with_extremes(bad="white")  # the NaN gaps between images
    ax.imshow(image, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_title("\n".join(_title_lines(title, chars)), fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def reconstructions_figure(originals: np.ndarray, columns: list[tuple[str, dict | None]], shape, title: str = ""):
    """The test images and, per (title, arrays or None), their reconstructions, one column each."""
    n = len(originals)
    titles = ["test image"] + [label for label, _ in columns]
    lines = max(len(_title_lines(t)) for t in titles)
    top_inches = 0.7 + 0.15 * lines  # the figure's title and the columns' titles
    height = 0.75 * n + top_inches + 0.1
    column = _column_inches(titles, 0.95)
    fig, axes = plt.subplots(1, len(columns) + 1, figsize=(max(3.2, column * (len(columns) + 1) + 0.3), height),
                             squeeze=False)
    axes = axes[0]
    _show(axes[0], mosaic(originals, shape, 1), "test image")
    blank = np.full_like(mosaic(originals, shape, 1), np.nan)
    for ax, (label, arrays) in zip(axes[1:], columns):
        _show(ax, mosaic(arrays["reconstructions"], shape, 1) if arrays is not None else blank, label)
    if title:
        fig.suptitle(title, fontsize=9, y=1 - 0.12 / height, va="top")
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.1 / height, top=1 - top_inches / height, wspace=0.08)
    return fig, axes


def prior_figure(columns: list[tuple[str, dict | None]], shape, title: str = ""):
    """Per (title, arrays or None) an 8 x 8 grid of decoded prior samples."""
    per_row = min(PRIOR_PANELS_PER_ROW, len(columns))
    rows = -(-len(columns) // per_row)
    top_inches = 0.45 if title else 0.0
    height = 3.3 * rows + top_inches
    fig, axes = plt.subplots(rows, per_row, figsize=(2.9 * per_row, height), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (label, arrays) in zip(axes.flat, columns):
        ax.axis("on")
        count = 64 if arrays is None else len(arrays["prior"])
        side = int(np.ceil(np.sqrt(count)))
        image = (mosaic(arrays["prior"], shape, side) if arrays is not None
                 else np.full(mosaic(np.zeros((count, int(shape[0]) * int(shape[1]))), shape, side).shape, np.nan))
        _show(ax, image, label, chars=30)  # a 2.9-inch panel: the title on one or two lines
    if title:
        fig.suptitle(title, fontsize=10, y=1 - 0.1 / height, va="top")
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.1 / height, top=1 - (top_inches + 0.45) / height,
                        wspace=0.1, hspace=0.45 / 3.3 * 2)
    return fig, axes


def _stopped(problems) -> dict[str, str]:
    """run id -> why it stopped, from the run's 'problems' lines ('<run id>: stopped at step 14: ...')."""
    found = {}
    for line in problems or []:
        run_id, _, why = line.partition(": ")
        if why.startswith("stopped at step"):
            found[run_id] = why.split(";")[0]
    return found


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "-", text)


def picture_sections(frame: pd.DataFrame, run_dir: str | Path, latent: str, problems=()) -> dict:
    """Draw one latent's pictures at every evaluation point into run_dir; what the page shows.

    frame: that latent's rows, with a `label` per run (reports.vae.run_labels). Returns a dict with
    `reconstructions` and `prior` (the last evaluation point's PNG names, or None), `step`, `earlier`
    [(step, reconstructions PNG, prior PNG)], `seed_note` (which seed is shown, where there are several)
    and `notes` (warnings for the page: stopped runs, pictures that are not finite, unreadable or missing
    files, a folder written before pictures were saved)."""
    run_dir = Path(run_dir)
    empty = {"reconstructions": None, "prior": None, "step": None, "earlier": [], "notes": []}
    if "pictures" not in frame or frame["pictures"].isna().all():
        empty["notes"].append("This run was written by a gradbench that saved no pictures; a new run draws them.")
        return empty
    notes, seed_note = [], None
    seeds = sorted(frame["seed"].unique())
    if len(seeds) > 1:
        seed_note = f"Pictures of seed {seeds[0]} only (the first of the run's seeds {', '.join(map(str, seeds))})."
    first = frame[frame["seed"] == frame.groupby("label")["seed"].transform("min")]
    stopped = _stopped(problems)
    runs = {}  # label -> [(step, arrays)] of its finite pictures, by step
    for label, rows in first.sort_values("step").groupby("label", sort=True):
        found = []
        for row in rows.itertuples():
            if not isinstance(row.pictures, str):
                continue
            try:
                arrays = load_pictures(run_dir / row.pictures)
            except PicturesError as error:
                notes.append(f"{label}: {error}.")
                continue
            if finite(arrays):
                found.append((int(row.step), arrays))
            else:
                notes.append(f"{label}: the pictures at step {int(row.step)} are not finite (the model diverged); "
                             "the last finite ones are shown.")
        runs[label] = found
        run_id = rows["run_id"].iloc[0] if "run_id" in rows else None
        if run_id in stopped:
            last = f"its last finite pictures, from step {found[-1][0]}, are shown" if found else "it left no pictures"
            notes.append(f"{label}: {stopped[run_id]}; {last}.")
    steps = sorted({step for found in runs.values() for step, _ in found})
    if not steps:
        empty["notes"] = notes + ["No readable pictures were found for this latent."]
        return empty
    shape = next(arrays["image_shape"] for found in runs.values() for _, arrays in found)
    originals = next(arrays["originals"] for found in runs.values() for _, arrays in found)
    written = []
    for step in steps:
        columns = []
        for label, found in runs.items():
            shown = [(s, arrays) for s, arrays in found if s <= step]
            if not shown:
                columns.append((f"{label} (none yet)", None))
            else:
                at, arrays = shown[-1]
                columns.append((label if at == step else f"{label} (step {at})", arrays))
        base = f"pictures-{slug(latent)}"
        names = (f"{base}-reconstructions-step-{step:06d}.png", f"{base}-prior-step-{step:06d}.png")
        fig, _ = reconstructions_figure(originals, columns, shape, f"{latent}: reconstructions, step {step}")
        save_figure(fig, run_dir / names[0], dpi=100)
        fig, _ = prior_figure(columns, shape, f"{latent}: samples from the prior, decoded to pixel means, step {step}")
        save_figure(fig, run_dir / names[1], dpi=100)
        written.append((step, *names))
    last_step, reconstructions, prior = written[-1]
    return {"reconstructions": reconstructions, "prior": prior, "step": last_step, "earlier": written[:-1],
            "notes": notes, "seed_note": seed_note, "shape": f"{int(shape[0])} x {int(shape[1])}"}
