"""Reading what the reports read: a run folder written by the harness (reports never measure), and a
pytest-benchmark JSON file. Every renderer and `compare` read through here, so that a missing, damaged
or foreign file gets one message naming it and what is wrong (DamagedRunError), never a traceback.
"""
from __future__ import annotations

import csv
import io
import json
import shlex
from pathlib import Path

import pandas as pd

from reports.files import resume_command_line
from reports.files import write_refusal

KIND_NAMES = {"variance": "variance sweep", "vae": "VAE run", "trajectory": "trajectory run",
              "benchmark": "pytest-benchmark JSON file"}
# The column that every row of a kind has, and only that kind's: how a folder without a kind is told, and how
# rows of another kind beside a run.json are caught.
KIND_COLUMNS = {"variance": "objective", "vae": "latent", "trajectory": "problem"}
BENCHMARK_STATS = ("median", "min", "max")  # what every reader of a benchmark's stats takes from it
PASS_A_RUN = ("pass the --out folder of a python -m benchmarks.variance, vae or trajectory run, or a pytest "
              "--benchmark-json file")


class NotARunError(FileNotFoundError):
    pass


class DamagedRunError(NotARunError):
    """A file of a run (or a benchmark file) that gradbench did not write as it is: cut short, emptied, edited."""

    def __init__(self, path: Path, what: str, fix: str = ""):
        super().__init__(f"{path} is damaged or not a gradbench file ({what})" + (f"; {fix}" if fix else ""))


def run_kind(path: str | Path) -> str:
    """'benchmark' for a pytest-benchmark JSON file, else the run folder's kind: run.json's, or for a folder
    written before run.json named it, told by its columns. NotARunError says what is wrong with the path."""
    path = Path(path)
    if not path.exists():
        raise NotARunError(f"{path} does not exist; {PASS_A_RUN}")
    if path.is_file():
        if path.suffix == ".json" and path.name not in ("results.json", "run.json"):
            return "benchmark"
        if (path.parent / "run.json").is_file() or (path.parent / "results.csv").is_file():
            raise NotARunError(f"{path} is a file of a run: give the run folder, {path.parent}, not a file in it")
        raise NotARunError(f"{path} is a file but not a pytest-benchmark .json file; {PASS_A_RUN}")
    meta = read_meta(path)
    if not (path / "results.csv").exists():
        parts = sorted((path / "parts").glob("*.json")) if (path / "parts").is_dir() else []
        if parts:  # a driver killed before it gathered them: --resume does, without measuring them again
            noun = "finished cell" if meta.get("kind", "variance") == "variance" else "run's rows"
            raise NotARunError(f"{path} holds {len(parts)} {noun}{'s' if len(parts) > 1 else ''} not yet gathered "
                               f"(the driver stopped); gather them with {resume_command_line(path, meta)}")
        raise NotARunError(f"{path} holds no results.csv; {PASS_A_RUN}")
    kind = meta.get("kind")
    if kind is None:  # runs from before run.json named its kind: told by their columns
        columns = _header(path / "results.csv")
        kind = next((kind for kind, column in KIND_COLUMNS.items() if column in columns), None)
        if kind is None:
            raise DamagedRunError(path / "results.csv", "run.json names no kind of run and its rows have no "
                                  + ", ".join(KIND_COLUMNS.values()) + " column")
    return kind


def read_meta(run_dir: Path) -> dict:
    """run.json's settings ({} where there is none)."""
    path = Path(run_dir) / "run.json"
    if not path.exists():
        return {}
    meta = _json(path)
    if not isinstance(meta, dict):
        raise DamagedRunError(path, f"it holds a JSON {type(meta).__name__}, not an object of run settings")
    return meta


def load_run(run_dir: str | Path) -> tuple[pd.DataFrame, dict]:
    """The tidy results table (at least one row, each whole) and the run's metadata."""
    run_dir = Path(run_dir)
    kind = run_kind(run_dir)
    if kind == "benchmark":
        raise NotARunError(f"{run_dir} is a pytest-benchmark file, not a run folder")
    meta = read_meta(run_dir)
    frame = _read_results(run_dir, meta)
    column = KIND_COLUMNS.get(kind)  # a kind a task registered has its own columns
    if column is not None and not {"estimator", column} <= set(frame.columns):
        raise DamagedRunError(run_dir / "results.csv", f"run.json says it holds a {KIND_NAMES.get(kind, kind)}, "
                              f"but its rows have no {'estimator' if 'estimator' not in frame else column} column")
    return frame, meta


