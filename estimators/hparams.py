"""Hyperparameters as declared data: a default and a constraint, checked once at the boundary.

In the spirit of torch.distributions' `arg_constraints`: an estimator declares

    hparams={"tau": HParam(1.0, greater_than(0)), "k": HParam(10, integer_at_least(1))}

and the registry checks every value (from a call, a sweep or a CLI) against it with one message
format that names the estimator, the hyperparameter, the constraint and the value. The sweep uses
the same check to leave a cell out, with its reason, before it runs.

The constraints here work on plain Python numbers (a check costs well under a microsecond, so it
can run on every call); their text reads as maths ("tau > 0", "decay in [0, 1)").
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any


class HyperparameterError(ValueError):
    """A hyperparameter that the estimator does not take, or a value that breaks its constraint."""


class Constraint:
    """A set of allowed values; `describe(name)` writes it as maths, `check` tests a value."""

    def check(self, value) -> bool:
        raise NotImplementedError

    def describe(self, name: str) -> str:
        raise NotImplementedError

    def parse(self, text: str, default):
        """A value from command-line text, typed like the default (int, float or str)."""
        if isinstance(default, bool):
            return {"true": True, "false": False}[text.lower()]
        if isinstance(default, int):
            number = float(text)
            return int(number) if number.is_integer() else number  # the check reports a non-integer
        if isinstance(default, float):
            return float(text)
        return text


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclasses.dataclass(frozen=True)
class Bound(Constraint):
    """value > lower (strict) or value >= lower, and finite; optionally below an upper bound."""
    lower: float = -math.inf
    strict_lower: bool = True
    upper: float = math.inf
    strict_upper: bool = True
    integer: bool = False

    def check(self, value) -> bool:
        if not _is_number(value) or not math.isfinite(value):
            return False
        if self.integer and not float(value).is_integer():
            return False
        above = value > self.lower if self.strict_lower else value >= self.lower
        below = value < self.upper if self.strict_upper else value <= self.upper
        return above and below

    def describe(self, name: str) -> str:
        kind = "an integer" if self.integer else "a finite number"
        lo_finite, hi_finite = math.isfinite(self.lower), math.isfinite(self.upper)
        if lo_finite and hi_finite:
            return (f"{name} in {'(' if self.strict_lower else '['}{self.lower:g}, {self.upper:g}"
                    f"{')' if self.strict_upper else ']'}" + (", an integer" if self.integer else ""))
        if lo_finite:
            return f"{name} {'>' if self.strict_lower else '>='} {self.lower:g}" + (", an integer" if self.integer else "")
        if hi_finite:
            return f"{name} {'<' if self.strict_upper else '<='} {self.upper:g}" + (", an integer" if self.integer else "")
        return f"{name} {kind}"


@dataclasses.dataclass(frozen=True)
class OneOf(Constraint):
    """One of a few named choices (e.g. REBAR's coupling of the conditional noise)."""
    choices: tuple

    def check(self, value) -> bool:
        return value in self.choices

    def describe(self, name: str) -> str:
        return f"{name} one of {', '.join(repr(c) for c in self.choices)}"


def greater_than(lower: float) -> Bound:
    return Bound(lower=lower)


def at_least(lower: float) -> Bound:
    return Bound(lower=lower, strict_lower=False)


def interval(lower: float, upper: float, closed_lower: bool = True, closed_upper: bool = False) -> Bound:
    return Bound(lower=lower, strict_lower=not closed_lower, upper=upper, strict_upper=not closed_upper)


def integer_at_least(lower: int) -> Bound:
    return Bound(lower=lower, strict_lower=False, integer=True)


def one_of(*choices) -> OneOf:
    return OneOf(tuple(choices))


REAL = Bound()


@dataclasses.dataclass(frozen=True)
class HParam:
    """A declared hyperparameter: its default, its constraint, and (optionally) why the constraint holds."""
    default: Any
    constraint: Constraint = REAL
    why: str = ""

    def __post_init__(self):
        if not self.constraint.check(self.default):
            raise ValueError(f"the default {self.default!r} breaks its own constraint "
                             f"{self.constraint.describe('value')}")


def declare(hparams) -> dict[str, HParam]:
    """name -> HParam from a registration's `hparams`; a bare default means 'any finite number' (or,
    for a string, that string only)."""
    declared = {}
    for name, value in dict(hparams or {}).items():
        if isinstance(value, HParam):
            declared[name] = value
        elif isinstance(value, str):
            declared[name] = HParam(value, one_of(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            declared[name] = HParam(value, Bound(integer=True))
        else:
            declared[name] = HParam(value)
    return declared


def violation(estimator: str, name: str, value, declared: dict[str, HParam]) -> str | None:
    """The one message for a value the estimator cannot take, or None when it is fine."""
    if name not in declared:
        takes = ", ".join(f"{n} (default {h.default!r})" for n, h in declared.items()) or "no hyperparameters"
        return f"estimator {estimator!r} has no hyperparameter {name!r}; it takes {takes}"
    decl = declared[name]
    if decl.constraint.check(value):
        return None
    why = f" ({decl.why})" if decl.why else ""
    return (f"estimator {estimator!r}: hyperparameter {name}={value!r} breaks its constraint "
            f"{decl.constraint.describe(name)}{why}; its default is {name}={decl.default!r}")


def checked(estimator: str, values: dict, declared: dict[str, HParam]) -> dict:
    """The declared defaults updated with `values`, every one checked; raises HyperparameterError."""
    for name, value in values.items():
        message = violation(estimator, name, value, declared)
        if message:
            raise HyperparameterError(message)
    full = {name: decl.default for name, decl in declared.items()}
    full.update(values)
    # An integer hyperparameter given as 10.0 is used as the integer 10.
    return {name: int(v) if isinstance(declared[name].constraint, Bound) and declared[name].constraint.integer
            and _is_number(v) else v for name, v in full.items()}
