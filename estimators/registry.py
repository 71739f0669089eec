"""The estimator registry: register by decorator, look up by plain name, list with metadata.

Modelled on timm's and gymnasium's registries: names are plain strings, registering a name twice
is an error, and an unknown name gets the closest matches and the full list.
"""
from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import functools
from typing import Any, Callable, Mapping

import torch.distributions as D

from estimators.families import base_distribution, family_of


class UnknownEstimatorError(KeyError):
    """Raised for a name that is not registered; the message suggests the closest names."""

    def __str__(self) -> str:  # KeyError quotes its argument; show the sentence as written.
        return str(self.args[0])


class UnsupportedFamilyError(TypeError):
    """Raised when an estimator is applied to a distribution family it does not support."""


@dataclasses.dataclass(frozen=True)
class EstimatorSpec:
    """What the harness and the tests know about an estimator, declared as data.

    `factory` builds the callable `est(f, dist, num_samples=S, **hparams) -> surrogate`; for a
    stateless estimator it returns the function itself, for a stateful one a fresh instance with
    its state reset. `warmup_calls` is how many calls a stateful estimator needs before its state
    (e.g. a moving-average baseline) reaches its steady state; the harness makes them untimed, on
    the measured rows when the state is per batch element (`warmup_rows` None), or on batches of
    `warmup_rows` rows when the state is shared by all rows (a learned baseline network).
    """

    name: str
    factory: Callable[[], Callable[..., Any]]
    families: tuple[str, ...]
    unbiased: bool
    summary: str
    reference: str
    hparams: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    f_evals: int = 1
    f_evals_per_call: int = 0
    f_evals_per_coordinate: int = 0
    min_samples: int = 1
    stateful: bool = False
    warmup_calls: int = 0
    warmup_rows: int | None = None
    is_reference: bool = False

    def f_evals_per_estimate(self, num_samples: int, coordinates: int = 1) -> int:
        """Cost evaluations behind one estimate from num_samples samples of a `coordinates`-sized event:
        (f_evals + f_evals_per_coordinate * coordinates) per sample, plus f_evals_per_call once."""
        return (self.f_evals + self.f_evals_per_coordinate * coordinates) * num_samples + self.f_evals_per_call

    @property
    def takes_tau(self) -> bool:
        return "tau" in self.hparams

    def make(self) -> Callable[..., Any]:
        """A ready-to-call estimator (a fresh instance for stateful ones)."""
        return self.factory()

    def supports(self, dist: D.Distribution) -> bool:
        return family_of(dist) in self.families

    def check_supports(self, dist: D.Distribution) -> None:
        family = family_of(dist)
        if family not in self.families:
            able = [s.name for s in REGISTRY.values() if family in s.families]
            raise UnsupportedFamilyError(
                f"estimator {self.name!r} does not support the {family!r} family "
                f"({type(base_distribution(dist)).__name__}); it supports {list(self.families)}. "
                f"Estimators that support {family!r}: {able or 'none'}"
            )


REGISTRY: dict[str, EstimatorSpec] = {}


def register(
    name: str,
    *,
    families: tuple[str, ...] | list[str],
    unbiased: bool,
    summary: str,
    reference: str,
    hparams: Mapping[str, Any] | None = None,
    f_evals: int = 1,
    f_evals_per_call: int = 0,
    f_evals_per_coordinate: int = 0,
    min_samples: int = 1,
    warmup_calls: int = 0,
    warmup_rows: int | None = None,
    is_reference: bool = False,
):
    """Decorator that registers a function (stateless) or a class (stateful) as an estimator.

    A class is instantiated with no arguments for every `make()`, so its state starts fresh.
    """

    def decorate(obj):
        if name in REGISTRY:
            raise ValueError(
                f"estimator {name!r} is already registered (by {REGISTRY[name].factory!r}); "
                "pick another name or unregister the old one first"
            )
        stateful = isinstance(obj, type)
        if stateful:
            obj.__call__ = _checking_family(name, obj.__call__, method=True)
            checked = obj
        else:
            checked = _checking_family(name, obj)
        REGISTRY[name] = EstimatorSpec(
            name=name,
            factory=checked if stateful else (lambda: checked),
            families=tuple(families),
            unbiased=unbiased,
            summary=summary,
            reference=reference,
            hparams=dict(hparams or {}),
            f_evals=f_evals,
            f_evals_per_call=f_evals_per_call,
            f_evals_per_coordinate=f_evals_per_coordinate,
            min_samples=min_samples,
            stateful=stateful,
            warmup_calls=warmup_calls,
            warmup_rows=warmup_rows,
            is_reference=is_reference,
        )
        return checked

    return decorate


def _checking_family(name: str, call, method: bool = False):
    """Wrap an estimator so that a distribution of an unsupported family gets a clear error."""

    if method:
        @functools.wraps(call)
        def checked_method(self, f, dist, *args, **kwargs):
            REGISTRY[name].check_supports(dist)
            return call(self, f, dist, *args, **kwargs)
        return checked_method

    @functools.wraps(call)
    def checked(f, dist, *args, **kwargs):
        REGISTRY[name].check_supports(dist)
        return call(f, dist, *args, **kwargs)
    return checked


def unregister(name: str) -> None:
    """Remove a registration (for tests and interactive work)."""
    get_spec(name)
    del REGISTRY[name]


def unknown_name_message(kind: str, name: str, known: list[str]) -> str:
    """'unknown <kind> <name>. Did you mean ...? Known: ...': the one message for every registry."""
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.4)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown {kind} {name!r}.{hint} Known: {', '.join(sorted(known))}"


def get_spec(name: str) -> EstimatorSpec:
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnknownEstimatorError(unknown_name_message("estimator", name, list(REGISTRY))) from None


def get(name: str) -> Callable[..., Any]:
    """A ready-to-call estimator by name: `get("reinforce")(f, dist, num_samples=8)`."""
    return get_spec(name).make()


def list_estimators(patterns: list[str] | None = None, include_reference: bool = True) -> list[EstimatorSpec]:
    """Registered specs in name order, filtered by names or glob patterns.

    A pattern that matches nothing is an error (a typo should not silently shrink a sweep).
    """
    if not patterns:
        return [s for s in sorted(REGISTRY.values(), key=lambda s: s.name) if include_reference or not s.is_reference]
    names = matching_names(patterns, sorted(REGISTRY), lambda message: UnknownEstimatorError(message), "estimator")
    return [REGISTRY[name] for name in names]


def matching_names(patterns: list[str], known: list[str], error, kind: str) -> list[str]:
    """The names in `known` (in its order) matched by any of the glob patterns; a pattern that
    matches nothing raises error(message) with the closest names."""
    chosen = set()
    for pattern in patterns:
        hits = [name for name in known if fnmatch.fnmatchcase(name, pattern)]
        if not hits:
            raise error(unknown_name_message(kind, pattern, known))
        chosen.update(hits)
    return [name for name in known if name in chosen]
