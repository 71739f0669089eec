"""Several seeds of one cell as one row: the mean over seeds, with an interval that holds the spread.

A stateful estimator's variance depends on the state its seed led it to (NVIL's on tucker-0.499 was
5.1e-9 with seed 0 and 1.6e-7 with seed 1, each far outside the other's interval), so one seed's
interval understates what a user will see. With several seeds, each figure is reported as the mean
over the seeds, and its interval as the envelope of the seeds' intervals (the lowest lower bound to
the highest upper bound): it covers each seed's Monte Carlo error and the spread between seeds.
`seeds` counts them and `<metric>_seed_min` / `_seed_max` keep the spread of the point values, so
tables, plots and `compare` need nothing else.
"""
from __future__ import annotations

import pandas as pd

KEY = ["estimator", "hparams", "objective", "n_samples", "n_estimates", "device", "dtype"]
SPREAD = ["variance_trace", "bias_norm", "mse"]


def combine_seeds(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per cell across seeds; the frame unchanged when every cell has one seed."""
    if "seed" not in frame or frame.empty or not frame.duplicated([k for k in KEY if k in frame]).any():
        return frame.assign(seeds=1) if not frame.empty else frame
    key = [k for k in KEY if k in frame]
    numeric = [c for c in frame.select_dtypes("number").columns if c not in key and c != "seed"]
    lows = {c for c in numeric if c.endswith("_lo") or c.endswith("_min_s")}
    highs = {c for c in numeric if c.endswith("_hi") or c.endswith("_max_s")} | {"bias_z_max"}
    sums = {"nonfinite", "n_finite", "n_estimates_total"}
    rows = []
    for _, group in frame.groupby(key, sort=False, dropna=False):
        row = group.iloc[0].copy()
        for column in numeric:
            values = group[column]
            row[column] = (values.min() if column in lows else values.max() if column in highs
                           else values.sum() if column in sums else values.mean())
        for metric in SPREAD:
            if metric in group:
                row[f"{metric}_seed_min"], row[f"{metric}_seed_max"] = group[metric].min(), group[metric].max()
        if "bias_significant" in group:  # flagged when any seed's bias is significant: never hidden by another
            row["bias_significant"] = bool(group["bias_significant"].astype(bool).any())
        row["seeds"] = len(group)
        row["seed"] = int(group["seed"].min())
        row["cell_id"] = str(row["cell_id"]).rsplit("|seed=", 1)[0] + f"|seeds={len(group)}"
        rows.append(row)
    return pd.DataFrame(rows).reset_index(drop=True)
