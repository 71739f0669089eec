"""Throughput: estimates per second against S, CPU beside CUDA, from a sweep or a pytest-benchmark JSON.

Both sources become the same tidy frame: estimator, objective, device, n_samples, f_evals,
estimates_per_s with its spread (from the fastest and slowest timed call), peak memory.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

COLUMNS = ["estimator", "objective", "device", "n_samples", "f_evals", "estimates_per_s",
           "estimates_per_s_lo", "estimates_per_s_hi", "peak_memory_bytes"]


def from_sweep(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["estimates_per_s_lo"] = 1.0 / out["time_per_estimate_max_s"]
    out["estimates_per_s_hi"] = 1.0 / out["time_per_estimate_min_s"]
    if "peak_memory_bytes" not in out:
        out["peak_memory_bytes"] = math.nan
    # One line per estimator setting: the sweep may hold several temperatures of the same cost.
    out = out.sort_values("tau").drop_duplicates(["estimator", "objective", "device", "n_samples"])
    return out[COLUMNS + ["tau"]]


def load_benchmark_json(path: str | Path) -> tuple[pd.DataFrame, dict]:
    """The throughput rows of a `pytest --benchmark-json` file, and its machine and commit info."""
    data = json.loads(Path(path).read_text())
    rows = []
    for bench in data.get("benchmarks", []):
        info, stats = bench.get("extra_info", {}), bench["stats"]
        if "estimates_per_call" not in info:
            continue  # not a throughput case (e.g. the speed-claim benchmarks)
        per_call = info["estimates_per_call"]
        rows.append({
            "estimator": info["estimator"], "objective": info["objective"], "device": info["device"],
            "n_samples": info["n_samples"], "f_evals": info["f_evals"],
            "estimates_per_s": per_call / stats["median"],
            "estimates_per_s_lo": per_call / stats["max"], "estimates_per_s_hi": per_call / stats["min"],
            "peak_memory_bytes": info.get("peak_memory_bytes"),
        })
    if not rows:
        raise ValueError(f"{path} holds no throughput benchmarks; write it with "
                         "pytest --benchmark-only --benchmark-json=FILE")
    meta = {"machine": data.get("machine_info", {}).get("cpu", {}).get("brand_raw", ""),
            "commit": data.get("commit_info", {}).get("id", ""), "datetime": data.get("datetime", "")}
    return pd.DataFrame(rows), meta


def throughput_figure(frame: pd.DataFrame):
    """One panel per objective: estimates per second against S (log-log), CPU solid, CUDA dashed,
    with the spread between the slowest and fastest timed call as a band."""
    objectives = list(dict.fromkeys(frame["objective"]))
    columns = min(4, len(objectives))
    rows = math.ceil(len(objectives) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns + 2, 3.4 * rows), squeeze=False)
    estimators = sorted(frame["estimator"].unique())
    colours = {name: f"C{i % 10}" for i, name in enumerate(estimators)}
    for ax, objective in zip(axes.ravel(), objectives):
        part = frame[frame["objective"] == objective]
        for (estimator, device), series in part.groupby(["estimator", "device"]):
            series = series.sort_values("n_samples")
            style = "-" if device == "cpu" else "--"
            ax.plot(series["n_samples"], series["estimates_per_s"], style, marker="o", markersize=3,
                    color=colours[estimator], label=f"{estimator} ({device})")
            ax.fill_between(series["n_samples"], series["estimates_per_s_lo"], series["estimates_per_s_hi"],
                            color=colours[estimator], alpha=0.15)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(objective, fontsize=10)
        ax.set_xlabel("samples per estimate S")
        ax.set_ylabel("estimates per second")
        ax.grid(True, which="both", alpha=0.3)
    for ax in axes.ravel()[len(objectives):]:
        ax.set_visible(False)
    handles, labels = {}, {}
    for ax in axes.ravel():
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    fig.legend(list(handles.values()), list(handles.keys()), loc="center right", fontsize=8, frameon=False)
    fig.suptitle("throughput (solid: cpu, dashed: cuda; band: fastest to slowest timed call)")
    fig.subplots_adjust(left=0.07, right=0.8, bottom=0.08, top=0.9, wspace=0.35, hspace=0.45)
    return fig, axes


def throughput_table(frame: pd.DataFrame) -> str:
    """Estimates per second, estimators as rows, (device, S) as columns."""
    table = frame.pivot_table(index=["objective", "estimator"], columns=["device", "n_samples"],
                              values="estimates_per_s", aggfunc="first")
    return table.to_html(float_format=lambda v: f"{v:.3g}", na_rep="-", border=0)
