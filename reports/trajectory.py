"""The report of `python -m benchmarks.trajectory`: per problem, the exact loss against step and against
f-evaluations (the spread over seeds as a band), the log gradient variance against step, the parameter
trajectory, and a table of how long each estimator took to bring the excess loss below 10% of its start.

Excess loss = exact loss - inf over theta of the loss (the family states it: Tucker's toy min(t^2,
(1 - t)^2)); a threshold relative to the loss itself would mean nothing at t = 0.499, whose whole range
is |1 - 2t| = 0.002 (the loss is t^2 + s(1 - 2t), s = sigmoid(theta)). Where a family states no infimum, the lowest loss any run reached stands in, and the page
says so. Times are read on the measurement grid (every --measure-every steps).
"""
from __future__ import annotations

import html
import math
import re
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from markupsafe import Markup  # noqa: E402

from reports.files import atomic_write  # noqa: E402
from reports.cost import timing_flags  # noqa: E402
from reports.load import load_run  # noqa: E402
from reports.palette import STYLES, Palette  # noqa: E402
from reports.plots import widest_text_inches  # noqa: E402
from reports.tables import fmt  # noqa: E402
from reports.ticks import save_figure  # noqa: E402

THRESHOLD = 0.1
# run.json keys in the page's heading line; the executor's say where (and how many units at once) the times were taken
META_KEYS = ("preset", "steps", "optimizer", "lr", "samples", "n_estimates", "seeds", "executor", "concurrency",
             "worker_threads")


def _labels(frame: pd.DataFrame) -> pd.Series:
    hp = frame["hparams"].fillna("{}").map(lambda text: "" if text == "{}" else " " + re.sub(r'[{}"]', "", text))
    return frame["estimator"] + hp


