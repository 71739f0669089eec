"""One entry that renders any run: `render(path)` reads the kind of run and calls its renderer.

A kind of run (run.json's "kind") has one renderer, registered here by name as "module:function" so
that rendering one kind never imports another's code. A new task registers its own with
`register_renderer("mykind", "mypackage.report:render")` (or a callable), not a new branch. The CLIs
(`python -m benchmarks.variance|vae|trajectory`) and `python -m reports DIR` all call `render`.

A folder without a kind (written before run.json had one) is a variance sweep; a .json file is a
pytest-benchmark file.
"""
from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Callable

from reports.load import NotARunError

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
    """'benchmark' for a JSON file, else the run folder's kind (run.json), 'variance' when it has none."""
    path = Path(path)
    if path.suffix == ".json" and path.is_file():
        return "benchmark"
    if not (path / "results.csv").exists():
        raise NotARunError(f"{path} holds no results.csv; pass the --out folder of a python -m benchmarks.variance, "
                           "vae or trajectory run, or a pytest --benchmark-json file")
    meta = path / "run.json"
    if not meta.exists():
        return "variance"
    try:
        return json.loads(meta.read_text()).get("kind", "variance")
    except json.JSONDecodeError as error:
        raise ValueError(f"{meta} is not valid JSON ({error}); the run folder is damaged") from None


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
