"""Plots of a variance sweep, built from the metric catalogue and the run's palette. Every function
returns (fig, axes), in the manner of rliable. Frames come annotated by `reports.swept.annotate`
(columns x_name, x, variant) and combined over seeds by `reports.seeds.combine_seeds`.

One row of panels per estimator family (reports.palette; at most ~7 estimators a panel), so that
similar colours never share a panel, and the same y-axis down each column so the rows compare:

- `objective_figure`: variance and bias against the swept hyperparameter (the temperature, or any
  other), or one interval per estimator when nothing is swept; a third column of MSE against the
  seconds per estimate (what it costs). MSE against the temperature is reports.temperature's figure.
- `samples_figure`: with several S, variance, bias, MSE and the cosine to g* against S on log axes.

Conventions: a bias that is not significant is a hollow marker with only its upper bound, and the
noise floor (the bias the run could detect: the 95% radius of ||mean - E g||, bias_norm_hi -
bias_norm) is a shaded band below it; a value of exactly 0 (an exact or degenerate estimator) cannot
sit on a log axis and is stated in the panel instead of drawn at an arbitrary floor; with several
seeds, a thick pale bar spans the seeds' values inside the interval that holds their spread.
"""
from __future__ import annotations

import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.font_manager  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from reports.catalogue import VARIANCE, Metric  # noqa: E402
from reports.palette import STYLES, Palette  # noqa: E402
from reports.swept import annotate, axis_label  # noqa: E402
from reports.ticks import LABEL_SIZE, MAX_DECADES_WITH_MINOR_TICKS, TICK_SIZE, decades  # noqa: E402

S_LABEL = "samples per estimate S"
TIME_LABEL = "seconds per estimate (s)"


def log_floor(frame: pd.DataFrame, metric: str) -> float:
    """A floor for a log axis: a third of the smallest positive value of the metric or its bounds, and for the
    bias of its noise floor (drawn as a band from this floor up: with every bias well above its noise floor, a
    floor from the biases alone sat above the band, and no band was drawn)."""
    columns = [c for c in (metric, metric + "_lo", metric + "_hi") if c in frame]
    values = frame[columns].to_numpy(dtype=float).ravel()
    if metric == "bias_norm" and "bias_norm_hi" in frame:
        values = np.concatenate([values, noise_floor(frame).to_numpy(dtype=float)])
    positive = values[np.isfinite(values) & (values > 0)]
    return positive.min() / 3 if positive.size else 1e-12


def noise_floor(frame: pd.DataFrame) -> pd.Series:
    """The bias the run could detect: the 95% radius of the mean's noise (bias_norm_hi - bias_norm)."""
    return (frame["bias_norm_hi"] - frame["bias_norm"]).clip(lower=0)


def _bars(values, lo, hi) -> np.ndarray:
    """Error-bar extents below and above; a percentile bound may sit beyond the estimate, shown as 0."""
    return np.clip(np.vstack([values - lo, hi - values]), 0, None)


def _significance(rows: pd.DataFrame, metric: str) -> np.ndarray:
    if metric == "bias_norm" and "bias_significant" in rows:
        return rows["bias_significant"].astype(bool).to_numpy()
    return np.ones(len(rows), dtype=bool)


def with_looks(frame: pd.DataFrame, palette: Palette, series_of) -> pd.DataFrame:
    """Colour and marker per estimator (the palette); line style per estimator, or per other setting
    (a variant, S, device) where the series split an estimator; `series` the legend label."""
    frame = frame.copy()
    frame["series"] = [series_of(row) for _, row in frame.iterrows()]
    looks = [palette[e] for e in frame["estimator"]]
    frame["colour"] = [look.colour for look in looks]
    frame["marker"] = [look.marker for look in looks]
    per_estimator = frame.groupby("estimator")["series"].nunique()
    settings = {}
    styles = []
    for estimator, series, look in zip(frame["estimator"], frame["series"], looks):
        if per_estimator[estimator] > 1:
            index = settings.setdefault(estimator, {}).setdefault(series, len(settings.get(estimator, {})))
            styles.append(STYLES[index % len(STYLES)])
        else:
            styles.append(look.style)
    frame["style"] = styles
    return frame


ZERO_NOTE_CHARACTERS = 40  # a line of the note in 7-point type, inside one of the report's panels


