"""Hyperparameter grids from the command line: `--tau 0.1 1.0` and `--hparam [ESTIMATOR:]NAME=V1,V2,...`.

    --hparam gumbel_rao:k=1,10,100     k of gumbel_rao only
    --hparam rebar:eta=0.5,1           eta of rebar only
    --hparam decay=0.5,0.9             every chosen estimator that declares decay

`--tau T ...` is `--hparam tau=T,...` for every chosen estimator that takes a temperature. Each
estimator is measured at every combination of its swept hyperparameters (its declared default for
the rest). Values are read with the type of the declared default and checked against the declared
constraint (estimators.hparams): a combination that breaks one is left out with the registry's
message, said once, before anything runs; a name or scope that matches nothing is a usage error.
"""
from __future__ import annotations

import dataclasses
import itertools


KINDS = {int: "an integer", float: "a number", bool: "true or false", str: "one of its named choices"}


class HParamUsageError(ValueError):
    """An --hparam that cannot be read: malformed, an unknown estimator, a name nobody takes."""


@dataclasses.dataclass(frozen=True)
class Sweep:
    """One --hparam: the estimator it is scoped to (None: every chosen one that declares it), the
    hyperparameter, and its values as written."""
    scope: str | None
    name: str
    values: tuple[str, ...]


def parse_hparam(text: str) -> Sweep:
    """'[ESTIMATOR:]NAME=V1,V2,...' -> Sweep; an argparse type."""
    target, equals, values = text.partition("=")
    scope, colon, name = target.rpartition(":")
    if not equals or not name.strip() or not values.strip() or (colon and not scope.strip()):
        raise HParamUsageError(f"--hparam {text!r}: write NAME=V1,V2,... or ESTIMATOR:NAME=V1,V2,... "
                               "(e.g. gumbel_rao:k=1,10,100 or tau=0.5,1)")
    parts = tuple(v.strip() for v in values.split(","))
    if any(not v for v in parts):
        raise HParamUsageError(f"--hparam {text!r} has an empty value; separate values with single commas")
    return Sweep(scope.strip() or None, name.strip(), parts)


def _typed(spec, name: str, text: str):
    decl = spec.hparam_decls[name]
    try:
        return decl.constraint.parse(text, decl.default)
    except (ValueError, KeyError):
        raise HParamUsageError(f"--hparam: {text!r} is not a value of {spec.name}'s {name} "
                               f"(its default is {decl.default!r}); give {KINDS.get(type(decl.default), 'a value')}") from None


def _label(sweep: Sweep) -> str:
    return f"{sweep.scope}:{sweep.name}" if sweep.scope else sweep.name


def check_sweeps(sweeps: list[Sweep], specs, taus: list[float] | None = None) -> None:
    """Refuse a scope naming an unknown or unchosen estimator, a name its scope does not take, an unscoped
    name no chosen estimator takes, and two settings of one thing (the later one would silently win)."""
    import estimators  # here, not above: parse_hparam is an argparse type, run before torch is imported
    from estimators.registry import unknown_name_message

    seen: dict[tuple, Sweep] = {}
    for sweep in sweeps:
        first = seen.setdefault((sweep.scope, sweep.name), sweep)
        if first is not sweep:
            raise HParamUsageError(f"--hparam {_label(sweep)} is given twice ({','.join(first.values)} and "
                                   f"{','.join(sweep.values)}); give every value in one: "
                                   f"{_label(sweep)}={','.join(dict.fromkeys(first.values + sweep.values))}")
    if taus and (None, "tau") in seen:
        raise HParamUsageError(f"--tau (or --tau-grid) and --hparam tau={','.join(seen[None, 'tau'].values)} both set every "
                               "estimator's temperature; give the values once (ESTIMATOR:tau=... sets one "
                               "estimator's beside --tau)")
    chosen = {spec.name: spec for spec in specs}
    for sweep in sweeps:
        if sweep.scope is not None:
            if sweep.scope not in estimators.REGISTRY:
                raise HParamUsageError("--hparam " + unknown_name_message("estimator", sweep.scope,
                                                                          list(estimators.REGISTRY)))
            if sweep.scope not in chosen:
                raise HParamUsageError(f"--hparam {sweep.scope}:{sweep.name}: {sweep.scope} is not among the chosen "
                                       f"estimators; add it to --estimators")
            spec = chosen[sweep.scope]
            if sweep.name not in spec.hparam_decls:
                raise HParamUsageError("--hparam: " + spec.hparam_violation({sweep.name: None}))
        elif not any(sweep.name in spec.hparam_decls for spec in specs):
            takers = sorted({name for spec in specs for name in spec.hparam_decls})
            raise HParamUsageError(f"--hparam {sweep.name}: no chosen estimator has a hyperparameter {sweep.name!r}; "
                                   f"theirs: {', '.join(takers) or 'none'} (scope one with ESTIMATOR:NAME=...)")


def settings_for(spec, sweeps: list[Sweep], taus: list[float] | None = None) -> tuple[list[dict], list[str]]:
    """Every combination of the spec's hyperparameters to measure (declared defaults for the ones not
    swept), and the registry's message for each combination left out."""
    values: dict[str, list] = {name: [decl.default] for name, decl in spec.hparam_decls.items()}
    if taus and "tau" in values:
        values["tau"] = [float(t) for t in taus]
    for sweep in sweeps:  # unscoped first, so that a scoped sweep of the same name wins
        if sweep.scope is None and sweep.name in values:
            values[sweep.name] = [_typed(spec, sweep.name, v) for v in sweep.values]
    for sweep in sweeps:
        if sweep.scope == spec.name:
            values[sweep.name] = [_typed(spec, sweep.name, v) for v in sweep.values]
    settings, left_out = [], []
    for combination in itertools.product(*values.values()):
        hparams = dict(zip(values, combination))
        why = spec.hparam_violation(hparams)
        if why:
            left_out.append(why)
        else:
            settings.append(spec.check_hparams(hparams))
    return settings, list(dict.fromkeys(left_out))


def swept_names(spec, sweeps: list[Sweep], taus: list[float] | None = None) -> list[str]:
    """The spec's hyperparameters that take more than their default in this grid."""
    names = [s.name for s in sweeps if (s.scope in (None, spec.name)) and s.name in spec.hparam_decls]
    if taus and "tau" in spec.hparam_decls:
        names.insert(0, "tau")
    return list(dict.fromkeys(names))
