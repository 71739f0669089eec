"""The cells of a run of any kind, as `compare` reads them: one row per cell, each figure with its interval.

The kind (reports.catalogue): a folder's run.json names it ("variance", "vae", "trajectory"; a folder
without one, or whose run.json predates "kind", is a variance sweep when its rows have an objective);
a .json file is a pytest-benchmark file ("benchmark").

    load_cells(path)                 -> Cells(kind, frame, meta): per cell and seed, at the run's last point
    shared_key(kind, a, b)           -> the columns that identify a cell in both runs
    combine_over_seeds(frame, key, kind) -> one row per cell: each metric, its interval ("<metric>:lo",
                                        "<metric>:hi", NaN: none) and its worse side ("<metric>:worse")

A cell's interval, one rule for every kind:
- one seed: the metric's own 95% interval (its catalogue columns, or value -+ 1.96 se); none where it has
  none (a VAE's test -ELBO, a run's training time), and then `compare` does not judge a change;
- several seeds: the mean over the seeds, and the interval from the lowest to the highest of the seeds'
  values, widened to the seeds' own intervals where the metric has them (the envelope reports/seeds.py
  gives a sweep): a change must leave the spread over seeds to count;
- a benchmark's round time: the interquartile range of its rounds (pytest-benchmark's q1..q3; none with
  one round). The fastest and slowest rounds are not used: one round hit by a burst of load (4.5 ms
  beside a median of 0.19 ms in tests/data/benchmark_small.json) would hide any regression. A speed
  goal's ratio: its own distribution-free interval, worse on the side away from its direction.
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pandas as pd

from reports.catalogue import CATALOGUES, CELL_KEYS
from reports.load import NotARunError, load_run, read_benchmark_json
from reports.load import run_kind as read_kind

# A key column missing from an old folder: its value in every run that did not record it.
DEFAULTS = {"hparams": "{}", "kl": "analytic", "n_samples": 1, "device": "cpu", "dtype": "float32"}
# Runs from before hyperparameters were recorded as `hparams` named their settings by these columns
# (a VAE's `tau` is the annealed temperature of the step, its setting is `tau0`).
FALLBACKS = {"variance": {"hparams": ["tau"]}, "trajectory": {"hparams": ["tau"]},
             "vae": {"hparams": ["tau0", "variant"]}, "benchmark": {}}


@dataclasses.dataclass
class Cells:
    kind: str
    frame: pd.DataFrame
    meta: dict


def run_kind(path: Path) -> str:
    kind = read_kind(path)
    if kind not in CATALOGUES:
        raise NotARunError(f"{path}: run.json says kind={kind!r}; compare knows {', '.join(CATALOGUES)}")
    return kind


def load_cells(path: str | Path) -> Cells:
    path = Path(path)
    kind = run_kind(path)
    if kind == "benchmark":
        return Cells(kind, _benchmark_rows(path), {})
    frame, meta = load_run(path)
    if kind in ("vae", "trajectory") and "step" in frame and not frame.empty:
        frame = _last_points(frame, kind)
    if kind == "vae" and {"hparams", "tau0"} <= set(frame.columns):
        frame["hparams"] = [_at_start(text, tau0) for text, tau0 in zip(frame["hparams"], frame["tau0"])]
    return Cells(kind, frame, meta)


def _at_start(hparams, tau0):
    """A VAE row's hyperparameters with the temperature it started from: a row records the tau of its step
    (annealed, or learned by RELAX), which differs between runs of one setting and would keep their cells
    apart (found trying compare: RELAX's runs never matched, nor did annealed ones)."""
    if not isinstance(hparams, str) or tau0 is None or pd.isna(tau0):
        return hparams
    values = json.loads(hparams)
    if "tau" in values:
        values["tau"] = float(tau0)
    return json.dumps(values, sort_keys=True)


def _last_points(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Each run's (each seed's) last evaluation point: the figures a run ends with."""
    runs = ["run_id"] if "run_id" in frame else [
        c for c in CELL_KEYS[kind] + sum(FALLBACKS[kind].values(), []) + ["seed"] if c in frame]
    last = frame.groupby(runs, sort=False, dropna=False)["step"].idxmax()
    return frame.loc[last].reset_index(drop=True)


def _benchmark_rows(path: Path) -> pd.DataFrame:
    rows = []
    for bench in read_benchmark_json(path)["benchmarks"]:
        stats, info = bench.get("stats") or {}, bench.get("extra_info", {})
        spread = stats.get("rounds", 1) >= 2  # the quartiles of one round are that round
        q1, q3 = (stats["q1"], stats["q3"]) if spread else (math.nan, math.nan)
        row = {"name": bench.get("fullname", bench.get("name", "?")), "rounds": stats.get("rounds"),
               "median_s": stats.get("median", math.nan), "q1_s": q1, "q3_s": q3}  # a goal's record may hold no stats
        if "estimator" in info and "estimates_per_call" in info:  # a throughput case: a round draws a batch
            per_call = info["estimates_per_call"]
            row.update(estimates_per_s=per_call / stats["median"], estimates_per_s_lo=per_call / q3,
                       estimates_per_s_hi=per_call / q1)
        goal = info.get("speed_goal")
        if goal:
            low, high = goal.get("ratio_low"), goal.get("ratio_high")
            row.update(ratio=goal["ratio"], ratio_low=math.nan if low is None else low,
                       ratio_high=math.nan if high is None else high,
                       ratio_worse="lower" if goal.get("direction", ">=") == ">=" else "higher")
        rows.append(row)
    return pd.DataFrame(rows)


def shared_key(kind: str, a: pd.DataFrame, b: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The kind's cell key as both runs can give it, and notes on what was filled in or replaced.

    A key column missing from an old folder is replaced by the columns that named it before (hparams:
    a VAE's tau0 and variant, a sweep's tau) where both runs have them, else takes its default
    (DEFAULTS) in that folder, else is left out of the key. Fills the frames in place."""
    key, notes = [], []
    for column in CELL_KEYS[kind]:
        instead = [c for c in FALLBACKS[kind].get(column, []) if c in a and c in b]
        if column in a and column in b:
            key.append(column)
        elif instead:
            notes.append(f"{column} missing in a run: cells matched on {', '.join(instead)} instead")
            key.extend(instead)
        elif column in DEFAULTS:
            for frame in (a, b):
                if column not in frame:
                    frame[column] = DEFAULTS[column]
            notes.append(f"{column} missing in a run: taken as {DEFAULTS[column]!r} there")
            key.append(column)
        else:
            notes.append(f"{column} missing in a run: cells matched on the other keys")
    for column in key:  # an old row with no value for a key column
        if column in DEFAULTS:
            for frame in (a, b):
                frame[column] = frame[column].fillna(DEFAULTS[column])
    return key, notes


def combine_over_seeds(frame: pd.DataFrame, key: list[str], kind: str) -> pd.DataFrame:
    """One row per cell: the key, `seeds`, the last `step`, and per metric its value and interval."""
    metrics = [m for m in CATALOGUES[kind].values() if m.name in frame]
    frame = frame.copy()
    for metric in metrics:
        bounds = metric.interval(frame)
        frame[f"{metric.name}:lo"], frame[f"{metric.name}:hi"] = bounds if bounds is not None else (math.nan,) * 2
    rows = []
    for values, group in frame.groupby(key, sort=False, dropna=False):
        row = dict(zip(key, values if isinstance(values, tuple) else (values,)))
        row["seeds"] = len(group)
        if "step" in group:
            row["step"] = group["step"].max()
        for metric in metrics:
            name = metric.name
            measured = group[group[name].notna()]
            if len(measured) <= 1:  # one seed: the metric's own interval, if any
                value, low, high = (measured.iloc[0][[name, f"{name}:lo", f"{name}:hi"]] if len(measured)
                                    else (math.nan,) * 3)
            else:  # several: the mean, and the envelope of the seeds' values and intervals
                value = measured[name].mean()
                low = measured[f"{name}:lo"].fillna(measured[name]).min()
                high = measured[f"{name}:hi"].fillna(measured[name]).max()
            row[name], row[f"{name}:lo"], row[f"{name}:hi"] = value, low, high
            own = f"{name}_worse"  # a row's own worse side (a speed goal's direction)
            row[f"{name}:worse"] = group[own].iloc[0] if own in group and group[own].notna().any() else metric.worse
        rows.append(row)
    return pd.DataFrame(rows)
