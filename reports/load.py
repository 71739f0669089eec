"""Reading a run folder written by the harness (reports never measure)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd


class NotARunError(FileNotFoundError):
    pass


def load_run(run_dir: str | Path) -> tuple[pd.DataFrame, dict]:
    """The tidy results table and the run's metadata."""
    run_dir = Path(run_dir)
    csv = run_dir / "results.csv"
    if not csv.exists():
        raise NotARunError(f"{run_dir} holds no results.csv; pass the --out folder of a "
                           "python -m benchmarks.variance run")
    meta_path = run_dir / "run.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    return pd.read_csv(csv), meta

