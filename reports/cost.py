"""Estimators ranked at equal cost: work-normalised variance.

    variance_x_time   = variance_trace * seconds per estimate   (variance after one second of work
                        is variance_trace / (estimates per second), so lower is better)
    variance_x_fevals = variance_trace * f-evaluations per estimate
"""
from __future__ import annotations

import html

import pandas as pd

from reports.tables import fmt


def cost_table(frame: pd.DataFrame) -> str:
    """One row per cell, sorted by variance x time; intervals carried over from the variance."""
    frame = frame.copy().sort_values("variance_x_time")
    lines = ["<table><thead><tr><th>estimator</th><th>&tau;</th><th>S</th><th>device</th>"
             "<th>variance &times; seconds</th><th>variance &times; f-evals</th><th>estimates / s</th>"
             "<th>f-evals</th></tr></thead><tbody>"]
    for _, row in frame.iterrows():
        time = row["time_per_estimate_s"]
        fevals = row["f_evals"]
        tau = "-" if pd.isna(row["tau"]) else f"{row['tau']:g}"
        lines.append(
            f"<tr><td>{html.escape(row['estimator'])}</td><td>{tau}</td><td>{int(row['n_samples'])}</td>"
            f"<td>{row['device']}</td>"
            f"<td>{fmt(row['variance_x_time'])} <span class=ci>[{fmt(row['variance_trace_lo'] * time)}, "
            f"{fmt(row['variance_trace_hi'] * time)}]</span></td>"
            f"<td>{fmt(row['variance_x_fevals'])} <span class=ci>[{fmt(row['variance_trace_lo'] * fevals)}, "
            f"{fmt(row['variance_trace_hi'] * fevals)}]</span></td>"
            f"<td>{fmt(row['estimates_per_s'])} <span class=ci>[{fmt(1 / row['time_per_estimate_max_s'])}, "
            f"{fmt(1 / row['time_per_estimate_min_s'])}]</span></td><td>{int(fevals)}</td></tr>")
    lines.append("</tbody></table>")
    return "\n".join(lines)
