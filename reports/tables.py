"""Per-objective tables: estimators as rows, the swept hyperparameter's values as columns (the
temperature, or any other: reports.swept), intervals in every cell.

Each cell shows variance_trace and bias_norm with their 95% intervals. Bold: the lowest variance
in the column. Star: the lowest MSE in the table (the best bias-variance trade-off at this S).
Flags: '?' where the variance interval is wider than +-25% of the value (too few estimates to
rank), '!' where some estimates were not finite (left out of the figures), 'n.s.' where the bias
is not significant (Bonferroni, family-wise level 0.999).
"""
from __future__ import annotations

import html
import math

import pandas as pd

from reports.swept import annotate, column_label

NO_TAU = "defaults (nothing swept)"


def fmt(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.3g}"


def interval(row, name: str) -> str:
    return f"{fmt(row[name])} <span class=ci>[{fmt(row[name + '_lo'])}, {fmt(row[name + '_hi'])}]</span>"


def column_of(row) -> str:
    return column_label(row["x_name"], row["x"])


def cell_html(row, best_variance: bool, best_mse: bool) -> str:
    flags = []
    half_width = (row["variance_trace_hi"] - row["variance_trace_lo"]) / 2
    if row["variance_trace"] > 0 and half_width > 0.25 * row["variance_trace"]:
        flags.append("<span class=flag title='variance interval wider than +-25%'>?</span>")
    if row.get("nonfinite", 0) > 0:
        flags.append(f"<span class=flag title='{int(row['nonfinite'])} non-finite estimates left out'>!</span>")
    variance = interval(row, "variance_trace")
    if best_variance:
        variance = f"<b>{variance}</b>"
    significance = "" if row.get("bias_significant", True) else " <span class=ns>n.s.</span>"
    star = "<span class=best title='lowest MSE in this table'>&#9733;</span> " if best_mse else ""
    return (f"<td>{star}var {variance}<br>bias {interval(row, 'bias_norm')}{significance}"
            f"{' ' + ''.join(flags) if flags else ''}</td>")


def objective_table(frame: pd.DataFrame) -> str:
    """HTML for one (objective, S, device) slice of the results."""
    frame = frame.copy() if "x" in frame else annotate(frame)
    frame["column"] = frame.apply(column_of, axis=1)
    frame["row"] = [f"{e} {v}" if v else e for e, v in zip(frame["estimator"], frame["variant"])]
    duplicated = frame.duplicated(["row", "column"], keep=False)
    if duplicated.any():
        raise ValueError("two results for one table cell: " + ", ".join(frame.loc[duplicated, "cell_id"]))
    swept = sorted({(name, value) for name, value in zip(frame["x_name"], frame["x"])
                    if isinstance(name, str) and not math.isnan(value)}, key=lambda p: (p[0] != "tau", p[0], p[1]))
    columns = ([NO_TAU] if (frame["column"] == NO_TAU).any() else []) + [column_label(n, v) for n, v in swept]
    best_variance = frame.loc[frame.groupby("column")["variance_trace"].idxmin()].index
    best_mse = frame["mse"].idxmin()
    head = "".join(f"<th>{c}</th>" for c in columns)
    lines = [f"<table><thead><tr><th>estimator</th>{head}</tr></thead><tbody>"]
    for estimator, rows in frame.groupby("row", sort=True):
        cells = []
        for column in columns:
            hit = rows[rows["column"] == column]
            if hit.empty:
                cells.append("<td class=empty></td>")
            else:
                index = hit.index[0]
                cells.append(cell_html(hit.loc[index], index in best_variance, index == best_mse))
        bias_kind = "unbiased" if bool(rows["unbiased"].iloc[0]) else "biased"
        lines.append(f"<tr><th>{html.escape(estimator)}<br><span class=kind>{bias_kind}</span></th>{''.join(cells)}</tr>")
    lines.append("</tbody></table>")
    return "\n".join(lines)