def _zero_note(ax, names: list[str], metric: Metric) -> None:
    if names:
        # Wrapped to the panel's width by hand: matplotlib's wrap=True wraps at the figure's edge, so a long
        # list ran into the neighbouring panel.
        text = f"{metric.name.split('_')[0]} = 0 (not drawn on a log axis): " + ", ".join(names)
        ax.text(0.01, 0.01, textwrap.fill(text, ZERO_NOTE_CHARACTERS), transform=ax.transAxes, fontsize=7,
                va="bottom", color="#444")


def metric_against(ax, frame: pd.DataFrame, metric: Metric, x: str, xlabel: str,
                   x_values: pd.Series | None = None) -> None:
    """`metric` against column `x` per series, with interval bars. Series whose x is missing (an
    estimator that does not sweep it) are horizontal lines with their interval as a band. `x_values`:
    the values the axis must span (the whole figure's, so that rows share it)."""
    name = metric.name
    log = metric.log_scale
    zeros = []
    floor = log_floor(frame, name) if log else None
    for series, rows in frame.groupby("series", sort=False):
        rows = rows.sort_values(x)
        look = rows.iloc[0]
        values = rows[name].to_numpy(float)
        lo = rows[metric.lo].to_numpy(float) if metric.lo and metric.lo in rows else values
        hi = rows[metric.hi].to_numpy(float) if metric.hi and metric.hi in rows else values
        significant = _significance(rows, name)
        keep = np.isfinite(values)
        if log:
            zero = keep & (values <= 0)
            if zero.any():
                zeros.append(series)
            keep &= values > 0
            lo = np.where(lo > 0, lo, floor)
        xs = rows[x].to_numpy(float)
        if np.isnan(xs).all():
            if keep.any():
                ax.axhline(values[keep][0], color=look["colour"], linestyle=look["style"],
                           alpha=1.0 if significant[keep][0] else 0.5)
                if name == "bias_norm":  # its noise floor, as for the swept ones
                    ax.axhspan(floor, max(float(noise_floor(rows[keep]).iloc[0]), floor), color=look["colour"],
                               alpha=0.08)
                else:
                    ax.axhspan(lo[keep][0], hi[keep][0], color=look["colour"], alpha=0.08)
            continue
        xs, values, lo, hi, significant = xs[keep], values[keep], lo[keep], hi[keep], significant[keep]
        rows = rows[keep]
        if len(xs) == 0:
            continue
        colour = look["colour"]
        if len(xs) > 1:
            ax.plot(xs, values, linestyle=look["style"], color=colour, linewidth=1.2)
        if name == "bias_norm":  # the noise floor: biases below it are not detectable by this run
            band = noise_floor(rows).to_numpy(float)
            ax.fill_between(xs, np.full_like(band, floor if log else 0.0), np.maximum(band, floor if log else 0.0),
                            color=colour, alpha=0.10, linewidth=0, step="mid" if len(xs) == 1 else None)
        lower = np.where(significant, lo, values)
        ax.errorbar(xs, values, yerr=_bars(values, lower, hi), fmt="none", ecolor=colour, capsize=2,
                    alpha=0.7, linewidth=0.9)
        if f"{name}_seed_min" in rows and rows.get("seeds", pd.Series([1])).max() > 1:
            ax.vlines(xs, rows[f"{name}_seed_min"], rows[f"{name}_seed_max"], colors=colour, linewidth=4,
                      alpha=0.3)
        # The legend is built once per row of panels (_finish), not from these artists.
        ax.scatter(xs[significant], values[significant], marker=look["marker"], color=colour, s=24, zorder=3)
        ax.scatter(xs[~significant], values[~significant], marker=look["marker"], facecolors="white",
                   edgecolors=colour, s=24, zorder=3)
    if log:
        ax.set_yscale("log")
    finite_x = (frame[x] if x_values is None else x_values).dropna()
    if not finite_x.empty:
        if (finite_x > 0).all():  # temperatures, S, K, learning rates: log scale; eta may be 0 or negative
            ax.set_xscale("log")
            ax.set_xlim(finite_x.min() / 1.5, finite_x.max() * 1.5)
            ticks = sorted(set(finite_x))
            if len(ticks) <= 9:  # the measured values themselves, not the decades between them
                ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        else:
            span = max(finite_x.max() - finite_x.min(), 1e-12)
            ax.set_xlim(finite_x.min() - 0.1 * span, finite_x.max() + 0.1 * span)
    _zero_note(ax, zeros, metric)
    ax.set_xlabel(xlabel, fontsize=LABEL_SIZE)
    ax.set_ylabel(metric.short_axis_label, fontsize=LABEL_SIZE)
    ax.tick_params(labelsize=TICK_SIZE)
    ax.grid(True, alpha=0.3)


