"""Data loaders: real files from ../shared/data (or $GRADBENCH_DATA), checksums, and clear errors."""
import gzip
import os
from pathlib import Path

import pytest
import torch

from benchmarks.data import DataError, load_dataset

SHARED = Path(os.environ.get("GRADBENCH_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
needs_shared = pytest.mark.skipif(not (SHARED / "mnist").exists(), reason=f"no MNIST copies in {SHARED}")


def test_digits_is_embedded_and_split():
    data = load_dataset("digits")
    assert data.pixels == 64 and len(data.train) + len(data.valid) + len(data.test) == 1797
    binary = data.binarize(data.train, "dynamic", torch.Generator().manual_seed(0))
    assert set(binary.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(data.binarize(data.test, "threshold"), (data.test > 0.5).float())


@needs_shared
def test_mnist_matches_published_sanity_values():
    data = load_dataset("mnist", SHARED)
    assert data.train.shape == (50_000, 784) and data.valid.shape == (10_000, 784) and data.test.shape == (10_000, 784)
    assert float(data.test.mean() * 255) == pytest.approx(33.791, abs=1e-3)
    fresh = [data.binarize(data.train[:100], "dynamic") for _ in range(2)]
    assert not torch.equal(*fresh)  # dynamic binarization draws anew each time


@needs_shared
def test_binarized_mnist_matches_published_fractions_of_ones():
    data = load_dataset("binarized_mnist", SHARED)
    assert data.binary and data.train.shape == (50_000, 784)
    for split, fraction in ((data.train, 0.13056), (data.valid, 0.13113), (data.test, 0.13251)):
        assert float(split.mean()) == pytest.approx(fraction, abs=5e-6)


@needs_shared
def test_truncated_or_corrupt_files_are_refused(tmp_path):
    source = SHARED / "mnist" / "t10k-images-idx3-ubyte.gz"
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (tmp_path / name).write_bytes((SHARED / "mnist" / name).read_bytes())
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(source.read_bytes()[:50_000])  # truncated
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz.*truncated or corrupt"):
        load_dataset("mnist", tmp_path)
    content = bytearray(gzip.decompress(source.read_bytes()))
    content[5000] ^= 0xFF  # one flipped byte, still a valid gzip
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(bytes(content)))
    with pytest.raises(DataError, match="SHA-256"):
        load_dataset("mnist", tmp_path)


def test_missing_folder_files_and_unknown_names(tmp_path, monkeypatch):
    monkeypatch.delenv("GRADBENCH_DATA", raising=False)
    with pytest.raises(DataError, match="--data-dir"):
        load_dataset("mnist")
    with pytest.raises(DataError, match="binarized_mnist_train.amat .*not found in"):
        load_dataset("binarized_mnist", tmp_path)
    with pytest.raises(DataError, match="choose one of digits, mnist, binarized_mnist"):
        load_dataset("cifar")
