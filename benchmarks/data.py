"""Binary image data for the VAE task, behind one loader, with checksums.

    digits           scikit-learn's bundled 8x8 digits (64 pixels), embedded: no download ever
    mnist            the four IDX files (gzipped or not) from --data-dir or $GRADBENCH_DATA
    binarized_mnist  Larochelle & Murray's fixed binarization: binarized_mnist_{train,valid,test}.amat[.gz]

Every file is checked against its published SHA-256 (of the uncompressed content) before it is
parsed, so a truncated or corrupt file is an error that names it, never a silently wrong array.
MNIST's intensities are binarized dynamically (a fresh Bernoulli draw with the intensity as
probability, each time `binarize` is called: once per epoch) or by thresholding at 0.5.

References:
    LeCun, Y., Cortes, C., Burges, C. J. C. The MNIST database of handwritten digits.
    Larochelle, H., Murray, I. (2011). The neural autoregressive distribution estimator. AISTATS.
"""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
from pathlib import Path

import numpy as np
import torch

DATA_ENV = "GRADBENCH_DATA"
DATASETS = ("digits", "mnist", "binarized_mnist")

# SHA-256 of the uncompressed files, as published by TensorFlow Datasets and the MNIST mirrors.
MNIST_FILES = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
BINARIZED_FILES = {
    "binarized_mnist_train.amat": ("ad693b29f94c14277b095f5238ddefbbdaaae0939789dd2f4f0205278cee3e4d", 50_000),
    "binarized_mnist_valid.amat": ("1de3d397c40fe8eeb33dafd4099a1f665ec01e96d9be234aaeeac8a34930e2e2", 10_000),
    "binarized_mnist_test.amat": ("e6687bfea3f820c174f33b7865140b2a2dd2930ef786f35d45795fc193b5ab2c", 10_000),
}


class DataError(ValueError):
    """A missing, truncated or corrupt data file, or an unknown dataset: the message says what to do."""


@dataclasses.dataclass
class Dataset:
    """Train/valid/test pixels in [0, 1], shaped (n, pixels). `binary` says whether they are 0/1 already."""

    name: str
    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor
    binary: bool
    source: str

    @property
    def pixels(self) -> int:
        return self.train.shape[1]

    def binarize(self, split: torch.Tensor, mode: str = "dynamic", generator: torch.Generator | None = None) -> torch.Tensor:
        """0/1 pixels: as stored, a fresh Bernoulli(intensity) draw ('dynamic'), or intensity > 0.5 ('threshold')."""
        if self.binary:
            return split
        if mode == "dynamic":
            return torch.bernoulli(split, generator=generator)
        if mode == "threshold":
            return (split > 0.5).to(split.dtype)
        raise DataError(f"unknown binarization {mode!r}; use 'dynamic' or 'threshold'")


def data_folder(data_dir: str | Path | None) -> Path:
    folder = data_dir or os.environ.get(DATA_ENV)
    if not folder:
        raise DataError(f"no data folder: pass --data-dir DIR or set {DATA_ENV}=DIR, DIR holding the dataset's files "
                        "(this machine cannot download them)")
    return Path(folder)


def _find(folder: Path, name: str) -> Path:
    """`name` or `name.gz` in folder or in folder/<dataset>/ (the layout of the shared data)."""
    for candidate in (folder / name, folder / f"{name}.gz", folder / "mnist" / f"{name}.gz", folder / "mnist" / name,
                      folder / "binarized_mnist" / f"{name}.gz", folder / "binarized_mnist" / name):
        if candidate.exists():
            return candidate
    raise DataError(f"{name} (or {name}.gz) not found in {folder}; put the file there "
                    "(this machine cannot download it)")


def _read_checked(path: Path, sha256: str) -> bytes:
    try:
        raw = path.read_bytes()
        content = gzip.decompress(raw) if path.suffix == ".gz" else raw
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise DataError(f"{path} cannot be read ({error}): the file is truncated or corrupt; replace it") from None
    digest = hashlib.sha256(content).hexdigest()
    if digest != sha256:
        raise DataError(f"{path} has SHA-256 {digest[:16]}..., expected {sha256[:16]}...: the file is truncated or "
                        "corrupt; replace it")
    return content


def _idx_images(content: bytes, path: Path) -> np.ndarray:
    magic, count, rows, cols = np.frombuffer(content[:16], dtype=">i4")
    if magic != 2051 or len(content) != 16 + count * rows * cols:
        raise DataError(f"{path} is not an IDX image file (magic {magic}, {len(content)} bytes)")
    return np.frombuffer(content, dtype=np.uint8, offset=16).reshape(count, rows * cols)


def load_mnist(data_dir=None, valid_size: int = 10_000) -> Dataset:
    """MNIST intensities in [0, 1]; the last `valid_size` training images are the validation split."""
    folder = data_folder(data_dir)
    images = {}
    for name in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte"):
        path = _find(folder, name)
        images[name] = _idx_images(_read_checked(path, MNIST_FILES[name]), path)
    train = torch.from_numpy(images["train-images-idx3-ubyte"].astype(np.float32) / 255.0)
    test = torch.from_numpy(images["t10k-images-idx3-ubyte"].astype(np.float32) / 255.0)
    return Dataset("mnist", train[:-valid_size], train[-valid_size:], test, binary=False, source=str(folder.resolve()))


def load_binarized_mnist(data_dir=None) -> Dataset:
    folder = data_folder(data_dir)
    splits = {}
    for name, (sha256, rows) in BINARIZED_FILES.items():
        path = _find(folder, name)
        content = _read_checked(path, sha256)
        # Each line is 784 values "0"/"1" separated by single spaces: 1568 bytes with the newline.
        values = np.frombuffer(content, dtype=np.uint8).reshape(rows, 1568)[:, 0::2] - ord("0")
        splits[name.split("_")[-1].split(".")[0]] = torch.from_numpy(values.astype(np.float32))
    return Dataset("binarized_mnist", splits["train"], splits["valid"], splits["test"], binary=True, source=str(folder.resolve()))


def load_digits(seed: int = 0) -> Dataset:
    """scikit-learn's 1,797 8x8 digits (intensities 0..16, scaled to [0, 1]); a seeded 70/15/15 split."""
    from sklearn.datasets import load_digits as sklearn_digits

    pixels = torch.from_numpy(sklearn_digits().data.astype(np.float32) / 16.0)
    order = torch.randperm(len(pixels), generator=torch.Generator().manual_seed(seed))
    pixels = pixels[order]
    n_train, n_valid = int(0.7 * len(pixels)), int(0.15 * len(pixels))
    return Dataset("digits", pixels[:n_train], pixels[n_train:n_train + n_valid], pixels[n_train + n_valid:],
                   binary=False, source="sklearn.datasets.load_digits")


def load_dataset(name: str, data_dir=None) -> Dataset:
    if name == "digits":
        return load_digits()
    if name == "mnist":
        return load_mnist(data_dir)
    if name == "binarized_mnist":
        return load_binarized_mnist(data_dir)
    raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
