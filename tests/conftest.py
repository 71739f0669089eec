"""Fixtures and collection hooks of the tests (helpers live in tests/helpers.py)."""
from __future__ import annotations

import pytest
import torch

import estimators
from tests.helpers import ALPHA, DEVICES, MAX_CHECKS, SUITE_FALSE_FAILURE_RATE


def pytest_configure(config):
    config.addinivalue_line("markers", "statistical(checks=1): makes `checks` statistical checks at level "
                                       "tests.helpers.ALPHA each")


def statistical_checks(items) -> int:
    return sum(marker.kwargs.get("checks", 1) for item in items for marker in item.iter_markers("statistical"))


def pytest_collection_modifyitems(config, items):
    checks = statistical_checks(items)
    if checks > MAX_CHECKS:
        raise pytest.UsageError(
            f"{checks} statistical checks at level {ALPHA:g} each exceed the suite's false-failure budget of "
            f"{SUITE_FALSE_FAILURE_RATE:g} ({MAX_CHECKS} checks); lower tests.helpers.ALPHA (and raise N to keep "
            "the power) rather than add checks beyond it")
    config._statistical_checks = checks


def pytest_report_header(config):
    return (f"statistical checks: level {ALPHA:g} each, at most {MAX_CHECKS} in all, so the suite's false-failure "
            f"rate is <= {SUITE_FALSE_FAILURE_RATE:g}")


@pytest.fixture(autouse=True)
def _seeded_global_rng():
    """Every test starts from the same global RNG state, so a test that draws without its own
    generator gets the same numbers whichever tests ran before it (or whether it runs alone)."""
    torch.manual_seed(0)


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param


@pytest.fixture
def estimator_that_diverges():
    """A registered estimator whose surrogate turns NaN from its 15th call on (a diverging run)."""
    calls = []

    @estimators.register("test_diverging", families=("categorical",), unbiased=False, summary="s", reference="r")
    def diverging(f, dist, num_samples=1):
        calls.append(1)
        value = estimators.get("reinforce")(f, dist, num_samples)
        return value * float("nan") if len(calls) >= 15 else value

    yield "test_diverging"
    estimators.unregister("test_diverging")
