"""The temperature answer: for each tempered estimator and problem, the temperature that minimises the
MSE, with the range of temperatures the run cannot tell from it.

With three or more temperatures swept (`--tau-grid 0.05 2 9`), for each (problem, estimator, S,
device):

    tau*          the temperature with the lowest MSE = bias^2 + variance, among cells that are not
                  degenerate (reports.degenerate)
    tau* range    the neighbouring temperatures, on either side of tau*, whose MSE lies within tau*'s
                  95% interval (MSE <= its upper bound): as good as tau* by this run's evidence

A relaxed estimator trades bias (large tau) against variance (small tau), so the MSE is the figure
that decides; RELAX learns its temperature, so its tau is the starting value.
"""
from __future__ import annotations

import html
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from reports.catalogue import VARIANCE  # noqa: E402
from reports.degenerate import degenerate_reason  # noqa: E402
from reports.palette import STYLES, Palette  # noqa: E402
from reports.swept import axis_label  # noqa: E402
from reports.tables import fmt  # noqa: E402
from reports.ticks import LABEL_SIZE, TICK_SIZE  # noqa: E402

MIN_TEMPERATURES = 3
KEY = ["objective", "estimator", "variant", "n_samples", "device"]


def best_temperatures(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (problem, estimator setting) swept over >= MIN_TEMPERATURES temperatures."""
    tempered = frame[(frame["x_name"] == "tau") & frame["x"].notna() & np.isfinite(frame["mse"])]
    rows = []
    for key, cells in tempered.groupby(KEY, sort=False):
        if cells["x"].nunique() < MIN_TEMPERATURES:
            continue
        cells = cells.sort_values("x").reset_index(drop=True)
        # A degenerate cell (reports.degenerate) is never the answer, however low its MSE.
        usable = cells[[not degenerate_reason(row) for _, row in cells.iterrows()]]
        if usable.empty:
            continue
        at = usable["mse"].idxmin()
        best = cells.loc[at]
        # The run of neighbouring temperatures, tau* included, whose MSE lies within tau*'s interval.
        within = (((cells["mse"] <= best["mse_hi"]) | (cells.index == at)) & cells.index.isin(usable.index)).to_numpy()
        low = high = at
        while low > 0 and within[low - 1]:
            low -= 1
        while high < len(cells) - 1 and within[high + 1]:
            high += 1
        close = cells.loc[low:high, "x"]
        rows.append({**dict(zip(KEY, key)), "tau": best["x"], "mse": best["mse"], "mse_lo": best["mse_lo"],
                     "mse_hi": best["mse_hi"], "tau_lo": close.min(), "tau_hi": close.max(),
                     "n_temperatures": cells["x"].nunique(),
                     "at_edge": best["x"] in (cells["x"].min(), cells["x"].max())})
    return pd.DataFrame(rows, columns=KEY + ["tau", "mse", "mse_lo", "mse_hi", "tau_lo", "tau_hi",
                                             "n_temperatures", "at_edge"])


def _label(row, several: bool = False) -> str:
    name = f"{row['estimator']} {row['variant']}" if row["variant"] else row["estimator"]
    return name + (f" S={int(row['n_samples'])} {row['device']}" if several else "")


def temperature_table(best: pd.DataFrame, palette: Palette, anchors: dict[str, str]) -> str:
    """Estimators as rows, problems as columns: tau* [range]; '(edge)' where tau* is the grid's end."""
    settings = best[["n_samples", "device"]].drop_duplicates()
    several = len(settings) > 1
    best = best.assign(row=[_label(r, several) for _, r in best.iterrows()])
    objectives = list(dict.fromkeys(best["objective"]))
    head = "".join(f"<th class=problem><a href='#{anchors.get(o, '')}'>{html.escape(o)}</a></th>" for o in objectives)
    lines = [f"<table class=temperatures><thead><tr><th>estimator</th>{head}</tr></thead><tbody>"]
    order = {n: i for i, n in enumerate(palette.ordered(best["estimator"]))}
    def rank(item):  # by estimator, then S as a number (S=8 before S=64), then device
        rows = item[1].iloc[0]
        return order[rows["estimator"]], int(rows["n_samples"]), rows["device"], item[0]

    for label, rows in sorted(best.groupby("row"), key=rank):
        cells = []
        for objective in objectives:
            hit = rows[rows["objective"] == objective]
            if hit.empty:
                cells.append("<td class=empty></td>")
                continue
            r = hit.iloc[0]
            edge = " <span class=flag title='the best temperature is at the end of the grid: widen it'>(edge)</span>" \
                if r["at_edge"] else ""
            cells.append(f"<td title='MSE {fmt(r['mse'])} [{fmt(r['mse_lo'])}, {fmt(r['mse_hi'])}]'>"
                         f"&tau;* = {fmt(r['tau'])} <span class=ci>[{fmt(r['tau_lo'])}, {fmt(r['tau_hi'])}]</span>{edge}</td>")
        estimator = rows["estimator"].iloc[0]
        lines.append(f"<tr><th>{palette.swatch(estimator)}{html.escape(label)}</th>{''.join(cells)}</tr>")
    lines.append("</tbody></table>")
    return "\n".join(lines)


def temperature_figure(frame: pd.DataFrame, best: pd.DataFrame, palette: Palette):
    """A panel per problem: MSE against tau for each tempered estimator, tau* starred and its range
    drawn as a bar at the best MSE."""
    objectives = list(dict.fromkeys(best["objective"]))
    columns = min(4, len(objectives))
    rows_n = math.ceil(len(objectives) / columns)
    fig, axes = plt.subplots(rows_n, columns, figsize=(4.3 * columns + 2.2, 3.3 * rows_n + 0.6), squeeze=False)
    mse = VARIANCE["mse"]
    seen = {}
    settings = list(best[["n_samples", "device"]].drop_duplicates().itertuples(index=False, name=None))
    several = len(settings) > 1
    for ax, objective in zip(axes.ravel(), objectives):
        chosen = best[best["objective"] == objective].sort_values(["n_samples", "device"], kind="stable")
        for _, b in chosen.iterrows():
            cells = frame[(frame[KEY[:-2]] == pd.Series([b["objective"], b["estimator"], b["variant"]], index=KEY[:-2])
                           ).all(axis=1) & (frame["n_samples"] == b["n_samples"]) & (frame["device"] == b["device"])
                          & (frame["x_name"] == "tau")].sort_values("x")
            look = palette[b["estimator"]]
            xs, ys = cells["x"].to_numpy(float), cells["mse"].to_numpy(float)
            positive = ys > 0
            label = _label(b, several)
            style = STYLES[settings.index((b["n_samples"], b["device"])) % len(STYLES)] if several else look.style
            ax.plot(xs[positive], ys[positive], linestyle=style, marker=look.marker, color=look.colour,
                    markersize=4, linewidth=1.2, label=label)
            ax.fill_between(xs[positive], cells["mse_lo"].to_numpy(float)[positive],
                            cells["mse_hi"].to_numpy(float)[positive], color=look.colour, alpha=0.12, linewidth=0)
            ax.plot([b["tau_lo"], b["tau_hi"]], [b["mse"], b["mse"]], color=look.colour, linewidth=4, alpha=0.45,
                    solid_capstyle="butt")
            ax.scatter([b["tau"]], [b["mse"]], marker="*", s=140, color=look.colour, edgecolors="black",
                       linewidths=0.6, zorder=4)
            # Degenerate cells are never tau*, however low their MSE: crossed out, so that a lower point
            # beside the star reads as excluded rather than missed.
            excluded = np.array([bool(degenerate_reason(row)) for _, row in cells.iterrows()]) & positive
            if excluded.any():
                ax.scatter(xs[excluded], ys[excluded], marker="x", s=60, color="#555", linewidths=1.2, zorder=5)
            seen.setdefault(label, ax.get_lines()[-2])
        ax.set_xscale("log")
        ax.set_yscale("log")
        taus = sorted(set(frame.loc[(frame["objective"] == objective) & (frame["x_name"] == "tau"), "x"].dropna()))
        if len(taus) <= 9:
            ax.set_xticks(taus, [f"{t:g}" for t in taus])
        ax.set_title(objective, fontsize=9)
        ax.set_xlabel(axis_label("tau"), fontsize=LABEL_SIZE)
        ax.set_ylabel(mse.short_axis_label, fontsize=LABEL_SIZE)
        ax.tick_params(labelsize=TICK_SIZE)
        ax.grid(True, alpha=0.3)
        # The x-axis only: reports.ticks gives a y-axis of under two decades round labels between its powers
        # of ten (with both axes' minor ticks off, an MSE axis across one power of ten had a single label).
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    for ax in axes.ravel()[len(objectives):]:
        ax.set_visible(False)
    fig.legend(list(seen.values()), list(seen.keys()), loc="center right", fontsize=8, frameon=False,
               handlelength=4.0)  # long enough to show the line styles that tell S apart
    fig.suptitle("MSE against temperature: star = the MSE-minimising tau*,\nbar = temperatures within its interval, "
                 "x = degenerate (never tau*)",
                 fontsize=10, fontweight="bold")
    fig.subplots_adjust(left=0.06, right=1 - 2.0 / fig.get_figwidth(), bottom=0.5 / fig.get_figheight() + 0.03,
                        top=1 - 0.8 / fig.get_figheight(), wspace=0.35, hspace=0.5)
    return fig, axes
