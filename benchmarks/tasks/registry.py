"""Problems by name: registered toy problems and their evaluation points, with did-you-mean errors.

An id is `<family id>` (the family's symmetric point, as in earlier releases) or
`<family id>@<key>=<value>,...`, e.g. `tucker-0.45@theta=-2`, `gauss-square-3@mu=-0.5,sigma=0.5`,
`poly-2@logits=-3..3` (evenly spaced over the bits), `dirichlet-quadratic-4@alpha=[0.3,0.5,2,5]`.
Registered points are listed by `--list` and picked by globs; the default sweep measures each family's
symmetric point and one off-centre point per distribution family (it must stay under a minute on 2 CPU
cores); families registered with default=False (the reparameterisable ones of tasks/reparameterisable.py)
are measured only when asked for (`--objectives 'cauchy-*'`, `'*'`). Any other point of a family is built on demand from its id and checked against its support. The symmetric point also answers to its explicit form
(`tucker-0.45@theta=0`), so the glob `'tucker-0.45@*'` picks every registered point of the family.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import re
from typing import Callable

from estimators.registry import matching_names, unknown_name_message
from benchmarks.tasks.protocol import GradientProblem, InvalidPointError, check_in_support


class UnknownProblemError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its argument; show the sentence as written.
        return str(self.args[0])


@dataclasses.dataclass(frozen=True)
class Span:
    """`lo..hi` in an id: values evenly spaced from lo to hi (one per coordinate)."""
    lo: float
    hi: float

    def __str__(self) -> str:
        return format_value(self)


def format_number(value: float) -> str:
    """The shortest text that reads back as the same float (-2 for -2.0, 0.12345678 as given)."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def format_value(value) -> str:
    if isinstance(value, (tuple, list)):
        return "[" + ",".join(format_number(v) for v in value) + "]"
    return f"{format_number(value.lo)}..{format_number(value.hi)}" if isinstance(value, Span) else format_number(value)


def format_point(point: dict) -> str:
    return ",".join(f"{key}={format_value(value)}" for key, value in point.items())


_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


def parse_point(text: str, problem_id: str) -> dict:
    """`a=1,b=-0.5..2,c=[1,2]` -> {'a': 1.0, 'b': Span(-0.5, 2.0), 'c': (1.0, 2.0)}."""
    pair = r"([A-Za-z_]\w*)=(\[[^\]]*\]|[^,\[\]]+)"
    if not re.fullmatch(rf"{pair}(,{pair})*", text):
        raise InvalidPointError(f"point {problem_id!r}: write the point as key=value pairs separated by commas, "
                                "e.g. 'tucker-0.45@theta=-2' or 'gauss-square-3@mu=-0.5,sigma=0.5'")
    point = {}
    for key, value in re.findall(pair, text):
        if key in point:
            raise InvalidPointError(f"point {problem_id!r} gives {key} twice")
        if re.fullmatch(_NUMBER, value):
            point[key] = float(value)
        elif match := re.fullmatch(rf"({_NUMBER})\.\.({_NUMBER})", value):
            point[key] = Span(float(match.group(1)), float(match.group(2)))
        elif re.fullmatch(rf"\[\s*{_NUMBER}(\s*,\s*{_NUMBER})*\s*\]", value):
            point[key] = tuple(float(v) for v in value.strip("[]").split(","))
        else:
            raise InvalidPointError(f"point {problem_id!r}: {key}={value!r} is not a number, a range lo..hi or a "
                                    "list [a,b,...]")
    return point


@dataclasses.dataclass(frozen=True)
class ProblemFamily:
    """A family of problems that differ only in their evaluation point.

    `build(**point)` makes the problem at a point; `symmetric` is the family's historical point
    (logits 0, sigma 1, ...), whose problem keeps the bare family id."""

    id: str
    build: Callable[..., GradientProblem]
    symmetric: dict
    keys_help: str = ""
    extra_keys: tuple[str, ...] = ()   # another way to give the point (a probability for a logit)
    span_keys: tuple[str, ...] = ()    # keys that also take a range lo..hi

    def at(self, **point) -> GradientProblem:
        unknown = set(point) - set(self.symmetric) - set(self.extra_keys)
        if unknown:
            raise InvalidPointError(f"point of {self.id!r} has no {', '.join(sorted(unknown))}; its point is set "
                                    f"by {self.keys_help or ', '.join(self.symmetric)}")
        if set(point) & set(self.extra_keys) and set(point) & set(self.symmetric):
            raise InvalidPointError(f"point of {self.id!r} gives both {' and '.join(sorted(point))}; give one of "
                                    f"{self.keys_help}")
        for key, value in point.items():
            expected = type(self.symmetric.get(key, 0.0))
            if isinstance(value, Span) and key in self.span_keys:
                continue
            if not isinstance(value, expected):
                kind = {float: "a number", tuple: "a list [a,b,...]"}[expected]
                raise InvalidPointError(f"point of {self.id!r}: {key}={format_value(value)} must be {kind}"
                                        + (" or a range lo..hi" if key in self.span_keys else ""))
        return check_in_support(self.build(**point))


