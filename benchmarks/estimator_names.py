"""The built-in estimators' names without importing them (they import torch: 1.4 s here), so that a mistyped
`--estimators` name is refused right after parsing, like any other argument error.

The names are read from the source of the `estimators` package: every `register("<name>", ...)` call, as
decorator or call (ast, ~50 ms). tests/test_cli.py keeps them equal to the registry's. Plugins (`--import`,
installed entry points) register names only when imported: with any of them, the registry decides, later.
"""
from __future__ import annotations

import ast
import difflib
import fnmatch
import importlib.metadata
import importlib.util
import sys
from pathlib import Path

ENTRY_POINT_GROUP = "gradbench.estimators"  # estimators.registry.ENTRY_POINT_GROUP


def builtin_names() -> list[str]:
    """Every name a `register(...)` call of the estimators package gives, read from its source."""
    spec = importlib.util.find_spec("estimators")
    if spec is None or not spec.submodule_search_locations:
        return []
    names = set()
    for path in Path(next(iter(spec.submodule_search_locations))).glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "register"
                    and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                names.add(node.args[0].value)
    return sorted(names)


def unknown_estimator_messages(patterns: list[str] | None, imports: list[str]) -> list[str]:
    """The registry's message ('unknown estimator ... Did you mean ...? Known: ...') for each --estimators
    pattern that matches no built-in estimator, where that is known without torch: none when other names may
    exist (--import, an installed entry point, or estimators already imported here, where a caller may have
    registered its own; the registry then answers at no cost)."""
    if not patterns or imports or "estimators" in sys.modules \
            or importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        return []
    known = builtin_names()
    return [unknown_name_message("estimator", pattern, known) for pattern in patterns
            if known and not any(fnmatch.fnmatchcase(name, pattern) for name in known)]


def unknown_name_message(kind: str, name: str, known: list[str]) -> str:
    """estimators.registry.unknown_name_message, which cannot be imported without the estimators (and torch);
    tests/test_cli.py keeps the two giving the same messages."""
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.4)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown {kind} {name!r}.{hint} Known: {', '.join(sorted(known))}"