def _read_results(run_dir: Path, meta: dict) -> pd.DataFrame:
    path = run_dir / "results.csv"
    try:
        text = path.read_text()
        records = [record for record in csv.reader(io.StringIO(text)) if record]  # blank lines are no rows
    except (UnicodeDecodeError, csv.Error) as error:
        raise DamagedRunError(path, f"not a CSV text file: {error}") from None
    rows = _json_rows(run_dir)
    if len(records) <= 1:
        if rows == []:  # the run wrote no rows: say why, rather than that the file is empty
            raise NotARunError(no_cells_message(run_dir, meta))
        raise DamagedRunError(path, "it is empty" if not records else "it holds a header and no rows",
                              rewrite_from_json(run_dir, rows, 1))
    # A row cut off mid-line (a copy or a disk that stopped) would read as a row of NaN figures: refuse it.
    short = next((i for i, record in enumerate(records[1:], 2) if len(record) != len(records[0])), None)
    if short is not None or not text.endswith("\n"):
        what = (f"row {short} has {len(records[short - 1])} fields, not {len(records[0])}" if short is not None
                else "its last row is cut off: no newline at its end")
        raise DamagedRunError(path, what, rewrite_from_json(run_dir, rows, len(records) - 1))
    return pd.read_csv(io.StringIO(text))


def rewrite_from_json(run_dir: Path, rows: list | None, at_least: int) -> str:
    """The command that writes results.csv again from results.json, where that holds at least `at_least` rows
    (an emptied results.csv gave no fix, though the same command repairs it; found by a new user), else ''."""
    if rows is None or len(rows) < max(at_least, 1):
        return ""
    return (f"{run_dir / 'results.json'} is intact and holds the run's {len(rows)} rows: write results.csv again "
            "from it with " + shlex.join(["python", "-c", "from benchmarks.results import RunFolder; "
                                          f"RunFolder({json.dumps(str(run_dir))}).flush()"]))


def _json_rows(run_dir: Path) -> list | None:
    """results.json's rows where it is intact (a list of objects), else None."""
    try:
        rows = json.loads((run_dir / "results.json").read_text())
    except (OSError, ValueError):
        return None
    return rows if isinstance(rows, list) and all(isinstance(row, dict) for row in rows) else None


def no_cells_message(run_dir: Path, meta: dict) -> str:
    """'RUN holds no finished cells' and why: the errors its run recorded, and how to continue it."""
    # A failed unit's line ends with what a run with finished rows keeps: this one has none.
    problems = [str(line).partition("; its finished rows are kept")[0] for line in meta.get("problems") or []]
    errors = run_dir / "errors"
    why = (f"; its run recorded {len(problems)} error{'s' if len(problems) > 1 else ''}: {problems[0]}"
           + (f" (and {len(problems) - 1} more, in run.json)" if len(problems) > 1 else "") if problems else "")
    where = f"; tracebacks in {errors}" if errors.is_dir() and any(errors.iterdir()) and not problems else ""
    return (f"{run_dir} holds no finished cells{why}{where}; once the cause is fixed, run them with "
            f"{resume_command_line(run_dir, meta)}")


def _header(path: Path) -> list[str]:
    try:
        header = next(csv.reader(io.StringIO(path.read_text())), [])
    except (UnicodeDecodeError, csv.Error) as error:
        raise DamagedRunError(path, f"not a CSV text file: {error}") from None
    if not header:
        raise DamagedRunError(path, "it is empty")
    return header


def _json(path: Path):
    try:
        text = path.read_text()
        if not text.strip():
            raise DamagedRunError(path, "it is empty")
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DamagedRunError(path, f"not valid JSON: {error}") from None


def read_benchmark_json(path: str | Path) -> dict:
    """A pytest-benchmark JSON file's data: an object whose benchmarks each have their stats."""
    path = Path(path)
    data = _json(path)
    if not isinstance(data, dict):
        raise DamagedRunError(path, f"it holds a JSON {type(data).__name__}, not a pytest-benchmark object")
    benchmarks = data.get("benchmarks")
    if not benchmarks:
        raise NotARunError(f"{path} holds no benchmarks; write it with pytest --benchmark-only --benchmark-json=FILE")
    for bench in benchmarks if isinstance(benchmarks, list) else [None]:
        stats = bench.get("stats") if isinstance(bench, dict) else None
        info = bench.get("extra_info") if isinstance(bench, dict) else None
        if isinstance(info, dict) and "speed_goal" in info:  # a goal's own record: its stats are not read
            continue
        if not isinstance(stats, dict) or not all(isinstance(stats.get(k), (int, float)) for k in BENCHMARK_STATS):
            name = bench.get("fullname", bench.get("name", "?")) if isinstance(bench, dict) else "?"
            raise DamagedRunError(path, f"benchmark {name} has no stats with {', '.join(BENCHMARK_STATS)}; write it "
                                  "with pytest --benchmark-only --benchmark-json=FILE")
    return data


def unwritable(folder: Path) -> str | None:
    """Why a report cannot be written into `folder` ("read-only file system", "permission denied"), or None:
    asked before anything is drawn (reports.files.write_refusal probes the nearest folder that exists)."""
    refusal = write_refusal(folder)
    return None if refusal is None else refusal[1]
