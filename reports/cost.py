"""Estimators ranked at equal cost: work-normalised variance.

    variance_x_time   = variance_trace * seconds per estimate   (variance after one second of work
                        is variance_trace / (estimates per second), so lower is better)
    variance_x_fevals = variance_trace * f-evaluations per estimate

Timing taken beside other units (a pool, Ray) or under another job's load is marked (timing_flag; for
several rows read together, such as a training run's evaluation points, timing_flags): for timing-grade
figures run with one worker on an idle machine. The VAE and trajectory pages flag their times the same way.
"""
from __future__ import annotations

import html
import math

import pandas as pd

from reports.degenerate import degenerate_reason
from reports.swept import setting
from reports.tables import fmt


# Run-queue wait above this share of the threads' time flags a row's timing: measured 0-1% on idle cores (and
# for a 1-thread cell with a job on the other core), 32-50% with more runnable threads than cores.
WAIT_FLAG = 0.1


def timing_flag(row) -> str:
    """Why a row's timing is less trustworthy than one taken alone on an idle machine, or ''.

    Concurrent: other units ran beside it on the machine (a pool or Ray); under load: the machine's
    load average exceeded its cores while it was timed (another job was running); starved: the process
    got less than half the CPU its wall time allowed one thread; waited: its threads spent more than
    WAIT_FLAG of their time ready to run but without a CPU (benchmarks.timing: the signal that catches a
    job started a moment ago, which the load average shows a minute later, and spinning threads, whose
    CPU seconds look busy)."""
    flags = []
    concurrency = row.get("concurrency")
    if concurrency is not None and not pd.isna(concurrency) and concurrency > 1:
        flags.append(f"concurrent ({int(concurrency)} units at once)")
    cores = row.get("cores")
    loads = [row.get("load_avg_start"), row.get("load_avg_end")]
    loads = [v for v in loads if v is not None and not pd.isna(v)]
    if cores and not pd.isna(cores) and loads and max(loads) > cores:
        flags.append(f"under load (load average {max(loads):.1f} on {int(cores)} cores)")
    cpu, wall = row.get("timed_cpu_s"), row.get("timed_wall_s")
    if cpu is not None and wall and not pd.isna(cpu) and not pd.isna(wall) and wall > 0.02 and cpu < 0.5 * wall:
        flags.append(f"starved (CPU {cpu:.2g} s in {wall:.2g} s)")
    waited = row.get("timed_wait_share")
    if waited is not None and not pd.isna(waited) and waited > WAIT_FLAG:
        flags.append(f"waited for a CPU ({waited:.0%} of its threads' time)")
    return "; ".join(flags)


def timing_flags(rows: pd.DataFrame) -> str:
    """timing_flag over several rows read together (a training run's evaluation points, a label's seeds):
    each condition once, at its worst. Rows without the hygiene columns (older runs) flag nothing."""
    def column(name: str) -> pd.Series:
        return pd.to_numeric(rows[name], errors="coerce") if name in rows else pd.Series(math.nan, index=rows.index)

    if rows.empty:
        return ""
    worst = {"concurrency": column("concurrency").max()}
    load = pd.concat([column("load_avg_start"), column("load_avg_end")], axis=1).max(axis=1)
    cores = column("cores")
    per_core = (load / cores).where(cores > 0)
    if per_core.notna().any():  # the row most loaded for its own machine's cores (Ray nodes may differ)
        index = per_core.idxmax()
        worst.update(load_avg_end=load[index], cores=cores[index])
    cpu, wall = column("timed_cpu_s"), column("timed_wall_s")
    share = (cpu / wall).where(wall > 0.02)
    if share.notna().any():  # the row whose process got the least of its wall time
        index = share.idxmin()
        worst.update(timed_cpu_s=cpu[index], timed_wall_s=wall[index])
    worst["timed_wait_share"] = column("timed_wait_share").max()
    return timing_flag(worst)


def flag_html(flag: str) -> str:
    """A timing flag as the pages show it beside a time ('' when there is none)."""
    return f" <span class=flag>{html.escape(flag)}</span>" if flag else ""


def cost_table(frame: pd.DataFrame, palette=None) -> str:
    """One row per cell, sorted by variance x time, degenerate cells last and marked (reports.degenerate: a low
    variance says nothing of an estimate that points the wrong way; a new user found gumbel_softmax at relative
    bias 0.72 heading this table, unmarked); the relative bias beside each. Intervals carried over from the
    variance. `setting`: the swept hyperparameters that tell an estimator's rows apart (reports.swept.setting)."""
    frame = frame.copy()
    frame["_degenerate"] = [degenerate_reason(row) for _, row in frame.iterrows()]
    frame["_last"] = frame["_degenerate"] != ""
    frame = frame.sort_values(["_last", "variance_x_time"], kind="stable")
    lines = ["<table><thead><tr><th>estimator</th><th>setting</th><th>S</th><th>device</th>"
             "<th>variance &times; seconds</th><th>variance &times; f-evals</th><th>estimates / s</th>"
             "<th>f-evals</th><th>rel. bias</th><th>timing</th></tr></thead><tbody>"]
    for _, row in frame.iterrows():
        time = row["time_per_estimate_s"]
        fevals = row["f_evals"]
        reason = row["_degenerate"]
        bias = fmt(row["rel_bias"]) if "rel_bias" in row and not pd.isna(row["rel_bias"]) else "-"
        if reason:
            bias += f" <span class=degenerate title='{html.escape(reason)}'>degenerate</span>"
        lines.append(
            f"<tr><td>{palette.swatch(row['estimator']) if palette else ''}{html.escape(row['estimator'])}</td>"
            f"<td>{html.escape(setting(row) or '-')}</td><td>{int(row['n_samples'])}</td>"
            f"<td>{row['device']}</td>"
            f"<td>{fmt(row['variance_x_time'])} <span class=ci>[{fmt(row['variance_trace_lo'] * time)}, "
            f"{fmt(row['variance_trace_hi'] * time)}]</span></td>"
            f"<td>{fmt(row['variance_x_fevals'])} <span class=ci>[{fmt(row['variance_trace_lo'] * fevals)}, "
            f"{fmt(row['variance_trace_hi'] * fevals)}]</span></td>"
            f"<td>{fmt(row['estimates_per_s'])} <span class=ci>[{fmt(1 / row['time_per_estimate_max_s'])}, "
            f"{fmt(1 / row['time_per_estimate_min_s'])}]</span></td><td>{int(fevals)}</td><td>{bias}</td>"
            f"<td class=flag>{html.escape(timing_flag(row))}</td></tr>")
    lines.append("</tbody></table>")
    return "\n".join(lines)
