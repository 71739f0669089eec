"""The summary at the top of a report: which estimator wins, on how many problems, at what cost.

Variance sweeps (one table per (S, device) setting): estimators as rows; for each problem, each
estimator's best setting (over its swept hyperparameters) ranked two ways:

    by MSE         E||g - g*||^2 = bias^2 + variance, the error of one estimate
    by MSE x time  MSE times the seconds per estimate (work-normalised, as in Glynn & Whitt 1992's
                   efficiency): for an unbiased estimator, the error left after a fixed budget of
                   compute, since averaging k estimates divides the variance by k; a bias does not
                   average away, so for a biased estimator it is flattering: read it with the bias

Ranks tie where the intervals overlap: an estimator's rank is 1 + the number of estimators whose
whole 95% interval lies below its own, so two estimators the run cannot tell apart share a rank.
A degenerate cell (reports.degenerate) is never ranked: it counts as last when the median rank is
taken. Wins are the problems where an estimator ranks first (ties included).

VAE runs (one table per latent): the final test -ELBO (mean over seeds, +- their standard deviation;
ties where mean +- sd overlap; unfinished runs marked and not ranked), and the test -ELBO reached at equal
training time: each run's curve read at the shortest finished run's total training seconds (the last
evaluation at or before it), its timing flagged where it was taken beside other units or under load.
"""
from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd

from reports.cost import flag_html, timing_flags
from reports.degenerate import degenerate_reason
from reports.palette import Palette
from reports.tables import fmt


def interval_ranks(lo, hi) -> np.ndarray:
    """1 + the number of entries whose interval lies wholly below each one's (lower is better)."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    return 1 + (hi[None, :] < lo[:, None]).sum(axis=1)


def with_work(frame: pd.DataFrame) -> pd.DataFrame:
    """Add mse_x_time with bounds from the MSE's bounds times the fastest and slowest timed call."""
    frame = frame.copy()
    time = frame["time_per_estimate_s"] if "time_per_estimate_s" in frame else np.nan
    fastest = frame["time_per_estimate_min_s"] if "time_per_estimate_min_s" in frame else time
    slowest = frame["time_per_estimate_max_s"] if "time_per_estimate_max_s" in frame else time
    frame["mse_x_time"] = frame["mse"] * time
    frame["mse_x_time_lo"] = frame["mse_lo"] * fastest  # the timing's spread widens the interval too
    frame["mse_x_time_hi"] = frame["mse_hi"] * slowest
    return frame


