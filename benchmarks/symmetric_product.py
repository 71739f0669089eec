"""A x B^T for a product known to be symmetric, rounded the same on any number of CPU threads.

The VAE's Gram matrices (benchmarks.tasks.vae.gram_matrix) are products (M x K) (K x M) with a long inner
dimension K = batch x layer width (51,200 for 100 images and a 512-wide layer). Given two threads, the
CPU's BLAS splits such a K between them and adds the halves (measured with torch 2.13's MKL: K >= 8192 on
this machine), so the same product rounds differently on 1 and 2 threads, and the encoder-gradient
figures differed (~1e-7 relatively) between a run in process and the same run on a pool or on Ray.

Here the upper triangle is cut into fixed square tiles of TILE x TILE, each computed on one thread (so each
tile's rounding depends only on its numbers), the tiles running side by side on a pool of as many Python
threads as torch has (torch releases the GIL in a product). The lower triangle is the upper one mirrored:
about half the multiply-adds of the full product, and an exactly symmetric result. Tiles of one size keep
the threads evenly loaded on any number of cores (bands of rows would shrink towards the diagonal).
On CUDA the plain product is used (one device, one order).

The pools live as long as the process (one per thread count): threads started per call would vanish before
benchmarks.timing.waiting_seconds read them, taking their wait for a CPU along.
"""
from __future__ import annotations

import concurrent.futures
import functools

import torch

from benchmarks.metrics import one_thread

TILE = 128  # the fixed blocking every thread count shares


@functools.lru_cache(maxsize=None)
def _pool(workers: int) -> concurrent.futures.ThreadPoolExecutor:
    return concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="symmetric-product")


def symmetric_product(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """left @ right.T for (M, K) tensors whose product is symmetric (left_i . right_j = left_j . right_i)."""
    if left.device.type != "cpu":
        return left @ right.T
    size = len(left)
    out = left.new_zeros(size, size)
    starts = range(0, size, TILE)
    tiles = [(row, column) for row in starts for column in starts if column >= row]

    def tile(rows: int, columns: int) -> None:
        # In the calling thread too: OpenMP's thread count is a per-thread setting, and a pool thread keeps
        # the default it started with (measured: without this line the tiles still rounded differently).
        torch.set_num_threads(1)
        torch.mm(left[rows:rows + TILE], right[columns:columns + TILE].T,
                 out=out[rows:rows + TILE, columns:columns + TILE])

    workers = min(torch.get_num_threads(), len(tiles))
    with one_thread():
        if workers > 1:
            futures = [_pool(workers).submit(tile, *where) for where in tiles]
            try:
                for future in futures:
                    future.result()
            except BaseException:
                # Ctrl-C or an error: drop the tiles not started, and let the running ones end before the thread
                # count is restored (a tile ending later would set it back to 1 for the whole process).
                for future in futures:
                    future.cancel()
                concurrent.futures.wait(futures)
                raise
        else:
            for where in tiles:
                tile(*where)
    out.triu_()
    out += out.triu(1).T
    return out