def with_excess(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Rows with `excess` (loss - infimum) per problem, and for each problem where the infimum came from."""
    frame = frame.copy()
    notes = {}
    for problem, rows in frame.groupby("problem"):
        infimum = rows["loss_infimum"].dropna()
        if len(infimum):
            value, notes[problem] = float(infimum.iloc[0]), "closed form"
        else:
            value, notes[problem] = float(rows["exact_loss"].min()), "lowest loss reached by any run"
        frame.loc[rows.index, "excess"] = rows["exact_loss"] - value
    return frame, notes


def time_to_threshold(rows: pd.DataFrame) -> dict:
    """Step, f-evaluations and seconds at the first measurement with excess < THRESHOLD x its start."""
    rows = rows.sort_values("step")
    start = rows["excess"].iloc[0]
    hit = rows[rows["excess"] < THRESHOLD * start]
    if hit.empty:
        return {"step": math.nan, "f_evals": math.nan, "seconds": math.nan}
    first = hit.iloc[0]
    return {"step": first["step"], "f_evals": first["f_evals_so_far"], "seconds": first["train_seconds"]}


def threshold_table(frame: pd.DataFrame) -> str:
    lines = ["<table><thead><tr><th>estimator</th><th>seeds that reached it</th><th>steps</th><th>f-evaluations</th>"
             "<th>training seconds</th><th>excess loss at the end</th><th>timing</th></tr></thead><tbody>"]
    summary = []
    for label, rows in frame.groupby("label"):
        reached = pd.DataFrame([time_to_threshold(seed_rows) for _, seed_rows in rows.groupby("seed")])
        ends = rows.loc[rows.groupby("seed")["step"].idxmax(), "excess"]
        # training seconds count every step since the start: the flag reads all the label's measurement rows
        summary.append((reached["step"].mean() if reached["step"].notna().all() else math.inf, label, reached, ends,
                        timing_flags(rows)))
    for _, label, reached, ends, flag in sorted(summary, key=lambda item: (item[0], item[1])):
        def spread(column):
            values = reached[column].dropna()
            if values.empty:
                return "did not reach it"
            text = fmt(values.mean()) + (f" &plusmn; {fmt(values.std())}" if len(values) > 1 else "")
            return text if len(values) == len(reached) else f"{text} (of the seeds that did)"

        lines.append(f"<tr><td>{html.escape(label)}</td><td>{int(reached['step'].notna().sum())} of {len(reached)}</td>"
                     f"<td>{spread('step')}</td><td>{spread('f_evals')}</td><td>{spread('seconds')}</td>"
                     f"<td>{fmt(ends.mean())}" + (f" &plusmn; {fmt(ends.std())}" if len(ends) > 1 else "")
                     + f"</td><td class=flag>{html.escape(flag)}</td></tr>")
    lines.append("</tbody></table>")
    return "\n".join(lines)


LEGEND_SIZE = 9


def _band(ax, rows: pd.DataFrame, x: str, y: str, colour, label: str, floor: float, style="-") -> bool:
    """Mean over seeds as a line, min to max over seeds as a band (one seed: the line alone). On a log axis
    (a finite floor) a mean of exactly 0 is left out, not drawn at the floor as if measured there (DisARM's
    variance at theta = 0 is exactly 0, found by a new user drawn at 8e-9); returns whether it left one out."""
    grouped = rows.groupby("step")
    xs = grouped[x].mean().to_numpy(float)
    values = grouped[y]
    mean, low, high = (v.to_numpy(float) for v in (values.mean(), values.min(), values.max()))
    zero = np.isfinite(floor) & (mean <= 0)
    mean = np.where(zero, np.nan, np.clip(mean, floor, None))
    low, high = np.clip(low, floor, None), np.clip(high, floor, None)
    ax.plot(xs, mean, color=colour, label=label, linestyle=style)
    if rows["seed"].nunique() > 1:
        ax.fill_between(xs, low, high, color=colour, alpha=0.15, linewidth=0)
    return bool(zero.any())


def trajectory_figure(frame: pd.DataFrame, title: str, palette: Palette | None = None):
    """Four panels: excess loss vs step and vs f-evaluations, gradient variance vs step, theta vs step.
    Colours from the run's palette (reports.palette); several settings of one estimator differ in line style."""
    fig, grid = plt.subplots(2, 2, figsize=(13, 9))
    axes = grid.ravel()
    palette = palette or Palette(frame["estimator"])
    labels = sorted(frame["label"].unique())
    estimator_of = dict(zip(frame["label"], frame["estimator"]))
    colours = {label: palette[estimator_of[label]].colour for label in labels}
    styles, seen = {}, {}
    for label in labels:
        count = seen.setdefault(estimator_of[label], [])
        styles[label] = STYLES[len(count) % len(STYLES)]
        count.append(label)
    positive = frame["excess"][frame["excess"] > 0]
    floor = positive.min() / 3 if len(positive) else 1e-12
    variance_floor = frame["variance_trace"][frame["variance_trace"] > 0].min() / 3 \
        if (frame["variance_trace"] > 0).any() else 1e-12
    zeros = {0: [], 2: []}  # the log panels' labels with a mean of exactly 0 somewhere (not drawn)
    for label in labels:
        rows = frame[frame["label"] == label]
        if _band(axes[0], rows, "step", "excess", colours[label], label, floor, styles[label]):
            zeros[0].append(label)
        _band(axes[1], rows, "f_evals_so_far", "excess", colours[label], label, floor, styles[label])
        if _band(axes[2], rows, "step", "variance_trace", colours[label], label, variance_floor, styles[label]):
            zeros[2].append(label)
        _band(axes[3], rows, "step", "theta", colours[label], label, -np.inf, styles[label])
    for index, what in ((0, "excess loss"), (2, "variance")):
        if zeros[index]:
            axes[index].text(0.01, 0.01, textwrap.fill(f"{what} exactly 0 at some steps (gaps: not drawn on a log "
                                                       f"axis): {', '.join(zeros[index])}", 60),
                             transform=axes[index].transAxes, fontsize=8, va="bottom", color="#444")
    axes[0].set(xlabel="training step", ylabel="exact excess loss E[f] - inf E[f]", yscale="log",
                title="exact loss vs step (band: min to max over seeds)")
    axes[1].set(xlabel="f-evaluations so far", ylabel="exact excess loss E[f] - inf E[f]", yscale="log",
                title="exact loss vs cost")
    axes[2].set(xlabel="training step", ylabel="gradient variance, trace (grad. units^2)", yscale="log",
                title="variance at the current parameters")
    axes[3].set(xlabel="training step", ylabel="theta (first parameter)", title="parameter trajectory")
    for ax in axes:
        ax.grid(True, alpha=0.3)
    # The panels end where the legend's widest label needs them to: at a fixed right = 0.82 a long label
    # ('rebar coupling: tied, eta: 1.0, tau: 0.316') ran off the image and the legend covered the tick labels
    # (found by a new user). Its handles are 4 em long, to show the line styles that tell settings apart.
    handles, names = axes[0].get_legend_handles_labels()
    # the text, the handle and its gaps, a margin
    legend_inches = widest_text_inches(fig, names, LEGEND_SIZE) + (4.0 + 2.5) * LEGEND_SIZE / 72 + 0.2
    right = min(0.82, 1 - legend_inches / fig.get_figwidth())
    fig.legend(handles, names, loc="center left", bbox_to_anchor=(right + 0.1 / fig.get_figwidth(), 0.5),
               fontsize=LEGEND_SIZE, frameon=False, handlelength=4.0)
    fig.suptitle(title)
    fig.subplots_adjust(left=0.08, right=right - 0.02, bottom=0.07, top=0.92, wspace=0.3, hspace=0.3)
    return fig, axes


PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>gradbench: {title}</title>
<style>body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1500px; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }}
th, td {{ border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; }} thead th {{ background: #f3f3f3; }}
img {{ max-width: 100%; }} code {{ background: #f5f5f5; padding: 0 0.2em; }} .flag {{ color: #c00; }}</style></head><body>
<h1>gradbench: {title}</h1><p>{meta}</p>
<p>Each run minimises the exact expected cost of a toy problem with one estimator (one estimate of S samples
per step). The loss is computed in closed form at every measurement point, so its curve has no sampling noise;
the variance is that of N fresh estimates at the frozen parameters (stateful estimators with the state they
learned on the way). The table gives the steps, f-evaluations and training seconds until the exact excess
loss first fell below {threshold:g} of its start (read every {every} steps), mean &plusmn; standard deviation
over seeds. <em>Timing</em> flags training seconds taken beside other units (<code>--workers</code>, Ray), while the
machine's load average exceeded its cores, or with the process given less than half its wall time.</p>
{sections}
{problems}
</body></html>"""


def render_trajectory_report(run_dir: str | Path) -> Path:
    run_dir = Path(run_dir)
    frame, meta = load_run(run_dir)
    frame, notes = with_excess(frame)
    frame["label"] = _labels(frame)
    sections = []
    palette = Palette(frame["estimator"])
    for problem, rows in frame.groupby("problem", sort=False):
        png = re.sub(r"[^A-Za-z0-9_.-]+", "_", problem) + ".png"
        fig, _ = trajectory_figure(rows, problem, palette)
        save_figure(fig, run_dir / png, dpi=90)
        sections.append(f"<h2>{html.escape(problem)}</h2><p>infimum of the loss: {notes[problem]}</p>"
                        f"{threshold_table(rows)}<img src=\"{png}\" alt=\"trajectories on {html.escape(problem)}\">")
    stopped = meta.get("problems", [])
    page = PAGE.format(title=f"optimisation trajectories ({run_dir.name})",
                       meta=html.escape(" · ".join(f"{k} {meta[k]}" for k in META_KEYS if meta.get(k) is not None)),
                       threshold=THRESHOLD, every=meta.get("measure_every", "?"), sections="\n".join(sections),
                       problems=(Markup("<h2>Stopped runs</h2><ul>") + Markup("".join(f"<li>{html.escape(p)}</li>"
                                 for p in stopped)) + Markup("</ul>")) if stopped else "")
    path = run_dir / "index.html"
    atomic_write(path, page)  # Ctrl-C leaves the old page, not half a new one
    return path