def _best_cells(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per (objective, estimator): the non-degenerate setting with the lowest metric, or the first
    degenerate one when every setting is degenerate."""
    frame = frame.assign(_degenerate=[degenerate_reason(row) for _, row in frame.iterrows()])
    frame = frame[frame[metric].notna()]
    frame = frame.sort_values(["_degenerate", metric], key=lambda c: c.astype(bool) if c.name == "_degenerate" else c)
    return frame.groupby(["objective", "estimator"], sort=False).head(1)


def rank_table(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """objective, estimator, rank (NaN when degenerate), tied, degenerate reason, the chosen cell."""
    best = _best_cells(frame, metric)
    out = []
    for objective, rows in best.groupby("objective", sort=False):
        ranked = rows[rows["_degenerate"] == ""]
        ranks = pd.Series(interval_ranks(ranked[f"{metric}_lo"], ranked[f"{metric}_hi"]), index=ranked.index)
        for index, row in rows.iterrows():
            rank = float(ranks.get(index, math.nan))
            out.append({"objective": objective, "estimator": row["estimator"], "rank": rank,
                        "tied": bool(not math.isnan(rank) and (ranks == rank).sum() > 1),
                        "degenerate": row["_degenerate"], "value": row[metric], "lo": row[f"{metric}_lo"],
                        "hi": row[f"{metric}_hi"], "setting": _setting(row), "n_measured": len(rows)})
    return pd.DataFrame(out)


def _setting(row) -> str:
    name, value = row.get("x_name"), row.get("x")
    return f"{name}={value:g}" if isinstance(name, str) and not pd.isna(value) else ""


def _summary(ranks: pd.DataFrame) -> pd.DataFrame:
    """Per estimator: wins and the median rank over problems (a degenerate cell counts as last)."""
    effective = ranks["rank"].where(ranks["rank"].notna(), ranks["n_measured"])  # degenerate: last
    grouped = ranks.assign(effective=effective).groupby("estimator")
    return pd.DataFrame({"wins": grouped["rank"].apply(lambda r: int((r == 1).sum())),
                         "median_rank": grouped["effective"].median(), "problems": grouped.size()})


def _rank_text(row) -> str:
    if row is None:
        return ""
    if row["degenerate"]:
        return f"<span class=degenerate title='{html.escape(row['degenerate'])}'>deg.</span>"
    title = f"{fmt(row['value'])} [{fmt(row['lo'])}, {fmt(row['hi'])}]" + (f" at {row['setting']}" if row["setting"] else "")
    text = f"{int(row['rank'])}{'=' if row['tied'] else ''}"
    return f"<span title='{html.escape(title)}'>{'<b>' + text + '</b>' if row['rank'] == 1 else text}</span>"


def variance_leaderboard(frame: pd.DataFrame, anchors: dict[str, str], palette: Palette,
                         table_id: str = "summary") -> str:
    """The HTML summary table of one (S, device) slice of an annotated, seed-combined sweep."""
    frame = with_work(frame)
    by_mse, by_work = rank_table(frame, "mse"), rank_table(frame, "mse_x_time")
    if by_mse.empty:
        return "<p>No cell has a finite MSE to rank.</p>"
    mse_summary, work_summary = _summary(by_mse), _summary(by_work) if not by_work.empty else None
    objectives = list(dict.fromkeys(frame["objective"]))
    order = sorted(mse_summary.index, key=lambda e: (mse_summary.loc[e, "median_rank"], -mse_summary.loc[e, "wins"], e))
    head = "".join(f"<th class=problem><a href='#{anchors.get(o, '')}'>{html.escape(o)}</a></th>" for o in objectives)
    lines = [f"<table id={table_id} class=summary><thead><tr><th rowspan=2>estimator</th><th rowspan=2>problems</th>"
             "<th colspan=2>by MSE</th>"
             "<th colspan=2>by MSE &times; time</th>"
             f"<th colspan={len(objectives)}>rank on each problem: by MSE / by MSE &times; time</th></tr>"
             f"<tr><th>wins</th><th>median rank</th><th>wins</th><th>median rank</th>{head}</tr></thead><tbody>"]
    lookup_mse = {(r["objective"], r["estimator"]): r for _, r in by_mse.iterrows()}
    lookup_work = {(r["objective"], r["estimator"]): r for _, r in by_work.iterrows()}
    for estimator in order:
        cells = []
        for objective in objectives:
            a, b = lookup_mse.get((objective, estimator)), lookup_work.get((objective, estimator))
            cells.append(f"<td>{_rank_text(a)}{' / ' + _rank_text(b) if b is not None else ''}</td>" if a is not None
                         else "<td class=empty></td>")
        work = (work_summary.loc[estimator] if work_summary is not None and estimator in work_summary.index else None)
        lines.append(
            f"<tr><th>{palette.swatch(estimator)}{html.escape(estimator)}<br><span class=kind>{palette[estimator].family}"
            f"</span></th><td>{mse_summary.loc[estimator, 'problems']}</td><td>{mse_summary.loc[estimator, 'wins']}</td><td>{mse_summary.loc[estimator, 'median_rank']:g}</td>"
            f"<td>{'-' if work is None else int(work['wins'])}</td><td>{'-' if work is None else format(work['median_rank'], 'g')}"
            f"</td>{''.join(cells)}</tr>")
    lines.append("</tbody></table>")
    return "\n".join(lines)


def finished(rows: pd.DataFrame) -> pd.Series:
    """Whether each row is the final one of a finished VAE training run: that row alone carries the
    importance-weighted bound (iw_samples), as benchmarks.vae_training.finished_runs, which --resume trusts,
    reads it. A run stopped part-way (interrupted, a worker that died, a non-finite loss) has none; where no run
    of the grid finished, the column is absent altogether, and then no row is final."""
    if "iw_samples" not in rows:
        return pd.Series(False, index=rows.index)
    return rows["iw_samples"].notna()


def vae_leaderboard(frame: pd.DataFrame, palette: Palette, table_id: str = "summary") -> str:
    """Per latent: each run label ranked by final test -ELBO (spread over seeds) and at equal training time.

    Only labels whose every seed finished are ranked by the final test -ELBO; an unfinished one is marked
    and shows its last evaluation point unranked. The equal-time budget is the shortest finished run's
    training seconds (every run's where none finished); a run stopped before it is not read there. Times
    taken beside other units or under load are flagged (reports.cost.timing_flags)."""
    last = frame.loc[frame.groupby(["label", "seed"])["step"].idxmax()]
    done = finished(last)
    budget = last.loc[done, "train_seconds"].min() if done.any() else last["train_seconds"].min()
    reached = last[last["train_seconds"] >= budget - 1e-9][["label", "seed"]]
    read = frame.merge(reached, on=["label", "seed"])
    read = read[read["train_seconds"] <= budget + 1e-9]  # the rows read, and the ones before them
    at_budget = read.sort_values("step").groupby(["label", "seed"]).tail(1)
    rows = []
    for label, runs in last.groupby("label"):
        timed = at_budget[at_budget["label"] == label]["test_neg_elbo"]
        final = runs["test_neg_elbo"]
        sd = final.std() if len(final) > 1 else 0.0
        sd_t = timed.std() if len(timed) > 1 else 0.0
        rows.append({"label": label, "estimator": runs["estimator"].iloc[0], "seeds": len(runs),
                     "unfinished": int((~done[runs.index]).sum()), "last_step": int(runs["step"].max()),
                     "final": final.mean(), "final_lo": final.mean() - sd, "final_hi": final.mean() + sd,
                     "timed_seeds": len(timed), "timed": timed.mean() if len(timed) else math.nan,
                     "timed_lo": timed.mean() - sd_t if len(timed) else math.nan,
                     "timed_hi": timed.mean() + sd_t if len(timed) else math.nan,
                     "timing_flag": timing_flags(read[read["label"] == label])})
    table = pd.DataFrame(rows)
    ranked = table["final"].notna() & (table["unfinished"] == 0)
    table["rank"] = math.nan
    table.loc[ranked, "rank"] = interval_ranks(table.loc[ranked, "final_lo"], table.loc[ranked, "final_hi"])
    timed = table["timed"].notna()
    table["rank_timed"] = math.nan
    table.loc[timed, "rank_timed"] = interval_ranks(table.loc[timed, "timed_lo"], table.loc[timed, "timed_hi"])
    lines = [f"<table id={table_id} class=summary><thead><tr><th>estimator</th><th>seeds</th><th>final test -ELBO "
             "(nats)</th><th>rank</th>"
             f"<th>test -ELBO at {fmt(budget)} s of training</th><th>rank at equal time</th></tr></thead><tbody>"]
    for _, row in table.sort_values(["rank", "final"]).iterrows():
        spread = " &plusmn; " + fmt(row["final_hi"] - row["final"]) if row["seeds"] > 1 else ""
        spread_t = " &plusmn; " + fmt(row["timed_hi"] - row["timed"]) if row["timed_seeds"] > 1 else ""
        unfinished = (f" <span class=flag>unfinished ({row['unfinished']} of {row['seeds']} seeds; last evaluation "
                      f"at step {row['last_step']})</span>" if row["unfinished"] else "")
        rank = ("-" if not row["unfinished"] else "<span class=flag>not ranked: unfinished</span>") \
            if pd.isna(row["rank"]) else f"{int(row['rank'])}"
        if pd.isna(row["timed"]):
            timed_text = "<span class=flag>stopped before it</span>" if row["unfinished"] else "-"
        else:
            timed_text = fmt(row["timed"]) + spread_t + (f" ({row['timed_seeds']} of {row['seeds']} seeds)"
                                                         if row["timed_seeds"] < row["seeds"] else "")
        rank_t = "-" if pd.isna(row["rank_timed"]) else f"{int(row['rank_timed'])}"
        lines.append(f"<tr><th>{palette.swatch(row['estimator'])}{html.escape(row['label'])}{unfinished}</th>"
                     f"<td>{row['seeds']}</td><td>{fmt(row['final'])}{spread}</td><td>{rank}</td>"
                     f"<td>{timed_text}{flag_html(row['timing_flag'])}</td><td>{rank_t}</td></tr>")
    lines.append("</tbody></table>")
    if (table["unfinished"] > 0).any():
        lines.append("<p class=flag>Unfinished runs (no importance-weighted bound at their last evaluation point: "
                     "stopped, interrupted or still running) show where they stopped and are not ranked by the final "
                     "test -ELBO; --resume continues an interrupted one from its last checkpoint.</p>")
    return "\n".join(lines)
