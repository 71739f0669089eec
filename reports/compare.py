"""`python -m reports compare RUN_A RUN_B`: every shared cell, metric by metric.

For each cell present in both runs (matched on estimator, hparams, objective, S, device, dtype) it
prints A and B with their intervals, the ratio B / A, and a mark where the change is both larger
than --factor and significant (the two intervals do not overlap). `--fail-on METRIC:PCT` exits 1
when some cell's METRIC got worse by more than PCT percent, significantly: a gate for CI.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from reports.load import NotARunError, load_run
from reports.seeds import combine_seeds

KEY = ["estimator", "hparams", "objective", "n_samples", "device", "dtype"]
# metric -> (low bound column, high bound column, True when larger is worse)
METRICS = {
    "variance_trace": ("variance_trace_lo", "variance_trace_hi", True),
    "bias_norm": ("bias_norm_lo", "bias_norm_hi", True),
    "mse": ("mse_lo", "mse_hi", True),
    "snr": ("snr_lo", "snr_hi", False),
    "time_per_estimate_s": ("time_per_estimate_min_s", "time_per_estimate_max_s", True),
}


def compare(a: pd.DataFrame, b: pd.DataFrame, metrics: list[str], factor: float) -> pd.DataFrame:
    """One row per (shared cell, metric): values, bounds, ratio, and whether it is a marked change."""
    merged = a.merge(b, on=KEY, suffixes=("_a", "_b"))
    rows = []
    for _, cell in merged.iterrows():
        for metric in metrics:
            lo, hi, larger_is_worse = METRICS[metric]
            value_a, value_b = cell[f"{metric}_a"], cell[f"{metric}_b"]
            ratio = value_b / value_a if value_a else float("inf") if value_b else 1.0
            separated = cell[f"{lo}_b"] > cell[f"{hi}_a"] or cell[f"{hi}_b"] < cell[f"{lo}_a"]
            big = ratio > factor or ratio < 1 / factor
            worse = (ratio > 1) == larger_is_worse
            rows.append({
                **{k: cell[k] for k in KEY}, "metric": metric,
                "a": value_a, "a_lo": cell[f"{lo}_a"], "a_hi": cell[f"{hi}_a"],
                "b": value_b, "b_lo": cell[f"{lo}_b"], "b_hi": cell[f"{hi}_b"],
                "ratio": ratio, "marked": bool(big and separated), "worse": bool(worse and separated),
            })
    return pd.DataFrame(rows)


def parse_fail_on(text: str) -> tuple[str, float]:
    metric, _, pct = text.partition(":")
    if metric not in METRICS or not pct:
        raise argparse.ArgumentTypeError(f"--fail-on takes METRIC:PCT with METRIC one of {', '.join(METRICS)}, "
                                         f"e.g. variance_trace:20; got {text!r}")
    try:
        return metric, float(pct)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--fail-on {text!r}: {pct!r} is not a percentage") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reports compare", description=__doc__.split("\n\n")[1])
    parser.add_argument("run_a", type=Path)
    parser.add_argument("run_b", type=Path)
    parser.add_argument("--metrics", nargs="+", choices=list(METRICS), default=["variance_trace", "bias_norm",
                                                                               "time_per_estimate_s"])
    parser.add_argument("--factor", type=float, default=1.1, help="smallest ratio that is marked (default 1.1)")
    parser.add_argument("--fail-on", type=parse_fail_on, action="append", default=[], metavar="METRIC:PCT",
                        help="exit 1 if METRIC got significantly worse by more than PCT percent in some cell")
    parser.add_argument("--all", action="store_true", help="print every shared cell, not only marked ones")
    args = parser.parse_args(argv)
    if args.factor < 1:
        parser.error(f"--factor must be >= 1, got {args.factor}")
    try:
        (a, _), (b, _) = load_run(args.run_a), load_run(args.run_b)
        # Several seeds: one row per cell whose interval holds the spread over seeds, so a change must
        # exceed that spread to count as significant.
        a, b = combine_seeds(a), combine_seeds(b)
    except NotARunError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    metrics = list(dict.fromkeys(args.metrics + [m for m, _ in args.fail_on]))
    table = compare(a, b, metrics, args.factor)
    if table.empty:
        print(f"error: {args.run_a} and {args.run_b} share no cell (same estimator, hparams, objective, S, device, dtype)",
              file=sys.stderr)
        return 2
    shown = table if args.all else table[table["marked"]]
    print(f"{len(table) // len(metrics)} shared cells; {int(table['marked'].sum())} marked changes "
          f"(ratio beyond {args.factor:g}x and intervals apart)")
    for _, row in shown.iterrows():
        hparams = "" if row["hparams"] in ("{}", "") else f" {row['hparams']}"  # every hyperparameter, swept or not
        mark = ("WORSE" if row["worse"] else "better") if row["marked"] else ""
        print(f"{row['estimator']}{hparams} {row['objective']} S={row['n_samples']} {row['device']} {row['metric']}: "
              f"{row['a']:.4g} [{row['a_lo']:.3g}, {row['a_hi']:.3g}] -> {row['b']:.4g} [{row['b_lo']:.3g}, "
              f"{row['b_hi']:.3g}]  x{row['ratio']:.3f}  {mark}")
    failed = False
    for metric, pct in args.fail_on:
        part = table[(table["metric"] == metric) & table["worse"]]
        limit = 1 + pct / 100
        bad = part[(part["ratio"] > limit) if METRICS[metric][2] else (part["ratio"] < 1 / limit)]
        if not bad.empty:
            failed = True
            print(f"FAIL: {metric} worse by more than {pct:g}% in {len(bad)} cell(s)", file=sys.stderr)
    return 1 if failed else 0
