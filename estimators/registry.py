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

from estimators.errors import NotApplicableError
from estimators.families import (CAPABILITIES, CAPABILITY_TEXT, base_distribution, distribution_class, family_name,
                                 family_of)
from estimators.hparams import HParam, HyperparameterError, declare, violation
from estimators.hparams import checked as checked_hparams


class UnknownEstimatorError(KeyError):
    """Raised for a name that is not registered; the message suggests the closest names."""

    def __str__(self) -> str:  # KeyError quotes its argument; show the sentence as written.
        return str(self.args[0])


class UnsupportedFamilyError(TypeError):
    """Raised when an estimator is applied to a distribution family it does not support."""


@dataclasses.dataclass(frozen=True)
class EstimatorSpec:
    """What the harness and the tests know about an estimator, declared as data.

    What it applies to: `families` (names, see estimators.families) and/or `needs`, capabilities of
    the distribution's class (`"rsample"`: reparameterised sampling; `"log_prob"`: sample and
    log_prob on a support that does not move with the parameters), as torch.distributions declares
    `has_rsample` and `support`. `hparam_decls` holds each hyperparameter's default and constraint
    (estimators.hparams); `min_samples` the smallest S it is defined for. The registry checks all of
    them at the call boundary, so estimator bodies hold only their maths.

    `factory(**hparams)` builds the callable `est(f, dist, num_samples=S) -> surrogate`; use `make`,
    which checks the hyperparameters first. For a stateful estimator (a class) it is a fresh instance
    built with them; for a stateless one the function with them bound (a call may still override one,
    e.g. a temperature schedule). `warmup_calls` is how many calls a stateful estimator needs before
    its state (e.g. a moving-average baseline) reaches its steady state; the harness makes them
    untimed, on the measured rows when the state is per batch element (`warmup_rows` None), or on
    batches of `warmup_rows` rows when the state is shared by all rows (a learned baseline network).
    `learns` names hyperparameters the estimator learns from their starting value (RELAX's tau), to
    which a schedule does not apply.
    """

    name: str
    factory: Callable[..., Callable[..., Any]]
    families: tuple[str, ...]
    unbiased: bool
    summary: str
    reference: str
    hparam_decls: Mapping[str, HParam] = dataclasses.field(default_factory=dict)
    needs: tuple[str, ...] = ()
    f_evals: int = 1
    f_evals_per_call: int = 0
    f_evals_per_coordinate: int = 0
    f_evals_per_state: int = 0
    min_samples: int = 1
    min_samples_why: str = ""
    stateful: bool = False
    warmup_calls: int = 0
    warmup_rows: int | None = None
    is_reference: bool = False
    learns: tuple[str, ...] = ()

    @property
    def hparams(self) -> dict[str, Any]:
        """Each hyperparameter's default."""
        return {name: decl.default for name, decl in self.hparam_decls.items()}

    def f_evals_per_estimate(self, num_samples: int, coordinates: int = 1, states: int | None = None) -> int:
        """Cost evaluations behind one estimate from num_samples samples of a `coordinates`-sized event:
        (f_evals + f_evals_per_coordinate * coordinates) per sample, plus f_evals_per_call once, plus
        f_evals_per_state for each of the `states` values of the support an enumeration visits."""
        per_states = self.f_evals_per_state * states if (self.f_evals_per_state and states) else 0
        return ((self.f_evals + self.f_evals_per_coordinate * coordinates) * num_samples + self.f_evals_per_call
                + per_states)

    @property
    def takes_tau(self) -> bool:
        return "tau" in self.hparam_decls

    def check_hparams(self, hparams: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The defaults updated with `hparams`, every value checked against its declaration."""
        return checked_hparams(self.name, dict(hparams or {}), dict(self.hparam_decls))

    def hparam_violation(self, hparams: Mapping[str, Any]) -> str | None:
        """Why these hyperparameters cannot be used (the one message format), or None."""
        for name, value in hparams.items():
            message = violation(self.name, name, value, dict(self.hparam_decls))
            if message:
                return message
        return None

    def make(self, **hparams) -> Callable[..., Any]:
        """A ready-to-call estimator bound to these hyperparameters (the defaults for the others);
        a fresh instance, with fresh state, for a stateful one."""
        return self.factory(**self.check_hparams(hparams))

    def check_num_samples(self, num_samples) -> None:
        if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples < self.min_samples:
            why = f" ({self.min_samples_why})" if self.min_samples_why else ""
            raise NotApplicableError(f"{self.name} needs num_samples >= {self.min_samples}, got {num_samples!r}{why}")

    @property
    def applies_to(self) -> str:
        """What it supports, in words: its families and/or the capabilities it needs."""
        parts = [",".join(self.families)] if self.families else []
        parts += [f"any with {' and '.join(self.needs)}"] if self.needs else []
        return " + ".join(parts) or "-"

    def supports(self, target) -> bool:
        """Whether it applies to a distribution (instance or class) or a family name."""
        if family_name(target) in self.families:
            return True
        if not self.needs:
            return False
        cls = distribution_class(target)
        return cls is not None and all(CAPABILITIES[need](cls) for need in self.needs)

    def check_supports(self, dist: D.Distribution) -> None:
        if not self.supports(dist):
            family = family_of(dist)
            able = [s.name for s in REGISTRY.values() if s.supports(dist)]
            needs = "; it needs " + " and ".join(CAPABILITY_TEXT[n] for n in self.needs) if self.needs else ""
            raise UnsupportedFamilyError(
                f"estimator {self.name!r} does not support the {family!r} family "
                f"({type(base_distribution(dist)).__name__}); it supports {self.applies_to}{needs}. "
                f"Estimators that support {family!r}: {able or 'none'}"
            )


REGISTRY: dict[str, EstimatorSpec] = {}


def register(
    name: str,
    *,
    families: tuple[str, ...] | list[str] = (),
    needs: tuple[str, ...] | list[str] = (),
    unbiased: bool,
    summary: str,
    reference: str,
    hparams: Mapping[str, Any] | None = None,
    f_evals: int = 1,
    f_evals_per_call: int = 0,
    f_evals_per_coordinate: int = 0,
    f_evals_per_state: int = 0,
    min_samples: int = 1,
    min_samples_why: str = "",
    warmup_calls: int = 0,
    warmup_rows: int | None = None,
    is_reference: bool = False,
    learns: tuple[str, ...] = (),
):
    """Decorator that registers a function (stateless) or a class (stateful) as an estimator.

    `hparams` maps each hyperparameter to `HParam(default, constraint)` (a bare default: any finite
    number). A function receives them as keyword arguments on every call; a class receives them when
    it is built (`__init__(self, *, name=default, ...)`) and is called as `est(f, dist, num_samples)`.
    The registry checks the family (or capabilities), num_samples >= min_samples and every
    hyperparameter before the estimator's own code runs.
    """
    unknown_needs = set(needs) - set(CAPABILITIES)
    if unknown_needs:
        raise ValueError(f"estimator {name!r} needs unknown capabilities {sorted(unknown_needs)}; "
                         f"known: {sorted(CAPABILITIES)}")
    if not families and not needs:
        raise ValueError(f"estimator {name!r} must declare the families it supports or the capabilities it needs "
                         f"(needs=('rsample',) or ('log_prob',))")
    decls = declare(hparams)

    def decorate(obj):
        if name in REGISTRY:
            raise ValueError(
                f"estimator {name!r} is already registered (by {REGISTRY[name].factory!r}); "
                "pick another name or unregister the old one first"
            )
        stateful = isinstance(obj, type)
        if stateful:
            _check_at_the_boundary_of_class(name, obj)
            checked, factory = obj, obj
        else:
            checked = _checking_function(name, obj)
            factory = functools.partial(functools.partial, checked)
        REGISTRY[name] = EstimatorSpec(
            name=name, factory=factory, families=tuple(families), needs=tuple(needs), unbiased=unbiased,
            summary=summary, reference=reference, hparam_decls=decls, f_evals=f_evals,
            f_evals_per_call=f_evals_per_call, f_evals_per_coordinate=f_evals_per_coordinate,
            f_evals_per_state=f_evals_per_state, min_samples=min_samples, min_samples_why=min_samples_why,
            stateful=stateful, warmup_calls=warmup_calls, warmup_rows=warmup_rows, is_reference=is_reference,
            learns=tuple(learns),
        )
        return checked

    return decorate


def _checking_function(name: str, call):
    """The function with the registry's checks in front: family, num_samples, hyperparameters."""

    @functools.wraps(call)
    def checked(f, dist, num_samples: int = 1, **hparams):
        spec = REGISTRY[name]
        spec.check_supports(dist)
        spec.check_num_samples(num_samples)
        return call(f, dist, num_samples, **spec.check_hparams(hparams))
    return checked


def _check_at_the_boundary_of_class(name: str, cls: type) -> None:
    """A stateful estimator takes its hyperparameters when built (checked there) and none per call."""
    init, call = cls.__init__, cls.__call__

    @functools.wraps(init)
    def checked_init(self, **hparams):
        self.hparams = REGISTRY[name].check_hparams(hparams)
        init(self, **self.hparams)

    @functools.wraps(call)
    def checked_call(self, f, dist, num_samples: int = 1, **hparams):
        spec = REGISTRY[name]
        if hparams:
            raise HyperparameterError(
                f"estimator {name!r} is stateful and takes its hyperparameters when built, not per call "
                f"(got {', '.join(f'{k}={v!r}' for k, v in hparams.items())}); build it with "
                f"estimators.get_spec({name!r}).make({', '.join(f'{k}={v!r}' for k, v in hparams.items())})")
        spec.check_supports(dist)
        spec.check_num_samples(num_samples)
        return call(self, f, dist, num_samples)

    cls.__init__, cls.__call__ = checked_init, checked_call


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


def get(name: str, **hparams) -> Callable[..., Any]:
    """A ready-to-call estimator by name: `get("reinforce")(f, dist, num_samples=8)`,
    `get("gumbel_softmax", tau=0.5)`; hyperparameters are checked against their declarations."""
    return get_spec(name).make(**hparams)


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


ENTRY_POINT_GROUP = "gradbench.estimators"


def load_entry_points(group: str = ENTRY_POINT_GROUP) -> list[str]:
    """Import every installed plugin that declares an entry point in `group` (as pytest and timm load
    theirs), so its estimators register themselves; returns the names loaded. A plugin that fails to
    load is reported with a warning naming it, and the others still load."""
    import importlib.metadata
    import warnings

    loaded = []
    for entry in importlib.metadata.entry_points(group=group):
        try:
            entry.load()
            loaded.append(entry.name)
        except Exception as error:  # one broken plugin must not take the suite down
            warnings.warn(f"gradbench plugin {entry.name!r} ({entry.value}) from entry-point group {group!r} "
                          f"failed to load: {type(error).__name__}: {error}", stacklevel=2)
    return loaded