def per_estimator(ax, frame: pd.DataFrame, metric: Metric) -> None:
    """Where nothing is swept: one interval per series, as a horizontal dot plot."""
    name = metric.name
    floor = log_floor(frame, name)
    rows = frame.reset_index(drop=True)
    zeros = []
    for position, row in rows.iterrows():
        value = float(row[name])
        if not np.isfinite(value):
            continue
        if value <= 0:
            zeros.append(row["series"])
            continue
        significant = _significance(rows.iloc[[position]], name)[0]
        lo = float(row[metric.lo]) if significant and float(row[metric.lo]) > 0 else (value if significant else floor)
        hi = float(row[metric.hi])
        ax.errorbar([value], [position], xerr=_bars(np.array([value]), np.array([lo]), np.array([hi])), fmt="none",
                    ecolor=row["colour"], capsize=3)
        if name == "bias_norm":
            ax.barh([position], [float(noise_floor(rows.iloc[[position]]).iloc[0]) - floor], left=floor, height=0.6,
                    color=row["colour"], alpha=0.10)
        if f"{name}_seed_min" in rows and row.get("seeds", 1) > 1:  # the seeds' spread, as in the swept panels
            ax.hlines([position], row[f"{name}_seed_min"], row[f"{name}_seed_max"], colors=row["colour"], linewidth=4,
                      alpha=0.3)
        ax.scatter([value], [position], marker=row["marker"], facecolors=row["colour"] if significant else "white",
                   edgecolors=row["colour"], s=30, zorder=3)
    ax.set_yticks(range(len(rows)), rows["series"], fontsize=TICK_SIZE)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_xscale("log")
    _zero_note(ax, zeros, metric)
    ax.set_xlabel(metric.short_axis_label, fontsize=LABEL_SIZE)
    ax.tick_params(labelsize=TICK_SIZE)
    ax.grid(True, axis="x", alpha=0.3)


# Labels of points closer than this share of the panel's log span, in both directions, would overlap: the
# later one is left out (the tables carry every value).
LABEL_SPACING = 0.08


def _label_points(ax, labels: list[tuple[float, float, str]]) -> None:
    """Annotate (x, y, text) points on log axes, leaving out a label that would sit on one already drawn."""
    if not labels:
        return
    logs = np.log10(np.array([(x, y) for x, y, _ in labels]))
    spans = np.maximum(logs.max(0) - logs.min(0), 1e-12)
    drawn: list[np.ndarray] = []
    for (x, y, text), point in zip(labels, logs / spans):
        if all((np.abs(point - other) >= LABEL_SPACING).any() for other in drawn):
            ax.annotate(text, (x, y), textcoords="offset points", xytext=(3, 2), fontsize=6)
            drawn.append(point)


def cost_map(ax, frame: pd.DataFrame, swept_label: str | None) -> None:
    """MSE against the seconds per estimate, one point per cell (labelled with the swept value where the
    label has room)."""
    mse, time = VARIANCE["mse"], VARIANCE["time_per_estimate_s"]
    floor = log_floor(frame, "mse")
    zeros, labels = [], []
    for series, rows in frame.groupby("series", sort=False):
        rows = rows.sort_values("x")
        look = rows.iloc[0]
        keep = np.isfinite(rows["mse"].to_numpy(float)) & np.isfinite(rows["time_per_estimate_s"].to_numpy(float))
        if (rows["mse"] <= 0).any():
            zeros.append(series)
        keep &= rows["mse"].to_numpy(float) > 0
        rows = rows[keep]
        if rows.empty:
            continue
        xs, ys = rows["time_per_estimate_s"].to_numpy(float), rows["mse"].to_numpy(float)
        if len(rows) > 1:
            ax.plot(xs, ys, linestyle=look["style"], color=look["colour"], linewidth=0.8, alpha=0.6)
        ax.errorbar(xs, ys, xerr=_bars(xs, rows[time.lo].to_numpy(float), rows[time.hi].to_numpy(float)),
                    yerr=_bars(ys, np.clip(rows["mse_lo"].to_numpy(float), floor, None), rows["mse_hi"].to_numpy(float)),
                    fmt="none", ecolor=look["colour"], capsize=2, alpha=0.5, linewidth=0.8)
        ax.scatter(xs, ys, marker=look["marker"], color=look["colour"], s=24, zorder=3)
        if swept_label:
            labels += [(xv, yv, f"{swept:g}") for xv, yv, swept in zip(xs, ys, rows["x"]) if not pd.isna(swept)]
    _label_points(ax, labels)
    ax.set_xscale("log")
    ax.set_yscale("log")
    _zero_note(ax, zeros, mse)
    ax.set_xlabel(TIME_LABEL, fontsize=LABEL_SIZE)
    ax.set_ylabel(mse.short_axis_label, fontsize=LABEL_SIZE)
    ax.tick_params(labelsize=TICK_SIZE)
    ax.grid(True, alpha=0.3)


