"""Per-objective tables: estimators as rows (grouped by family, with the run's colours), the swept
hyperparameter's values as columns (the temperature, or any other: reports.swept), intervals in
every cell.

Each cell shows variance_trace and bias_norm with their 95% intervals, then the relative bias
||E g - g*|| / ||g*|| and the cosine of E g to g*, the figures a researcher checks first. Bold: the
lowest variance in the column among cells that are not degenerate. Star: the lowest MSE in the table (the best bias-variance trade-off at
this S) among estimators that are not degenerate. Marks: 'degenerate' (reports.degenerate: zero
variance with a significant bias, relative bias >= 0.5, cosine < 0.5, or estimates not finite), '?' where the variance
interval is wider than +-25% of the value (too few estimates to rank), '!' where some estimates
were not finite (left out of the figures), 'n.s. at 99.9%' where the bias is not significant (Bonferroni,
family-wise level 0.999; stricter than the 95% interval beside it). A variance of exactly 0 is written as such.
"""
from __future__ import annotations

import html
import math

import pandas as pd

from reports.catalogue import VARIANCE
from reports.degenerate import degenerate_reason
from reports.palette import Palette
from reports.swept import annotate, column_label

NO_TAU = "defaults (nothing swept)"


def fmt(value: float) -> str:
    """Three significant figures; '-' for a missing value."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.3g}"


def interval(row, name: str) -> str:
    """'value [lo, hi]' with the bounds the catalogue names for the metric (reports.catalogue)."""
    metric = VARIANCE.get(name)
    lo_name, hi_name = (metric.lo, metric.hi) if metric and metric.lo else (name + "_lo", name + "_hi")
    lo, hi = row.get(lo_name), row.get(hi_name)
    if lo is None or hi is None or (isinstance(lo, float) and math.isnan(lo)):
        return fmt(row[name])
    return f"{fmt(row[name])} <span class=ci>[{fmt(lo)}, {fmt(hi)}]</span>"


def column_of(row) -> str:
    return column_label(row["x_name"], row["x"])


NOT_SIGNIFICANT_TITLE = ("bias not significant at family-wise level 0.999; its 95% interval may still exclude 0, as it "
                         "does in about 1 cell in 20 of an unbiased estimator")


def cell_html(row, best_variance: bool, best_mse: bool) -> str:
    flags = []
    half_width = (row["variance_trace_hi"] - row["variance_trace_lo"]) / 2
    if row["variance_trace"] > 0 and half_width > 0.25 * row["variance_trace"]:
        flags.append("<span class=flag title='variance interval wider than +-25%'>?</span>")
    if row.get("nonfinite", 0) > 0:
        flags.append(f"<span class=flag title='{int(row['nonfinite'])} non-finite estimates left out'>!</span>")
    variance = "0 <span class=ci>(exactly: no randomness left)</span>" if row["variance_trace"] == 0 \
        else interval(row, "variance_trace")
    if best_variance:
        variance = f"<b>{variance}</b>"
    # The mark names its level: beside a 95% interval that excludes 0 (about 1 cell in 20 of an unbiased estimator),
    # a bare "n.s." read as a contradiction (found by a new user).
    significance = "" if row.get("bias_significant", True) else \
        f" <span class=ns title='{NOT_SIGNIFICANT_TITLE}'>n.s. at 99.9%</span>"
    star = "<span class=best title='lowest MSE in this table'>&#9733;</span> " if best_mse else ""
    reason = degenerate_reason(row)
    degenerate = f" <span class=degenerate title='{html.escape(reason)}'>degenerate</span>" if reason else ""
    extras = []
    if "rel_bias" in row and not pd.isna(row["rel_bias"]):
        extras.append(f"rel {fmt(row['rel_bias'])}")
    if "cosine" in row and not pd.isna(row["cosine"]):
        extras.append(f"cos {fmt(row['cosine'])}")
    extra = f"<br><span class=minor>{' &middot; '.join(extras)}</span>" if extras else ""
    return (f"<td>{star}var {variance}<br>bias {interval(row, 'bias_norm')}{significance}{extra}{degenerate}"
            f"{' ' + ''.join(flags) if flags else ''}</td>")


def objective_table(frame: pd.DataFrame, palette: Palette | None = None) -> str:
    """HTML for one (objective, S, device) slice of the results."""
    frame = frame.copy() if "x" in frame else annotate(frame)
    palette = palette or Palette(frame["estimator"])
    frame["column"] = frame.apply(column_of, axis=1)
    frame["row"] = [f"{e} {v}" if v else e for e, v in zip(frame["estimator"], frame["variant"])]
    duplicated = frame.duplicated(["row", "column"], keep=False)
    if duplicated.any():
        raise ValueError("two results for one table cell: " + ", ".join(frame.loc[duplicated, "cell_id"]))
    swept = sorted({(name, value) for name, value in zip(frame["x_name"], frame["x"])
                    if isinstance(name, str) and not math.isnan(value)}, key=lambda p: (p[0] != "tau", p[0], p[1]))
    columns = ([NO_TAU] if (frame["column"] == NO_TAU).any() else []) + [column_label(n, v) for n, v in swept]
    eligible = frame[[not degenerate_reason(row) for _, row in frame.iterrows()]]
    best_variance = eligible.loc[eligible.groupby("column")["variance_trace"].idxmin().dropna()].index
    best_mse = eligible["mse"].idxmin() if eligible["mse"].notna().any() else None
    head = "".join(f"<th>{c}</th>" for c in columns)
    lines = [f"<table><thead><tr><th>estimator</th>{head}</tr></thead><tbody>"]
    order = {name: i for i, name in enumerate(palette.ordered(frame["estimator"]))}
    for label, rows in sorted(frame.groupby("row", sort=True), key=lambda item: (order[item[1]["estimator"].iloc[0]],
                                                                                 item[0])):
        cells = []
        for column in columns:
            hit = rows[rows["column"] == column]
            if hit.empty:
                cells.append("<td class=empty></td>")
            else:
                index = hit.index[0]
                cells.append(cell_html(hit.loc[index], index in best_variance, index == best_mse))
        estimator = rows["estimator"].iloc[0]
        bias_kind = "unbiased" if bool(rows["unbiased"].iloc[0]) else "biased"
        lines.append(f"<tr><th>{palette.swatch(estimator)}{html.escape(label)}<br><span class=kind>"
                     f"{palette[estimator].family}, {bias_kind}</span></th>{''.join(cells)}</tr>")
    lines.append("</tbody></table>")
    return "\n".join(lines)
