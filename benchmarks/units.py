"""Units of work and what they write to: the pieces every executor moves around.

A unit is a picklable value (a frozen dataclass) that carries everything it needs: its stable id
(what `--resume` skips), its size in progress steps (1 for a variance cell, the training steps for a
VAE run), the modules to import first (`--import`: a worker must register the same estimators),
optionally `steps_done(run_folder)` (the steps that a unit resuming part-way, a VAE run from its
checkpoint, will not run again; read without loading anything pickled), and `run(sink)`, which
returns 'ok', why it stopped early (a result: e.g. a loss that went non-finite), or 'failed: <why>'
(an error: e.g. a checkpoint it could not resume from), and raises
`estimators.NotApplicableError` for a unit that cannot be measured (it is then left out with that
reason). Any other exception a unit raises (a user's cost that fails, a bug) fails that unit alone:
`run_unit` keeps its traceback in RUN/errors/ and returns 'failed: ...', so the other units finish
and `--resume` runs it again, on every executor alike.

A unit writes its rows through its `UnitSink`: each call rewrites the unit's own part file
(RUN/parts/<unit>.json) atomically, so a worker that dies loses only the unit's unfinished work, and
the driver, the only writer of results.csv/json, absorbs the part file when the unit ends. Rows are
stamped with the conditions their timing was taken under (executor, units running at once on the
machine, torch threads).

A unit advances the progress bar by the steps it runs now only: the driver's bar starts at the
`steps_done` of the units it runs, so that its rate (and the time left) counts only work done in this
invocation. A unit that resumes from another step than its `steps_done` said (a checkpoint written
before step files existed, or one whose step file a kill between the two writes left an evaluation
point behind) advances by the difference; the driver keeps each unit's count within 0..steps (a
negative advance takes steps back off the count of those done before).
"""
from __future__ import annotations

import dataclasses
import importlib
import json
import traceback
import zlib
from pathlib import Path
from typing import Callable, Protocol

from benchmarks.results import atomic_write

PARTS = "parts"
ERRORS = "errors"


class Unit(Protocol):
    unit_id: str
    steps: int
    imports: tuple[str, ...]

    def run(self, sink: "UnitSink") -> str: ...


def steps_done(unit: Unit, run_folder: str | Path) -> int:
    """The steps of `unit` done before it starts (within 0..unit.steps); 0 for a unit that always starts
    from its beginning (a variance cell, a trajectory)."""
    counted = getattr(unit, "steps_done", None)
    return 0 if counted is None else max(0, min(int(counted(Path(run_folder))), unit.steps))


def _file_name(unit_id: str) -> str:
    """A readable name (cut to fit a filesystem's 255 bytes) and a checksum of the exact id, so that two
    ids that differ only in replaced characters never share a file."""
    safe = "".join(c if c.isalnum() or c in "-_.=" else "_" for c in unit_id)[:180]
    return f"{safe}-{zlib.crc32(unit_id.encode()):08x}"


def part_path(run_folder: str | Path, unit_id: str) -> Path:
    """The unit's own file of rows."""
    return Path(run_folder) / PARTS / f"{_file_name(unit_id)}.json"


def error_path(run_folder: str | Path, unit_id: str) -> Path:
    """Where the traceback of a unit that raised is kept."""
    return Path(run_folder) / ERRORS / f"{_file_name(unit_id)}.txt"


@dataclasses.dataclass
class UnitSink:
    """Where a running unit puts its rows and reports its progress.

    `context` is stamped into every row (executor, concurrency, torch_threads); `on_progress(n)` is the
    executor's way to move the driver's progress bar (a no-op where progress comes per unit)."""
    run_folder: Path
    unit_id: str
    context: dict
    on_progress: Callable[[int], None] = lambda n: None
    rows: list = dataclasses.field(default_factory=list)

    def add(self, row: dict) -> None:
        self.rows.append({**row, **self.context})
        path = part_path(self.run_folder, self.unit_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(self.rows))

    def advance(self, steps: int = 1) -> None:
        self.on_progress(steps)


def import_modules(modules) -> None:
    """Import the user's --import modules in this process (a worker needs the same registrations)."""
    for name in modules:
        importlib.import_module(name)


def run_unit(unit: Unit, run_folder: str | Path, context: dict, on_progress=lambda n: None) -> str:
    """Run one unit where it is (in the driver or in a worker); 'ok', why it stopped, or
    'left out: <reason>' for a unit that does not apply."""
    import estimators  # after the imports: a plugin module may import estimators itself

    import_modules(unit.imports)
    sink = UnitSink(Path(run_folder), unit.unit_id, context, on_progress)
    try:
        status = unit.run(sink)
    except estimators.NotApplicableError as reason:
        status = f"left out: {reason}"
    except Exception as error:  # noqa: BLE001 - the unit's own error ends that unit, not the run
        return _failed(unit, run_folder, error)
    if not status.startswith("failed: "):
        _forget_old_traceback(run_folder, unit.unit_id)
    return status


def _forget_old_traceback(run_folder: str | Path, unit_id: str) -> None:
    """A unit that raised in an earlier invocation and ran now (--resume, once the cause was fixed) leaves
    no traceback behind: RUN/errors/ holds only the units that are failed now."""
    # The folder stays, even empty: removing it could race with another worker writing a traceback there.
    error_path(run_folder, unit_id).unlink(missing_ok=True)


def _failed(unit: Unit, run_folder: str | Path, error: Exception) -> str:
    """'failed: ...' for a unit that raised, its traceback kept in the run folder (called while handling it).

    A user's cost or estimator that raises (or a bug) fails its unit; the others go on, the run exits 1
    naming it, and --resume runs it again."""
    log = error_path(run_folder, unit.unit_id)
    log.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(log, traceback.format_exc())
    return (f"failed: {type(error).__name__}: {error} (traceback in {log}); its finished rows are kept, "
            "--resume runs it again")
