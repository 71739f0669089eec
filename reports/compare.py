"""`python -m reports compare RUN_A RUN_B`: every shared cell, metric by metric.

A and B are two runs of one kind: two variance sweeps, two VAE runs, two trajectory runs (their --out
folders) or two pytest-benchmark JSON files. For each cell present in both (variance: estimator,
hparams, objective, S, device, dtype; VAE: estimator, hparams, latent, KL form, S, device, at each
run's last evaluation point; trajectory: estimator, hparams, problem, at the last step; benchmark: the
benchmark's full name) it prints A and B with their intervals, the ratio B / A, and a mark where the
change is both larger than --factor and significant (the two intervals do not overlap). `--fail-on
METRIC:PCT` exits 1 when some cell's METRIC got worse by more than PCT percent, significantly: a gate for CI.

Intervals (reports/cells.py): with one seed, a metric's own 95% interval; with several, the spread over
the seeds (the lowest to the highest seed, widened to their own intervals); a benchmark's round time,
the interquartile range of its rounds; a speed goal's ratio, its own interval. A figure without an
interval (a VAE's test -ELBO from one seed) is shown but never judged.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pandas as pd

from reports.catalogue import metric as catalogue_metric
from reports.cells import combine_over_seeds, load_cells, shared_key
from reports.cost import timing_flag
from reports.load import KIND_NAMES, NotARunError

DEFAULT_METRICS = {
    "variance": ["variance_trace", "bias_norm", "time_per_estimate_s"],
    "vae": ["test_neg_elbo", "test_iw_bound", "grad_variance_trace", "time_per_step_s"],
    "trajectory": ["exact_loss", "variance_trace", "bias_norm", "train_seconds"],
    "benchmark": ["median_s", "ratio"],
}
NOT_JUDGED = "no interval: not judged"


def change_factor(value_a: float, value_b: float) -> float:
    """How many times A the change is, in either direction (>= 1): max(B / A, A / B) for positive figures,
    1 + |B - A| / |A| for others (a loss that can be negative)."""
    if value_a == value_b:
        return 1.0
    if value_a > 0 and value_b > 0:
        return max(value_b / value_a, value_a / value_b)
    return 1 + abs(value_b - value_a) / abs(value_a) if value_a else math.inf


def compare(a: pd.DataFrame, b: pd.DataFrame, key: list[str], metrics: list[str], factor: float) -> pd.DataFrame:
    """One row per (shared cell, metric both runs measured): values, intervals, ratio B / A, and whether the
    change is judged (both intervals known), marked (beyond `factor` and the intervals apart) and worse.

    `a` and `b` hold one row per cell, as reports.cells.combine_over_seeds writes them."""
    merged = a.merge(b, on=key, suffixes=("_a", "_b"))
    rows = []
    for _, cell in merged.iterrows():
        for metric in metrics:
            if f"{metric}_a" not in cell or f"{metric}_b" not in cell:
                continue  # a metric one of the runs did not measure
            value_a, value_b = cell[f"{metric}_a"], cell[f"{metric}_b"]
            if pd.isna(value_a) or pd.isna(value_b):
                continue
            bounds = [cell[f"{metric}:{side}_{run}"] for run in "ab" for side in ("lo", "hi")]
            a_lo, a_hi, b_lo, b_hi = bounds
            judged = all(math.isfinite(v) for v in bounds)
            separated = judged and (b_lo > a_hi or b_hi < a_lo)
            ratio = value_b / value_a if value_a else math.inf if value_b else 1.0
            change = change_factor(value_a, value_b)
            larger_is_worse = cell[f"{metric}:worse_b"] == "higher"  # B's: a speed goal's own direction
            worse = value_b > value_a if larger_is_worse else value_b < value_a
            rows.append({
                **{k: cell[k] for k in key}, "metric": metric,
                "a": value_a, "a_lo": a_lo, "a_hi": a_hi, "b": value_b, "b_lo": b_lo, "b_hi": b_hi,
                "seeds_a": cell["seeds_a"], "seeds_b": cell["seeds_b"], "ratio": ratio, "change": change,
                "big": change > factor, "judged": judged, "got_worse": worse,
                "marked": bool(change > factor and separated), "worse": bool(worse and separated),
            })
    columns = key + ["metric", "a", "a_lo", "a_hi", "b", "b_lo", "b_hi", "seeds_a", "seeds_b", "ratio", "change",
                     "big", "judged", "got_worse", "marked", "worse"]
    return pd.DataFrame(rows, columns=columns)


def parse_fail_on(text: str) -> tuple[str, float]:
    metric, _, pct = text.partition(":")
    if not metric or not pct:
        raise argparse.ArgumentTypeError(f"--fail-on takes METRIC:PCT, e.g. variance_trace:20 or median_s:50; "
                                         f"got {text!r}")
    try:
        value = float(pct)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--fail-on {text!r}: {pct!r} is not a percentage") from None
    if not value >= 0 or value == float("inf"):  # a negative gate would fail on any change for the worse
        raise argparse.ArgumentTypeError(f"--fail-on {text!r}: the percentage must be a finite number >= 0 (how much "
                                         f"worse fails, e.g. {metric}:20); got {pct}")
    return metric, value


def cell_label(row: pd.Series, key: list[str]) -> str:
    """'reinforce {"tau": 0.5} tucker-0.45 S=4 cpu': the key's values, an empty hparams and the
    default dtype left out."""
    parts = []
    for column in key:
        value = row[column]
        if pd.isna(value) or value in ("", "{}") or (column == "dtype" and value == "float32"):
            continue
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        parts.append(f"S={value}" if column == "n_samples" else f"kl={value}" if column == "kl"
                     else f"{column}={value}" if column in ("tau0", "tau") else str(value))
    return " ".join(parts)


def describe(row: pd.Series, key: list[str]) -> str:
    def interval(side: str) -> str:
        return f" [{row[f'{side}_lo']:.3g}, {row[f'{side}_hi']:.3g}]" if row["judged"] else ""

    mark = ("WORSE" if row["worse"] else "better") if row["marked"] else "" if row["judged"] else NOT_JUDGED
    return (f"{cell_label(row, key)} {row['metric']}: {row['a']:.4g}{interval('a')} -> {row['b']:.4g}"
            f"{interval('b')}  x{row['ratio']:.3f}  {mark}").rstrip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reports compare", description=__doc__.split("\n\n")[1])
    parser.add_argument("run_a", type=Path, help="a run's --out folder, or a pytest --benchmark-json file")
    parser.add_argument("run_b", type=Path, help="a run of the same kind")
    parser.add_argument("--metrics", nargs="+", metavar="METRIC",
                        help="the figures to compare (default per kind: " + "; ".join(
                            f"{kind}: {' '.join(names)}" for kind, names in DEFAULT_METRICS.items()) + ")")
    parser.add_argument("--factor", type=float, default=1.1, help="smallest ratio that is marked (default 1.1)")
    parser.add_argument("--fail-on", type=parse_fail_on, action="append", default=[], metavar="METRIC:PCT",
                        help="exit 1 if METRIC got significantly worse by more than PCT percent in some cell")
    parser.add_argument("--all", action="store_true", help="print every shared cell, not only marked ones")
    args = parser.parse_args(argv)
    if args.factor < 1:
        parser.error(f"--factor must be >= 1, got {args.factor}")
    try:
        a, b = load_cells(args.run_a), load_cells(args.run_b)
    except NotARunError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if a.kind != b.kind:
        print(f"error: {args.run_a} is a {KIND_NAMES[a.kind]} and {args.run_b} a {KIND_NAMES[b.kind]}; "
              "compare compares two runs of one kind", file=sys.stderr)
        return 2
    kind = a.kind
    requested = args.metrics or DEFAULT_METRICS[kind]
    metrics = list(dict.fromkeys(requested + [m for m, _ in args.fail_on]))
    try:
        for name in metrics:
            catalogue_metric(kind, name)
    except KeyError as error:
        print(f"error: {error.args[0]}", file=sys.stderr)
        return 2
    key, notes = shared_key(kind, a.frame, b.frame)
    # Several seeds: one row per cell whose interval holds the spread over seeds, so a change must
    # exceed that spread to count as significant.
    cells_a, cells_b = (combine_over_seeds(frame, key, kind) for frame in (a.frame, b.frame))
    table = compare(cells_a, cells_b, key, metrics, args.factor)
    shared = len(cells_a.merge(cells_b[key], on=key)) if not (cells_a.empty or cells_b.empty) else 0
    if not shared:
        why = "".join(f"; {note}" for note in setting_differences(a.meta, b.meta))  # float32 against float64, ...
        print(f"error: {args.run_a} and {args.run_b} share no cell (same {', '.join(key)}){why}", file=sys.stderr)
        return 2
    for note in notes + unshared_cells(cells_a, cells_b, key):
        print(f"note: {note}")
    if kind == "vae" and a.meta.get("dataset", "?") != b.meta.get("dataset", "?"):
        print(f"note: A trained on {a.meta.get('dataset', '?')}, B on {b.meta.get('dataset', '?')}")
    for note in setting_differences(a.meta, b.meta):
        print(f"note: {note}")
    if TIMING_METRICS & set(metrics):
        for note in flagged_timing({"A": a.frame, "B": b.frame}):
            print(f"note: {note}")
    unmeasured = [m for m in metrics if m not in set(table["metric"])]
    if unmeasured and (args.metrics or args.fail_on):
        print(f"note: no shared cell has {', '.join(unmeasured)} in both runs")
    broken = more_nonfinite(a.frame, b.frame, key)
    print_summary(kind, shared, table, cells_a, cells_b, key, args.factor, len(broken))
    # Every marked change, and big changes that have no interval to judge them by.
    shown = table if args.all else table[table["marked"] | (table["big"] & ~table["judged"])]
    for _, row in shown.iterrows():
        print(describe(row, key))
    for line in broken:
        print(f"{line}  WORSE")
    if broken and args.fail_on:
        print(f"FAIL: {len(broken)} cell(s) gave more non-finite estimates in B than in A: their figures in B leave "
              "those estimates out, so no gate can pass them", file=sys.stderr)
    return 1 if failed_gates(table, args.fail_on) or (broken and args.fail_on) else 0


def more_nonfinite(frame_a: pd.DataFrame, frame_b: pd.DataFrame, key: list[str]) -> list[str]:
    """'CELL: non-finite estimates 0 -> 500 of 1000' for each shared cell (over its seeds and points) whose
    estimates were all finite in A and are not in B, or whose share of non-finite estimates grew by more than 3
    standard errors of a two-proportion test (45 -> 1000 of 1000 does; 1 -> 2 does not; 5% of 2,000 against 5% of
    10,000 does not: counts alone marked that WORSE). Its figures in B leave those estimates out (or are missing,
    when none was finite), so a comparison of the figures alone would miss an estimator that broke."""
    if "nonfinite" not in frame_a or "nonfinite" not in frame_b:
        return []
    counts = {}
    for name, frame in (("a", frame_a), ("b", frame_b)):
        total = frame["nonfinite"] + frame["n_finite"] if "n_finite" in frame else pd.Series(math.nan, frame.index)
        grouped = frame.assign(_total=total).groupby(key, dropna=False)
        counts[name], counts[f"{name}_total"] = grouped["nonfinite"].sum(), grouped["_total"].sum(min_count=1)
    both = pd.concat(counts, axis=1, join="inner")
    rate_a, rate_b = both["a"] / both["a_total"], both["b"] / both["b_total"]
    pooled = (both["a"] + both["b"]) / (both["a_total"] + both["b_total"])
    z = (rate_b - rate_a) / (pooled * (1 - pooled) * (1 / both["a_total"] + 1 / both["b_total"])) ** 0.5
    # Without totals (an old folder): the counts, against 3 sqrt(a + b).
    grew = z.gt(3) if z.notna().any() else (both["b"] - both["a"] > 3 * (both["a"] + both["b"]) ** 0.5)
    worse = (both["b"] > both["a"]) & ((both["a"] == 0) | grew)
    return [f"{cell_label(pd.Series(dict(zip(key, index if isinstance(index, tuple) else (index,)))), key)}: "
            f"non-finite estimates {int(row['a'])} -> {int(row['b'])}"
            + (f" of {int(row['b_total'])}" if row["b_total"] == row["b_total"] else "")
            for index, row in both[worse].iterrows()]


def unshared_cells(cells_a: pd.DataFrame, cells_b: pd.DataFrame, key: list[str]) -> list[str]:
    """'3 cells only in B, not compared (e.g. ...)' for each run with cells the other lacks: a run extended on
    --resume with other settings, or a grid cut short, is otherwise compared on its shared part without a word."""
    notes = []
    for name, here, there in (("A", cells_a, cells_b), ("B", cells_b, cells_a)):
        only = here.merge(there[key].drop_duplicates(), on=key, how="left", indicator=True)
        only = only[only["_merge"] == "left_only"]
        if len(only):
            notes.append(f"{len(only)} cell(s) only in {name}, not compared (e.g. {cell_label(only.iloc[0], key)})")
    return notes


# Run settings that change what a shared cell's figures mean: the width of its intervals (N), its rounding,
# its timing (where and on how many threads it ran), a training run's setup.
COMPARED_SETTINGS = {"n_estimates": "estimates per cell (N)", "dtype": "dtype", "executor": "executor",
                     "worker_threads": "torch threads per unit",
                     # a trajectory run's options (a VAE run's are in its "settings")
                     "steps": "--steps", "samples": "--samples", "optimizer": "--optimizer", "lr": "--lr",
                     "measure_every": "--measure-every", "preset": "--preset"}


def setting_differences(meta_a: dict, meta_b: dict) -> list[str]:
    """'estimates per cell (N): A 10000, B 5000' for each run setting in which the two runs differ."""
    pairs = [(label, meta_a.get(key), meta_b.get(key)) for key, label in COMPARED_SETTINGS.items()]
    settings_a, settings_b = meta_a.get("settings") or {}, meta_b.get("settings") or {}  # training runs
    noted = {label for label, a, b in pairs if a is not None and b is not None}  # a VAE's lr is in both places
    pairs += [(label, settings_a.get(key), settings_b.get(key)) for key in sorted(set(settings_a) | set(settings_b))
              if key != "dataset" and (label := f"--{key.replace('_', '-')}") not in noted]  # dataset: own note
    return [f"the runs differ in {label}: A {value_a}, B {value_b}" for label, value_a, value_b in pairs
            if value_a is not None and value_b is not None and value_a != value_b]


TIMING_METRICS = {"time_per_estimate_s", "estimates_per_s", "time_per_step_s", "steps_per_s", "train_seconds"}


def flagged_timing(frames: dict[str, pd.DataFrame]) -> list[str]:
    """For each run whose rows' timing the reports flag (reports.cost.timing_flag: beside other units, under
    load, starved, waiting for a CPU), how many rows and the first flag: its time comparisons are suspect."""
    notes = []
    for name, frame in frames.items():
        flags = [flag for _, row in frame.iterrows() if (flag := timing_flag(row))]
        if flags:
            notes.append(f"the timing of {name} is flagged in {len(flags)} of {len(frame)} rows (e.g. {flags[0]}): "
                         "its time comparisons are not timing-grade")
    return notes


def print_summary(kind: str, shared: int, table: pd.DataFrame, cells_a: pd.DataFrame, cells_b: pd.DataFrame,
                  key: list[str], factor: float, broken: int = 0) -> None:
    """Counts of cells and marks, what was not judged, the seeds behind the intervals, unequal last steps."""
    unjudged = table[~table["judged"]]
    line = (f"{shared} shared cells; {int(table['marked'].sum())} marked changes (ratio beyond {factor:g}x and "
            "intervals apart)" + (f"; {broken} cell(s) with more non-finite estimates in B" if broken else ""))
    if len(unjudged):
        remedy = "a round time needs 2 rounds" if kind == "benchmark" else "a second seed gives them one"
        line += (f"; {len(unjudged)} figures without an interval ({', '.join(dict.fromkeys(unjudged['metric']))}), "
                 f"not judged: {remedy}")
    print(line)
    seeds = {run: sorted({int(s) for s in cells["seeds"]}) for run, cells in (("A", cells_a), ("B", cells_b))}
    if max(seeds["A"] + seeds["B"]) > 1:
        print(f"seeds per cell: A {'/'.join(map(str, seeds['A']))}, B {'/'.join(map(str, seeds['B']))}; "
              "with several, a cell's interval spans its seeds")
    if "step" in cells_a and "step" in cells_b:  # VAE and trajectory runs: compared where each ended
        steps = cells_a[key + ["step"]].merge(cells_b[key + ["step"]], on=key)
        differ = steps[steps["step_x"] != steps["step_y"]]
        if len(differ):
            print(f"note: {len(differ)} cells end at different steps in A and B (e.g. {differ['step_x'].iloc[0]:g} "
                  f"and {differ['step_y'].iloc[0]:g}): compared at each run's last point")


def failed_gates(table: pd.DataFrame, gates: list[tuple[str, float]]) -> bool:
    """--fail-on: True when some METRIC got significantly worse by more than PCT percent; says which on stderr,
    and which changes beyond a gate it could not judge."""
    failed = False
    for metric, pct in gates:
        # worse beyond the gate: B / A > 1 + PCT% where higher is worse, A / B > 1 + PCT% where lower is
        beyond = table[(table["metric"] == metric) & table["got_worse"] & (table["change"] > 1 + pct / 100)]
        bad = beyond[beyond["worse"]]  # and significant
        if len(bad):
            failed = True
            print(f"FAIL: {metric} worse by more than {pct:g}% in {len(bad)} cell(s)", file=sys.stderr)
        unjudged = beyond[~beyond["judged"]]
        if len(unjudged):
            print(f"note: --fail-on {metric}: {len(unjudged)} cell(s) changed by more than {pct:g}% without "
                  f"an interval ({NOT_JUDGED})", file=sys.stderr)
    return failed
