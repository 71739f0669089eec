"""The sequence problems' figure: bias (with its noise floor), variance and cosine to the exact gradient
against the number of samples S, per problem, for the group baselines and the relaxations.

    from reports.load import load_run
    from reports.sequences import sequence_figure
    frame, _ = load_run("runs/variance-...")        # python -m benchmarks.variance --objectives 'seq-sparse*' --samples 2 4 8 16 64
    fig, axes = sequence_figure(frame)

Bias is ||E g - g*|| / ||g*||, drawn with its 95% interval; its noise floor, (bias_norm_hi - bias_norm) /
||g*||, is the radius of that interval (the Monte Carlo error of the mean of N estimates, with the
reference's own error where it is estimated): a bias below it cannot be told from 0, and a hollow marker
says the bias is not significant. Variance (trace, 95% bootstrap interval) and the cosine of the mean
estimate to g* complete the row. Score-function estimators are drawn in blues and greens, relaxations in
reds and oranges. The function only reads rows (benchmarks writes them).
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

SCORE_COLOURS = ["#08306b", "#2171b5", "#6baed6", "#006d2c", "#41ab5d", "#74c476"]
RELAXED_COLOURS = ["#a50f15", "#ef3b2c", "#fd8d3c", "#fdae6b"]
ORDER = ["reinforce", "reinforce_loo", "reinforce_drgrpo", "reinforce_grpo", "reinforce_ema", "reinforce_nvil",
         "st_gumbel_softmax", "gumbel_softmax", "straight_through"]


def _series(frame: pd.DataFrame) -> pd.DataFrame:
    """One series per estimator, or per estimator and hyperparameters where it was run with several."""
    frame = frame.copy()
    hparams = frame["hparams"].fillna("{}").astype(str) if "hparams" in frame else pd.Series("{}", index=frame.index)
    several = hparams.groupby(frame["estimator"]).transform("nunique") > 1
    compact = hparams.str.replace(r'[{}" ]', "", regex=True).str.replace(":", "=")
    frame["series"] = np.where(several, frame["estimator"] + " " + compact, frame["estimator"])
    return frame


def _colours(series: list[str]) -> dict[str, str]:
    score = [s for s in series if s.startswith("reinforce")]
    relaxed = [s for s in series if not s.startswith("reinforce")]
    colours = {name: SCORE_COLOURS[i % len(SCORE_COLOURS)] for i, name in enumerate(score)}
    colours.update({name: RELAXED_COLOURS[i % len(RELAXED_COLOURS)] for i, name in enumerate(relaxed)})
    return colours


def _order(name: str) -> tuple[int, str]:
    estimator = name.split(" ")[0]
    return (ORDER.index(estimator) if estimator in ORDER else len(ORDER), name)


def sequence_figure(frame: pd.DataFrame, problems: list[str] | None = None):
    """(fig, axes): a row per sequence problem (autoregressive family, or `problems` by id), columns bias with
    its noise floor, variance and cosine against S on log axes. Several seeds: the first seed's rows."""
    rows = frame[frame["family"] == "autoregressive"] if "family" in frame else frame[frame["objective"].str.startswith("seq-")]
    if problems is not None:
        rows = frame[frame["objective"].isin(problems)]
    if rows.empty:
        raise ValueError("no sequence-problem rows in this frame; run python -m benchmarks.variance --objectives 'seq-*' "
                         "--samples 2 4 8 16 64")
    if "seed" in rows and rows["seed"].nunique() > 1:
        rows = rows[rows["seed"] == rows["seed"].min()]
    rows = _series(rows)
    names = sorted(rows["series"].unique(), key=_order)
    colours = _colours(names)
    objectives = list(dict.fromkeys(rows["objective"]))
    fig, axes = plt.subplots(len(objectives), 3, figsize=(14, 3.6 * len(objectives)), squeeze=False)
    for row_axes, objective in zip(axes, objectives):
        cells = rows[rows["objective"] == objective]
        norm = float(cells["true_grad_norm"].iloc[0]) if "true_grad_norm" in cells else 1.0
        for name in names:
            series = cells[cells["series"] == name].sort_values("n_samples")
            if series.empty:
                continue
            _draw_series(row_axes, series, norm, colours[name], name)
        _label(row_axes, objective, cells)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0, 0.85, 1))
    return fig, axes


def _draw_series(row_axes, series: pd.DataFrame, norm: float, colour: str, name: str) -> None:
    s = series["n_samples"].to_numpy(float)
    bias = series["bias_norm"].to_numpy(float) / norm
    lo, hi = series["bias_norm_lo"].to_numpy(float) / norm, series["bias_norm_hi"].to_numpy(float) / norm
    floor = hi - bias
    significant = series["bias_significant"].astype(bool).to_numpy() if "bias_significant" in series \
        else np.ones(len(series), bool)
    positive = np.concatenate([floor[floor > 0], bias[bias > 0]])
    tiny = float(positive.min()) / 3 if positive.size else 1e-12
    shown = np.clip(bias, tiny, None)
    ax = row_axes[0]
    ax.plot(s, shown, "-", color=colour, label=name)
    # a bias that is not significant gets only its upper bound: below it, the data cannot tell
    lower = np.where(significant, np.clip(lo, tiny, None), shown)
    ax.errorbar(s, shown, yerr=np.clip(np.vstack([shown - lower, hi - shown]), 0, None),
                fmt="none", ecolor=colour, capsize=2, alpha=0.6)
    ax.scatter(s[significant], shown[significant], color=colour, s=20, zorder=3)
    ax.scatter(s[~significant], shown[~significant], facecolors="none", edgecolors=colour, s=20, zorder=3)
    ax.plot(s, np.clip(floor, tiny, None), ":", color=colour, alpha=0.8, linewidth=1)
    variance = series["variance_trace"].to_numpy(float)
    ax = row_axes[1]
    ax.plot(s, variance, "-o", color=colour, markersize=4)
    if "variance_trace_lo" in series:
        ax.errorbar(s, variance, yerr=np.clip(np.vstack([variance - series["variance_trace_lo"].to_numpy(float),
                                                          series["variance_trace_hi"].to_numpy(float) - variance]), 0, None),
                    fmt="none", ecolor=colour, capsize=2, alpha=0.6)
    row_axes[2].plot(s, series["cosine"].to_numpy(float), "-o", color=colour, markersize=4)


def _label(row_axes, objective: str, cells: pd.DataFrame) -> None:
    ticks = sorted(cells["n_samples"].unique())
    titles = (f"{objective}: relative bias (dotted: its noise floor)", "variance (trace)", "cosine(E g, g*)")
    ylabels = ("||E g - g*|| / ||g*||", "E||g - E g||^2", "cosine")
    for ax, title, ylabel in zip(row_axes, titles, ylabels):
        ax.set_xscale("log")
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("samples per estimate S")
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        ax.grid(True, alpha=0.3)
    row_axes[0].set_yscale("log")
    row_axes[1].set_yscale("log")
    low = float(np.nanmin(cells["cosine"])) if cells["cosine"].notna().any() else 0.0
    row_axes[2].set_ylim(min(0.9, low - 0.02), 1.005)
