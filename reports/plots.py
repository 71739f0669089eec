"""Plots of a run: per objective, variance and bias against the swept hyperparameter (the temperature,
or any other: reports.swept), a bias-variance map, and cost against variance. Every function returns
(fig, axes), in the manner of rliable. Frames come annotated by `reports.swept.annotate` (columns
x_name, x, variant).

Colour = estimator; line style and marker = (S, device) setting. A bias that is not significant
(bias_significant false) is drawn as a hollow marker with only its upper bound: the figure is then
noise, and the bound is what the data say.
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.colors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from reports.swept import annotate, axis_label  # noqa: E402

TAU_LABEL = axis_label("tau")
STYLES = ["-", "--", ":", "-."]
MARKERS = ["o", "s", "^", "D"]


def log_floor(frame: pd.DataFrame, metric: str) -> float:
    """A floor for a log axis: a third of the smallest positive value of the metric or its bounds."""
    columns = [c for c in (metric, metric + "_lo", metric + "_hi") if c in frame]
    values = frame[columns].to_numpy(dtype=float).ravel()
    positive = values[np.isfinite(values) & (values > 0)]
    return positive.min() / 3 if positive.size else 1e-12


def _positive(values, floor: float) -> np.ndarray:
    """Log axes cannot show 0: clip at the floor."""
    return np.clip(np.asarray(values, dtype=float), floor, None)


def _styles(frame: pd.DataFrame) -> pd.DataFrame:
    """Series keys and their looks: colour per estimator, style per (S, device)."""
    frame = frame.copy() if "x" in frame else annotate(frame)
    settings = sorted(frame[["n_samples", "device"]].drop_duplicates().itertuples(index=False, name=None))
    several = len(settings) > 1
    names = sorted(frame["estimator"].unique())
    palette = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    colours = {name: matplotlib.colors.to_hex(palette(i % palette.N)) for i, name in enumerate(names)}
    setting_index = {setting: i for i, setting in enumerate(settings)}
    keys = list(zip(frame["n_samples"], frame["device"]))
    # Variants of one estimator (another swept hyperparameter, e.g. gumbel_rao k=1, 10, 100) share its
    # colour and differ in line style and marker, as the (S, device) settings do.
    variant_index = {key: i for i, key in enumerate(sorted(set(frame["variant"])))}
    looks = [variant_index[v] * len(settings) + setting_index[k] for v, k in zip(frame["variant"], keys)]
    frame["colour"] = frame["estimator"].map(colours)
    frame["style"] = [STYLES[i % len(STYLES)] for i in looks]
    frame["marker"] = [MARKERS[i % len(MARKERS)] for i in looks]
    names = [f"{e} {v}" if v else e for e, v in zip(frame["estimator"], frame["variant"])]
    frame["series"] = [f"{n} S={s} {d}" if several else n for n, (s, d) in zip(names, keys)]
    return frame


def _bars(values, lo, hi) -> np.ndarray:
    """Error-bar extents below and above; a percentile bound may sit beyond the estimate, shown as 0."""
    return np.clip(np.vstack([values - lo, hi - values]), 0, None)


def _significance(rows: pd.DataFrame, metric: str) -> np.ndarray:
    if metric == "bias_norm" and "bias_significant" in rows:
        return rows["bias_significant"].astype(bool).to_numpy()
    return np.ones(len(rows), dtype=bool)


def _points(ax, xs, ys, lo, hi, significant, row, label=None, line=True):
    """Markers (hollow where not significant) with interval bars (upper bound only where not)."""
    colour, style, marker = row["colour"], row["style"], row["marker"]
    if line and len(xs) > 1:
        ax.plot(xs, ys, style, color=colour, label=label)
        label = None
    lower = np.where(significant, ys - lo, 0.0)
    ax.errorbar(xs, ys, yerr=_bars(ys, ys - lower, hi), fmt="none", ecolor=colour, capsize=2, alpha=0.7)
    ax.scatter(xs[significant], ys[significant], marker=marker, color=colour, s=22, label=label, zorder=3)
    ax.scatter(xs[~significant], ys[~significant], marker=marker, facecolors="none", edgecolors=colour, s=22,
               label=label if not significant.any() else None, zorder=3)


def against_temperature(ax, frame: pd.DataFrame, metric: str, ylabel: str, x_name: str = "tau") -> None:
    """metric vs the swept hyperparameter (column x; tau by default) on log axes with interval bars;
    estimators that do not sweep it as horizontal lines and bands."""
    floor = log_floor(frame, metric)
    for series, rows in frame.groupby("series", sort=True):
        rows = rows.sort_values("x")
        first = rows.iloc[0]
        values = _positive(rows[metric], floor)
        lo, hi = _positive(rows[metric + "_lo"], floor), _positive(rows[metric + "_hi"], floor)
        significant = _significance(rows, metric)
        if rows["x"].isna().all():
            ax.axhline(values[0], color=first["colour"], linestyle=first["style"], label=series,
                       alpha=1.0 if significant[0] else 0.5)
            if significant[0]:
                ax.axhspan(lo[0], hi[0], color=first["colour"], alpha=0.1)
        else:
            _points(ax, rows["x"].to_numpy(float), values, lo, hi, significant, first, label=series)
    ax.set_yscale("log")
    xs = frame["x"].dropna()
    if not xs.empty:
        if (xs > 0).all():  # temperatures, K, learning rates: log scale; eta may be 0 or negative
            ax.set_xscale("log")
            ax.set_xlim(xs.min() / 1.5, xs.max() * 1.5)
        else:
            span = max(xs.max() - xs.min(), 1e-12)
            ax.set_xlim(xs.min() - 0.1 * span, xs.max() + 0.1 * span)
    ax.set_xlabel(axis_label(x_name))
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)


def per_estimator(ax, frame: pd.DataFrame, metric: str, xlabel: str) -> None:
    """For objectives where no estimator takes a temperature: one interval per estimator setting."""
    floor = log_floor(frame, metric)
    rows = frame.sort_values("series").reset_index(drop=True)
    for position, row in rows.iterrows():
        significant = _significance(rows.iloc[[position]], metric)
        value = _positive([row[metric]], floor)[0]
        lo = _positive([row[metric + "_lo"]], floor)[0] if significant[0] else value
        hi = _positive([row[metric + "_hi"]], floor)[0]
        ax.errorbar([value], [position], xerr=_bars(np.array([value]), np.array([lo]), np.array([hi])), fmt="none", ecolor=row["colour"], capsize=3)
        face = row["colour"] if significant[0] else "none"
        ax.scatter([value], [position], marker=row["marker"], facecolors=face, edgecolors=row["colour"], s=30,
                   label=row["series"], zorder=3)
    ax.set_yticks(range(len(rows)), rows["series"], fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.grid(True, axis="x", alpha=0.3)


def scatter_map(ax, frame: pd.DataFrame, x: str, y: str, xlabel: str, ylabel: str,
                x_bounds: tuple[str, str] | None = None) -> None:
    """One point per cell with interval bars; points of one series joined in order of the swept value."""
    x_floor, y_floor = log_floor(frame, x), log_floor(frame, y)
    for series, rows in frame.groupby("series", sort=True):
        rows = rows.sort_values("x")
        first = rows.iloc[0]
        xs, ys = _positive(rows[x], x_floor), _positive(rows[y], y_floor)
        if x_bounds:
            x_lo, x_hi = _positive(rows[x_bounds[0]], x_floor), _positive(rows[x_bounds[1]], x_floor)
            ax.errorbar(xs, ys, xerr=_bars(xs, x_lo, x_hi), fmt="none", ecolor=first["colour"],
                        capsize=2, alpha=0.5)
        elif x + "_lo" in rows:
            x_lo = np.where(_significance(rows, x), _positive(rows[x + "_lo"], x_floor), xs)
            ax.errorbar(xs, ys, xerr=_bars(xs, x_lo, _positive(rows[x + "_hi"], x_floor)), fmt="none",
                        ecolor=first["colour"], capsize=2, alpha=0.5)
        _points(ax, xs, ys, _positive(rows[y + "_lo"], y_floor), _positive(rows[y + "_hi"], y_floor),
                _significance(rows, y), first, label=series)
        for xv, yv, swept in zip(xs, ys, rows["x"]):
            if not pd.isna(swept):
                ax.annotate(f"{swept:g}", (xv, yv), textcoords="offset points", xytext=(4, 3), fontsize=7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)


def objective_figure(frame: pd.DataFrame, title: str, x_name: str | None = "tau"):
    """Four panels for one objective: variance and bias vs the swept hyperparameter `x_name` (or per
    estimator when nothing is swept), the bias-variance map, and cost vs variance."""
    frame = _styles(frame)
    fig, grid = plt.subplots(2, 2, figsize=(13, 9))
    axes = grid.ravel()
    swept = x_name if x_name and frame["x"].notna().any() else None
    what = "temperature" if swept == "tau" else swept
    if swept:
        against_temperature(axes[0], frame, "variance_trace", "gradient variance (trace)", swept)
        axes[0].set_title(f"variance vs {what}")
        against_temperature(axes[1], frame, "bias_norm", "bias ||E g - g*||", swept)
        axes[1].set_title(f"bias vs {what} (hollow: not significant)")
    else:
        per_estimator(axes[0], frame, "variance_trace", "gradient variance (trace)")
        axes[0].set_title("variance (no hyperparameter swept here)")
        per_estimator(axes[1], frame, "bias_norm", "bias ||E g - g*||")
        axes[1].set_title("bias (hollow: not significant, bar: upper bound)")
    scatter_map(axes[2], frame, "variance_trace", "bias_norm", "gradient variance (trace)", "bias ||E g - g*||")
    axes[2].set_title(f"bias-variance map (labels: {'tau' if swept == 'tau' else swept or 'none'})")
    scatter_map(axes[3], frame, "time_per_estimate_s", "variance_trace",
                "seconds per estimate (amortised over a vectorised batch)", "gradient variance (trace)",
                x_bounds=("time_per_estimate_min_s", "time_per_estimate_max_s"))
    axes[3].set_title("cost vs variance (bars: fastest to slowest call)")
    for ax in axes:
        # Minor ticks on log axes spanning many decades cost thousands of tick objects a figure.
        ax.minorticks_off()
    handles = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    fig.legend(list(handles.values()), list(handles.keys()), loc="center right", fontsize=9, frameon=False)
    fig.suptitle(title)
    # Fixed margins: tight_layout measured every log-axis tick label and took 1 s a figure.
    fig.subplots_adjust(left=0.13, right=0.79, bottom=0.07, top=0.92, wspace=0.35, hspace=0.3)
    return fig, axes
