"""Plots of a run: per objective, variance and bias against temperature, a bias-variance map, and
cost against variance. Every function returns (fig, axes), in the manner of rliable."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

TAU_LABEL = "temperature tau"


def _label(row, vary_samples: bool, vary_device: bool) -> str:
    label = row["estimator"]
    if vary_samples:
        label += f" S={int(row['n_samples'])}"
    if vary_device:
        label += f" ({row['device']})"
    return label


def log_floor(frame: pd.DataFrame, metric: str) -> float:
    """A floor for a log axis: a third of the smallest positive value of the metric or its bounds."""
    columns = [c for c in (metric, metric + "_lo", metric + "_hi") if c in frame]
    values = frame[columns].to_numpy(dtype=float).ravel()
    positive = values[np.isfinite(values) & (values > 0)]
    return positive.min() / 3 if positive.size else 1e-12


def _positive(values, floor: float = 1e-300) -> np.ndarray:
    """Log axes cannot show 0: clip at the floor (an interval reaching 0 is drawn down to it)."""
    return np.clip(np.asarray(values, dtype=float), floor, None)


def against_temperature(ax, frame: pd.DataFrame, metric: str, ylabel: str, labels: dict) -> None:
    """metric vs tau on log axes with interval bands; tau-free estimators as horizontal lines."""
    tau_range = frame["tau"].dropna()
    floor = log_floor(frame, metric)
    for key, rows in frame.groupby("series", sort=True):
        colour = labels[key][1]
        rows = rows.sort_values("tau")
        if rows["tau"].isna().all():
            row = rows.iloc[0]
            ax.axhline(_positive([row[metric]], floor)[0], color=colour, linestyle="--", label=labels[key][0])
            ax.axhspan(_positive([row[metric + "_lo"]], floor)[0], _positive([row[metric + "_hi"]], floor)[0],
                       color=colour, alpha=0.12)
        else:
            ax.plot(rows["tau"], _positive(rows[metric], floor), marker="o", color=colour, label=labels[key][0])
            ax.fill_between(rows["tau"], _positive(rows[metric + "_lo"], floor),
                            _positive(rows[metric + "_hi"], floor), color=colour, alpha=0.2)
    ax.set_yscale("log")
    if not tau_range.empty:
        ax.set_xscale("log")
        ax.set_xlim(tau_range.min() / 1.5, tau_range.max() * 1.5)
    ax.set_xlabel(TAU_LABEL)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)


def scatter_map(ax, frame: pd.DataFrame, x: str, y: str, xlabel: str, ylabel: str, labels: dict,
                y_interval: bool = True) -> None:
    """One point per cell with interval bars; points of one series joined in order of tau."""
    x_floor, y_floor = log_floor(frame, x), log_floor(frame, y)
    for key, rows in frame.groupby("series", sort=True):
        colour = labels[key][1]
        rows = rows.sort_values("tau")
        xs, ys = _positive(rows[x], x_floor), _positive(rows[y], y_floor)
        xerr = np.abs(np.vstack([xs - _positive(rows[x + "_lo"], x_floor), _positive(rows[x + "_hi"], x_floor) - xs])) \
            if x + "_lo" in rows else None
        yerr = np.abs(np.vstack([ys - _positive(rows[y + "_lo"], y_floor), _positive(rows[y + "_hi"], y_floor) - ys])) \
            if y_interval and y + "_lo" in rows else None
        ax.errorbar(xs, ys, xerr=xerr, yerr=yerr, fmt="o-" if len(rows) > 1 else "o", color=colour,
                    label=labels[key][0], capsize=2, markersize=4)
        for xv, yv, tau in zip(xs, ys, rows["tau"]):
            if not pd.isna(tau):
                ax.annotate(f"{tau:g}", (xv, yv), textcoords="offset points", xytext=(4, 3), fontsize=7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)


def objective_figure(frame: pd.DataFrame, title: str):
    """Four panels for one objective: variance and bias vs tau, bias-variance map, cost vs variance."""
    frame = frame.copy()
    vary_samples = frame["n_samples"].nunique() > 1
    vary_device = frame["device"].nunique() > 1
    frame["series"] = frame.apply(lambda r: _label(r, vary_samples, vary_device), axis=1)
    # One colour per series across all panels.
    labels = {key: (key, f"C{i % 10}") for i, key in enumerate(sorted(frame["series"].unique()))}
    fig, grid = plt.subplots(2, 2, figsize=(13, 9))
    axes = grid.ravel()
    against_temperature(axes[0], frame, "variance_trace", "gradient variance (trace)", labels)
    axes[0].set_title("variance vs temperature")
    against_temperature(axes[1], frame, "bias_norm", "bias  ||E g - g*||", labels)
    axes[1].set_title("bias vs temperature")
    scatter_map(axes[2], frame, "variance_trace", "bias_norm", "gradient variance (trace)", "bias ||E g - g*||", labels)
    axes[2].set_title("bias-variance map (labels: tau)")
    scatter_map(axes[3], frame, "time_per_estimate_s", "variance_trace", "seconds per estimate",
                "gradient variance (trace)", labels)
    axes[3].set_title("cost vs variance (labels: tau)")
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="center right", fontsize=9, frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 0.83, 0.96))
    return fig, axes