# A row of panels is ROW_INCHES tall, taller where its legend (or a dot plot's row labels) needs it: a row of 20
# series (4 estimators x 5 S) had cramped labels and a legend running into the next row (found by a new user).
ROW_INCHES = 2.8
INCHES_PER_SERIES = 0.19


def row_heights(frame: pd.DataFrame, groups) -> list[float]:
    """Each row's height in inches, from the number of series its legend lists."""
    return [max(ROW_INCHES, INCHES_PER_SERIES * frame.loc[frame["estimator"].isin(names), "series"].nunique() + 0.9)
            for _, names in groups]


def _grid(groups, heads: list[str], title: str, share: str = "sharey", width: float = 15.0,
          heights: list[float] | None = None):
    """Rows of panels sharing one axis down each column (y against a swept value; x for dot plots),
    the title and the column heads above them; `heights`: each row's, in inches (default ROW_INCHES)."""
    heights = heights or [ROW_INCHES] * len(groups)
    fig, axes = plt.subplots(len(groups), len(heads), figsize=(width, sum(heights) + 1.0), squeeze=False,
                             gridspec_kw={"height_ratios": heights}, **{share: "col"})
    fig.suptitle(title, fontweight="bold", y=1 - 0.12 / fig.get_figheight())
    for ax, head in zip(axes[0], heads):
        ax.annotate(head, (0.5, 1.0), xytext=(0, 22), textcoords="offset points", xycoords="axes fraction",
                    ha="center", fontsize=9, color="#333")
    return fig, axes


# Room left of the first column for its tick labels, past their widest text: the ticks and their padding.
TICK_ROOM_IN = 0.2


def widest_text_inches(fig, texts, fontsize: float) -> float:
    """The width, in inches, of the widest of `texts` drawn in `fig` at `fontsize` (0 for none)."""
    renderer = fig.canvas.get_renderer()
    font = matplotlib.font_manager.FontProperties(size=fontsize)
    return max((renderer.get_text_width_height_descent(str(text), font, ismath=False)[0] for text in texts),
               default=0.0) / fig.dpi


def _left_margin(fig, labels, fontsize: float = TICK_SIZE) -> float:
    """The left margin (a share of the figure's width) that holds the widest of `labels` as y tick labels:
    at least 0.06 (numbers), more for the dot plots' series names, which a fixed margin cut off."""
    return max(0.06, (widest_text_inches(fig, labels, fontsize) + TICK_ROOM_IN) / fig.get_figwidth())


def _finish(fig, axes, groups, frame, left_labels=()) -> None:
    """Titles, legends and minor-tick labels, and the margins (`left_labels`: the first column's text tick
    labels, which the left margin must hold)."""
    for (label, names), row in zip(groups, axes):
        row[0].set_title(label, loc="left", fontsize=9, fontweight="bold")
        handles = []
        for series, rows in frame[frame["estimator"].isin(names)].groupby("series", sort=False):
            look = rows.iloc[0]
            handles.append(matplotlib.lines.Line2D([], [], color=look["colour"], marker=look["marker"],
                                                   linestyle=look["style"], label=series))
        # A handle long enough to show a dash or two beside the marker: series of one estimator differ by
        # line style only (S = 2 solid, S = 4 dashed), and the default handle looked solid for both.
        row[-1].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7, frameon=False,
                       handlelength=4.0)
    for ax in axes.ravel():
        # reports.ticks thins the minor ticks when the figure is saved; on a narrow x-axis spanning less than
        # two decades, fewer of them are labelled than matplotlib would, so that the labels do not overlap.
        if ax.get_xscale() == "log" and decades(ax.get_xlim()) <= MAX_DECADES_WITH_MINOR_TICKS:
            ax.xaxis.set_minor_formatter(matplotlib.ticker.LogFormatterSciNotation(
                labelOnlyBase=False, minor_thresholds=(0.6, 0.3)))
    top = 1 - 0.75 / fig.get_figheight()
    # Fixed margins: tight_layout measured every log-axis tick label and took 1 s a figure.
    fig.subplots_adjust(left=_left_margin(fig, left_labels), right=0.83, bottom=0.35 / fig.get_figheight() + 0.04, top=top, wspace=0.32,
                        hspace=0.55)


