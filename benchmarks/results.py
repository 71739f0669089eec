"""A run folder: results.csv (for people), results.json (for machines) and run.json (metadata).

Every finished cell is written at once, atomically (a temporary file renamed over the old one), so
an interrupted sweep keeps every finished cell and `--resume` skips them.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pandas as pd

RESULTS_CSV = "results.csv"
RESULTS_JSON = "results.json"
RUN_JSON = "run.json"


def atomic_write(path: Path, text: str) -> None:
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class CorruptRunError(ValueError):
    pass


def read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CorruptRunError(f"{path} is not valid JSON ({error}); it was not written by a finished "
                              "gradbench step: move it away, or start a new run with another --out") from None


class RunFolder:
    """The rows of a run, kept in memory and on disk in step."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.rows: list[dict] = []
        if (self.path / RESULTS_JSON).exists():
            self.rows = read_json(self.path / RESULTS_JSON)

    @property
    def done(self) -> set[str]:
        return {row["cell_id"] for row in self.rows}

    def holds_run(self) -> bool:
        return (self.path / RUN_JSON).exists()

    def add(self, row: dict) -> None:
        self.rows = [r for r in self.rows if r["cell_id"] != row["cell_id"]] + [row]
        self.path.mkdir(parents=True, exist_ok=True)
        # Compact: json's C encoder (indent makes it use the pure-Python one, measured 9 s of a 340-cell sweep).
        atomic_write(self.path / RESULTS_JSON, json.dumps(self.rows))
        atomic_write(self.path / RESULTS_CSV, pd.DataFrame(self.rows).to_csv(index=False))

    def read_meta(self) -> dict:
        path = self.path / RUN_JSON
        return read_json(path) if path.exists() else {}

    def write_meta(self, meta: dict) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path / RUN_JSON, json.dumps(meta, indent=1, default=str))