def point_id(family_id: str, point: dict, symmetric: dict) -> tuple[str, str]:
    """(problem id, evaluation-point text): the bare family id at the symmetric point."""
    text = format_point(point)
    return (family_id if point == symmetric else f"{family_id}@{text}"), text


FAMILIES: dict[str, ProblemFamily] = {}
PROBLEMS: dict[str, GradientProblem] = {}   # the registered points, in registration order
DEFAULT: list[str] = []                      # the registered points the default sweep measures
ALIASES: dict[str, str] = {}                 # explicit form of a symmetric point -> its id
_ON_DEMAND: dict[str, GradientProblem] = {}


def add_family(family: ProblemFamily, points: list[dict] = (), more_points: list[dict] = (),
               default: bool = True) -> None:
    """Register a family's symmetric point and its off-centre `points` as part of the default sweep, and
    `more_points`, registered (tests, globs, --list) but measured only when asked for. With
    default=False every point, the symmetric one included, is outside the default sweep."""
    if family.id in FAMILIES:
        raise ValueError(f"problem family {family.id!r} is already defined")
    FAMILIES[family.id] = family
    for point in [family.symmetric, *points]:
        problem = add(family.at(**point))
        if default:
            DEFAULT.append(problem.id)
    for point in more_points:
        add(family.at(**point))
    ALIASES[f"{family.id}@{format_point(family.symmetric)}"] = family.id


def add(problem: GradientProblem) -> GradientProblem:
    if problem.id in PROBLEMS:
        raise ValueError(f"problem {problem.id!r} is already defined")
    PROBLEMS[problem.id] = problem
    return problem


def get_problem(problem_id: str) -> GradientProblem:
    """A registered problem, or a family's problem at the point its id names (built and checked)."""
    problem_id = ALIASES.get(problem_id, problem_id)
    if problem_id in PROBLEMS:
        return PROBLEMS[problem_id]
    if problem_id in _ON_DEMAND:
        return _ON_DEMAND[problem_id]
    family_id, _, point_text = problem_id.partition("@")
    if not point_text or family_id not in FAMILIES:
        known = list(PROBLEMS) if not point_text else list(FAMILIES)
        raise UnknownProblemError(unknown_name_message("problem" if not point_text else "problem family",
                                                       problem_id if not point_text else family_id, known)
                                  + ("" if point_text else ". A point of a family is written "
                                     "'<family>@key=value', e.g. 'tucker-0.45@theta=-2'")) from None
    problem = FAMILIES[family_id].at(**parse_point(point_text, problem_id))
    if problem.id in PROBLEMS:  # the same point written another way (theta=-2.0 for theta=-2)
        return PROBLEMS[problem.id]
    _ON_DEMAND[problem_id] = problem
    return problem


def list_problems(patterns: list[str] | None = None) -> list[GradientProblem]:
    """Registered problems matched by ids or glob patterns, in registration order; an id naming an
    unregistered point of a family builds it. A pattern that matches nothing is an error. With no
    patterns: the default sweep's problems (`['*']` lists every registered one)."""
    if not patterns:
        return [PROBLEMS[i] for i in DEFAULT]
    names = list(PROBLEMS) + list(ALIASES)
    chosen, extra = [], []
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(name, pattern) for name in names) and "@" in pattern \
                and not any(c in pattern for c in "*?"):
            extra.append(get_problem(pattern))
        else:
            chosen += [ALIASES.get(n, n) for n in matching_names(
                [pattern], names, lambda _: UnknownProblemError(unknown_name_message("problem", pattern, list(PROBLEMS))),
                "problem")]
    ordered = [PROBLEMS[i] for i in PROBLEMS if i in set(chosen)]
    return ordered + [p for i, p in enumerate(extra) if p not in ordered and p not in extra[:i]]
