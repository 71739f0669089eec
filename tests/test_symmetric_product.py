"""benchmarks.symmetric_product: the Gram matrices' product, half computed, rounded alike on 1 and 2 threads."""
import pytest
import torch

from benchmarks.symmetric_product import TILE, symmetric_product


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def factors(rows: int, inner: int, seed: int = 0):
    """(left, right) with left @ right.T symmetric: right = left A for a symmetric A, as in the VAE's Gram."""
    generator = torch.Generator().manual_seed(seed)
    left = torch.randn(rows, 50, inner // 50, generator=generator)
    half = torch.randn(50, 50, generator=generator)
    return left.flatten(1), ((half @ half.T) @ left).flatten(1)


@pytest.mark.parametrize("rows", [1, TILE - 1, TILE, 3 * TILE + 7])
def test_equals_the_plain_product_and_is_exactly_symmetric(rows):
    left, right = factors(rows, 500)
    product = symmetric_product(left, right)
    torch.testing.assert_close(product, left @ right.T, rtol=1e-5, atol=1e-5 * float((left @ right.T).abs().max()))
    assert torch.equal(product, product.T)


def test_rounds_the_same_on_one_and_two_threads(threads):
    """An inner dimension of 20,000 (as 100 images x a 200-wide layer), which torch 2.13's MKL splits between
    two threads, so that a plain product rounds differently on 1 and 2 (measured here)."""
    left, right = factors(2 * TILE + 30, 20_000)
    results = {}
    for count in (1, 2):
        threads(count)
        results[count] = symmetric_product(left, right)
    assert torch.equal(results[1], results[2])
