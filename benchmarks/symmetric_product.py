"""A x B^T for a product known to be symmetric, rounded the same on any number of CPU threads.

The VAE's Gram matrices (benchmarks.tasks.vae.gram_matrix) are products (M x K) (K x M) with a long inner
dimension K = batch x layer width (51,200 for 100 images and a 512-wide layer). Given two threads, the
CPU's BLAS splits such a K between them and adds the halves (measured with torch 2.13's MKL: K >= 8192 on
this machine), so the same product rounds differently on 1 and 2 threads, and the encoder-gradient
figures differed (~1e-7 relatively) between a run in process and the same run on a pool or on Ray.

Here the product is cut into fixed bands of ROWS rows, each computed on one thread (so each band's
rounding depends only on its numbers), the bands running side by side on a pool of as many Python
threads as torch has (torch releases the GIL in a product). Only the bands' upper triangle is computed
and mirrored: half the multiply-adds of the full product, and an exactly symmetric result.
On CUDA the plain product is used (one device, one order).
"""
from __future__ import annotations

import concurrent.futures

import torch

from benchmarks.metrics import one_thread

ROWS = 128  # rows per band: the fixed blocking every thread count shares


def symmetric_product(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """left @ right.T for (M, K) tensors whose product is symmetric (left_i . right_j = left_j . right_i)."""
    if left.device.type != "cpu":
        return left @ right.T
    size = len(left)
    upper = left.new_zeros(size, size)

    def band(start: int) -> None:
        # In each pool thread too: OpenMP's thread count is a per-thread setting, and a new thread starts
        # with the default (measured: without this line the bands still rounded differently on 1 and 2).
        torch.set_num_threads(1)
        stop = min(start + ROWS, size)
        torch.mm(left[start:stop], right[start:].T, out=upper[start:stop, start:])

    starts = range(0, size, ROWS)
    workers = torch.get_num_threads()
    with one_thread():
        if workers > 1 and len(starts) > 1:
            with concurrent.futures.ThreadPoolExecutor(min(workers, len(starts))) as pool:
                list(pool.map(band, starts))  # the widest bands first: the pool takes them in order
        else:
            for start in starts:
                band(start)
    upper = upper.triu()
    return upper + upper.triu(1).T
