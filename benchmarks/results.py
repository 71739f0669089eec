"""A run folder: results.csv (for people), results.json (for machines) and run.json (metadata).

Every finished cell is written at once, atomically (a temporary file renamed over the old one), so
an interrupted sweep keeps every finished cell and `--resume` skips them.
"""
from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pandas as pd

from benchmarks import run_lock
from reports.files import atomic_write  # noqa: F401  (the run folder's writes; others import it from here)

RESULTS_CSV = "results.csv"
RESULTS_JSON = "results.json"
RUN_JSON = "run.json"
RunLockedError = run_lock.RunLockedError  # the CLIs import it from here


class CorruptRunError(ValueError):
    pass


def read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CorruptRunError(f"{path} is not valid JSON ({error}); it was not written by a finished "
                              "gradbench step: move it away, or start a new run with another --out") from None


def read_rows(path: Path) -> list[dict]:
    """The rows of results.json or of a part file: a list of objects, each with its cell_id."""
    rows = read_json(path)
    if not isinstance(rows, list) or not all(isinstance(row, dict) and "cell_id" in row for row in rows):
        raise CorruptRunError(f"{path} does not hold a list of rows with a cell_id each; it was not written by "
                              "gradbench: move it away, or start a new run with another --out")
    return rows


class RunFolder:
    """The rows of a run, kept in memory and on disk in step."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.rows: list[dict] = []
        self._absorbed: list[Path] = []  # part files whose rows are held but not yet written
        if (self.path / RESULTS_JSON).exists():
            self.rows = read_rows(self.path / RESULTS_JSON)
        self.read_meta()  # a damaged run.json is refused now, where the CLIs say so, not later in a traceback

    @property
    def done(self) -> set[str]:
        return {row["cell_id"] for row in self.rows}

    def holds_run(self) -> bool:
        return (self.path / RUN_JSON).exists()

    def add(self, row: dict) -> None:
        self.add_rows([row])

    def add_rows(self, rows: list[dict], write: bool = True) -> None:
        """Add (or replace, by cell_id) rows and rewrite both files once (or later, at `flush`)."""
        if not rows:
            return
        replaced = {row["cell_id"] for row in rows}
        self.rows = [r for r in self.rows if r["cell_id"] not in replaced] + list(rows)
        if write:
            self.flush()

    def flush(self, units_running: bool = False) -> None:
        """Write results.json and results.csv, then delete the part files whose rows they now hold, and the
        emptied parts/ folder unless `units_running`: a worker may be creating it again for its next row at
        that moment, and would fail between its mkdir and its write (seen once in a dozen pool runs)."""
        self.path.mkdir(parents=True, exist_ok=True)
        # Compact: json's C encoder (indent makes it use the pure-Python one, measured 9 s of a 340-cell sweep).
        atomic_write(self.path / RESULTS_JSON, json.dumps(self.rows))
        atomic_write(self.path / RESULTS_CSV, pd.DataFrame(self.rows).to_csv(index=False))
        for path in self._absorbed:
            path.unlink(missing_ok=True)
        self._absorbed = []
        if not units_running:
            with contextlib.suppress(OSError):  # only when empty: what a stopped unit left stays for --resume
                (self.path / "parts").rmdir()

    def absorb(self, unit_id: str, write: bool = True) -> int:
        """Move the rows a unit wrote into its part file (benchmarks.units) into the results; the number
        of rows. With write=False they reach results.json/csv at the next `flush` (rewriting both after
        each of a sweep's hundreds of cells cost the driver 2 s); the part file stays until then, so a
        driver killed in between loses nothing: the next run absorbs it. Idempotent: rows replace their
        earlier copies."""
        from benchmarks.units import part_path

        path = part_path(self.path, unit_id)
        if not path.exists():
            return 0
        rows = read_rows(path)
        self._absorbed.append(path)
        self.add_rows(rows, write=write)
        return len(rows)

    def unabsorbed_parts(self) -> int:
        """Part files a stopped run left that the results do not hold yet (one per unit that wrote rows)."""
        parts = self.path / "parts"
        return len(list(parts.glob("*.json"))) if parts.is_dir() else 0

    def absorb_all(self) -> int:
        """Absorb every part file left by a run that was stopped (a killed driver or worker)."""
        parts = self.path / "parts"
        if not parts.is_dir():
            return 0
        paths, rows = sorted(parts.glob("*.json")), []  # listed once: a file written later is not deleted unread
        for path in paths:
            rows += read_rows(path)
        self._absorbed += paths
        self.add_rows(rows)  # writes both files, then deletes the part files
        return len(rows)

    def lock(self):
        """Keep a second driver off this folder (benchmarks.run_lock.hold)."""
        return run_lock.hold(self.path)

    def holder(self) -> dict | None:
        """The live driver holding this folder ({pid, host, since}), or None."""
        return run_lock.holder(self.path)

    def check_unlocked(self) -> None:
        """RunLockedError naming the driver that holds this folder, if one does."""
        run_lock.check_unlocked(self.path)

    def read_meta(self) -> dict:
        path = self.path / RUN_JSON
        meta = read_json(path) if path.exists() else {}
        if not isinstance(meta, dict):
            raise CorruptRunError(f"{path} does not hold an object of run settings; it was not written by gradbench: "
                                  "move it away, or start a new run with another --out")
        return meta

    def write_meta(self, meta: dict) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path / RUN_JSON, json.dumps(meta, indent=1, default=str))