def _series_name(row, several_settings: bool, with_x: bool = False) -> str:
    name = f"{row['estimator']} {row['variant']}" if row.get("variant") else str(row["estimator"])
    if with_x and not pd.isna(row.get("x", np.nan)):
        name += f" {row['x_name']}={row['x']:g}"
    if several_settings:
        name += f" S={int(row['n_samples'])} {row['device']}"
    return name


def objective_figure(frame: pd.DataFrame, title: str, x_name: str | None = "tau", palette: Palette | None = None):
    """One objective: per family row, variance and bias (with its noise floor) against the swept
    hyperparameter `x_name` (or one interval per estimator when nothing is swept), and MSE against
    the cost of an estimate."""
    frame = frame.copy() if "x" in frame else annotate(frame)
    palette = palette or Palette(frame["estimator"])
    several = len(frame[["n_samples", "device"]].drop_duplicates()) > 1
    frame = with_looks(frame, palette, lambda row: _series_name(row, several))
    groups = palette.groups(frame["estimator"])
    swept = x_name if x_name and frame["x"].notna().any() else None
    what = "temperature tau" if swept == "tau" else swept
    heads = [f"variance vs {what}" if swept else "variance (nothing swept)",
             f"bias vs {what}, with its noise floor" if swept else "bias, with its noise floor",
             "MSE vs cost" + (f" (labels: {swept})" if swept else "")]
    fig, axes = _grid(groups, heads, title, "sharey" if swept else "sharex", heights=row_heights(frame, groups))
    for (label, names), row in zip(groups, axes):
        rows = frame[frame["estimator"].isin(names)]
        for ax, metric in zip(row, ("variance_trace", "bias_norm")):
            if swept:
                metric_against(ax, rows, VARIANCE[metric], "x", axis_label(swept), x_values=frame["x"])
            else:
                per_estimator(ax, rows, VARIANCE[metric])
        cost_map(row[2], rows, swept)
    if not swept:
        for ax in axes[:, 1]:
            ax.set_yticklabels([])  # the dot plots' rows are labelled once, in the first column
    _finish(fig, axes, groups, frame, left_labels=() if swept else frame["series"].unique())
    fig.text(0.01, 0.005, "hollow: bias not significant (bar: its upper bound); shaded: the noise floor, the bias "
             "this run could detect; thick pale bars: the seeds' spread", fontsize=7, color="#555")
    return fig, axes


def samples_figure(frame: pd.DataFrame, title: str, palette: Palette | None = None):
    """Several S: variance, bias (with its noise floor), MSE and the cosine to g* against S, log axes;
    one curve per estimator setting (swept value, device)."""
    frame = frame.copy() if "x" in frame else annotate(frame)
    palette = palette or Palette(frame["estimator"])
    several_devices = frame["device"].nunique() > 1
    frame = with_looks(frame, palette, lambda row: _series_name(row, False, with_x=True)
                       + (f" {row['device']}" if several_devices else ""))
    groups = palette.groups(frame["estimator"])
    fig, axes = _grid(groups, ["variance vs S", "bias vs S, with its noise floor", "MSE vs S", "cosine to g* vs S"],
                      title, heights=row_heights(frame, groups))
    for (label, names), row in zip(groups, axes):
        rows = frame[frame["estimator"].isin(names)]
        for ax, metric in zip(row, ("variance_trace", "bias_norm", "mse", "cosine")):
            metric_against(ax, rows, VARIANCE[metric], "n_samples", S_LABEL, x_values=frame["n_samples"])
    for ax in axes[:, 3]:
        ax.set_ylim(min(-0.05, float(np.nanmin(frame["cosine"])) - 0.05) if frame["cosine"].notna().any() else -0.05,
                    1.05)
    _finish(fig, axes, groups, frame)
    return fig, axes
