"""One entry that renders any run: `render(path)` reads the kind of run and calls its renderer.

A kind of run (run.json's "kind") has one renderer, registered here by name as "module:function" so
that rendering one kind never imports another's code. A new task registers its own with
`register_renderer("mykind", "mypackage.report:render")` (or a callable), not a new branch. The CLIs
(`python -m benchmarks.variance|vae|trajectory`) and `python -m reports DIR` all call `render`.

A folder without a kind (written before run.json had one) is told by its columns; a .json file is a
pytest-benchmark file.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Callable

from reports.load import run_kind

RENDERERS: dict[str, str | Callable[[Path], Path]] = {
    "variance": "reports.html:render_report",
    "vae": "reports.vae:render_vae_report",
    "trajectory": "reports.trajectory:render_trajectory_report",
    "benchmark": "reports.throughput:render_benchmark_json",
}


def register_renderer(kind: str, renderer: str | Callable[[Path], Path]) -> None:
    if kind in RENDERERS:
        raise ValueError(f"a renderer for {kind!r} runs is already registered ({RENDERERS[kind]})")
    RENDERERS[kind] = renderer


def kind_of(path: str | Path) -> str:
    """'benchmark' for a JSON file, else the run folder's kind (reports.load.run_kind)."""
    return run_kind(path)


def renderer_for(kind: str) -> Callable[[Path], Path]:
    target = RENDERERS.get(kind)
    if target is None:
        raise ValueError(f"no renderer for {kind!r} runs; known kinds: {', '.join(RENDERERS)} "
                         "(a task adds one with reports.renderers.register_renderer)")
    if callable(target):
        return target
    module, _, function = target.partition(":")
    return getattr(importlib.import_module(module), function)


def render(path: str | Path, **options) -> Path:
    """Render the report of a run folder or benchmark JSON file; return the page's path."""
    return renderer_for(kind_of(path))(Path(path), **options)
