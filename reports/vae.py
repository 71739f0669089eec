"""The VAE task's report: per latent (e.g. gaussian:20, categorical:20x10) a table, training curves, the
relaxed against the hard training -ELBO, and what each estimator's model draws (reports.vae_pictures)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from markupsafe import Markup  # noqa: E402

from reports.files import atomic_write  # noqa: E402
from reports.cost import flag_html, timing_flag, timing_flags  # noqa: E402
from reports.html import TEMPLATES  # noqa: E402
from reports.load import load_run  # noqa: E402
from reports.leaderboard import finished, vae_leaderboard  # noqa: E402
from reports.palette import STYLES, Palette  # noqa: E402
from reports.tables import fmt  # noqa: E402
from reports.ticks import save_figure  # noqa: E402
from reports.vae_pictures import picture_sections  # noqa: E402

META_KEYS = ("started", "finished", "git_commit", "torch_version", "cpu", "cpu_threads", "executor", "concurrency",
             "worker_threads", "dataset", "latent", "hidden", "kl", "batch_size", "lr", "anneal", "seeds", "commands")


def run_labels(frame: pd.DataFrame) -> pd.Series:
    """estimator [tau=..] [other swept hyperparameters] [S=..] [kl=..] [device]: samples per data point when more than one; the KL form
    and the device only where a latent has several."""
    several_kl = frame.groupby("latent")["kl"].transform("nunique") > 1
    several_devices = frame.groupby("latent")["device"].transform("nunique") > 1
    labels = frame["estimator"].astype(str)
    labels = labels.where(frame["tau0"].isna(), labels + " tau=" + frame["tau0"].map(lambda t: f"{t:g}"))
    if "variant" in frame:  # other swept hyperparameters (--hparam rebar:eta=0.5): 'eta=0.5'
        variant = frame["variant"].astype(object).where(frame["variant"].notna(), "").astype(str)
        labels = labels.where(variant == "", labels + " " + variant)
    if "n_samples" in frame:
        labels = labels.where(frame["n_samples"].fillna(1) <= 1, labels + " S=" + frame["n_samples"].map(
            lambda s: f"{s:.0f}"))
    labels = labels.where(~several_kl, labels + " kl=" + frame["kl"])
    return labels.where(~several_devices, labels + " " + frame["device"])


def summary_table(frame: pd.DataFrame) -> str:
    """One row per label at its last evaluation point. Time / step counts every step since the start, so its
    timing flag reads all the label's evaluation rows (the load sampled at each; reports.cost.timing_flags)."""
    last = frame.loc[frame.groupby(["label", "seed"])["step"].idxmax()]
    iw = "IW bound"
    if "iw_samples" in last and last["iw_samples"].notna().any():
        iw = f"IW-{int(last['iw_samples'].max())} bound"
        if "iw_points" in last and last["iw_points"].notna().any():
            iw += f" ({int(last['iw_points'].max())} test points)"
    lines = ["<table><thead><tr><th>estimator</th><th>seeds</th><th>steps</th><th>test -ELBO</th>"
             f"<th>{iw}</th><th>train relaxed &minus; hard</th><th>time / step</th><th>grad variance</th><th>grad bias</th></tr></thead><tbody>"]
    for label, rows in last.sort_values("test_neg_elbo").groupby("label", sort=False):
        def spread(column, standard_error=None):
            """mean +- sd over seeds; with one seed, +- the standard error where the row has one."""
            if column not in rows or rows[column].isna().all():
                return "-"
            values = rows[column].dropna()
            if len(values) > 1:
                return f"{fmt(values.mean())} &plusmn; {fmt(values.std())}"
            if standard_error in rows and rows[standard_error].notna().any():
                error = rows[standard_error].dropna().iloc[0]
                return f"{fmt(values.iloc[0])} <span class=ci>&plusmn; {fmt(error)}</span>"
            return fmt(values.iloc[0])

        def interval(column):
            if column not in rows or rows[column].isna().all():
                return "-"
            row = rows.iloc[0]
            return f"{fmt(row[column])} <span class=ci>[{fmt(row[column + '_lo'])}, {fmt(row[column + '_hi'])}]</span>"

        # A run's last evaluation point carries the importance-weighted bound; without it the run stopped
        # early (interrupted, a worker died, a non-finite loss) and its figures are from part-way. Where no run
        # finished the column is absent, and every run is unfinished (reports.leaderboard.finished).
        unfinished = int((~finished(rows)).sum())
        steps = f"{int(rows['step'].max())}" + (f" <span class=flag>unfinished ({unfinished} of {len(rows)} "
                                                 "seeds)</span>" if unfinished else "")
        lines.append(f"<tr><td>{label}</td><td>{len(rows)}</td><td>{steps}</td>"
                     f"<td>{spread('test_neg_elbo')}</td><td>{spread('test_iw_bound', 'test_iw_bound_se')}</td>"
                     f"<td>{spread('train_relaxation_gap', 'train_relaxation_gap_se')}</td>"
                     f"<td>{spread('time_per_step_s')} s{flag_html(timing_flags(frame[frame['label'] == label]))}</td>"
                     f"<td>{interval('grad_variance_trace')}</td>"
                     f"<td>{interval('grad_bias_norm')}</td></tr>")
    lines.append("</tbody></table>")
    return "\n".join(lines)


def seed_runs(frame: pd.DataFrame, palette: Palette | None = None):
    """(label, its plot style, whether this is the label's first seed, the rows by step) per label and
    seed. Colours and markers come from the run's palette (an estimator's family shares a hue); several
    labels of one estimator (tau, S, ...) differ in line style; a label's seeds share its look, and only
    the first enters a legend."""
    palette = palette or Palette(frame["estimator"])
    styles = {}
    for label, estimator in frame[["label", "estimator"]].drop_duplicates().itertuples(index=False):
        per_estimator = styles.setdefault(estimator, {})
        per_estimator[label] = STYLES[len(per_estimator) % len(STYLES)]
    for (label, seed), rows in frame.groupby(["label", "seed"]):
        estimator = rows["estimator"].iloc[0]
        look = palette[estimator]
        style = {"color": look.colour, "marker": look.marker, "linestyle": styles[estimator][label]}
        yield label, style, seed == frame[frame["label"] == label]["seed"].min(), rows.sort_values("step")


def curves_figure(frame: pd.DataFrame, palette: Palette | None = None):
    """Test -ELBO against step and against training seconds; log gradient variance against step."""
    fig, axes = plt.subplots(1, 3, figsize=(18, 5))
    for label, style, first, rows in seed_runs(frame, palette):
        kwargs = {**style, "markersize": 3, "label": label if first else None}
        axes[0].plot(rows["step"], rows["test_neg_elbo"], **kwargs)
        axes[1].plot(rows["train_seconds"], rows["test_neg_elbo"], **kwargs)
        if "grad_variance_trace" in rows and rows["grad_variance_trace"].notna().any():
            axes[2].plot(rows["step"], rows["grad_variance_trace"], **kwargs)
    axes[0].set(xlabel="training step", ylabel="test -ELBO (nats)", title="test -ELBO vs step")
    axes[1].set(xlabel="training seconds", ylabel="test -ELBO (nats)", title="test -ELBO vs wall-clock")
    axes[2].set(xlabel="training step", ylabel="encoder gradient variance, trace (grad. units^2)", yscale="log",
                title="gradient variance at frozen parameters")
    for ax in axes:
        ax.grid(True, alpha=0.3)
    top = np.nanpercentile(frame["test_neg_elbo"], 90) if len(frame) else None
    if top is not None and np.isfinite(top):
        low = frame["test_neg_elbo"].min()
        axes[0].set_ylim(low - 0.05 * (top - low + 1), top + 0.1 * (top - low + 1))
        axes[1].set_ylim(axes[0].get_ylim())
        _mark_points_above(axes[:2], ("step", "train_seconds"), frame, palette)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="center right", fontsize=9, frameon=False)
    fig.subplots_adjust(left=0.05, right=0.86, bottom=0.12, top=0.9, wspace=0.28)
    return fig, axes


def _mark_points_above(axes, xs, frame: pd.DataFrame, palette: Palette | None) -> None:
    """The -ELBO axes end near the 90th percentile, so that the first evaluations (far above the rest) do not
    flatten the curves: each point above the axis is a triangle at its top edge, in its run's colour, and a
    note says how many there are."""
    top = axes[0].get_ylim()[1]
    above = int((frame["test_neg_elbo"] > top).sum())
    if not above:
        return
    for _, style, _, rows in seed_runs(frame, palette):
        over = rows[rows["test_neg_elbo"] > top]
        if over.empty:
            continue
        for ax, x in zip(axes, xs):
            ax.plot(over[x], np.full(len(over), top), linestyle="none", marker="^", color=style["color"],
                    markersize=6, clip_on=False)
    for ax in axes:
        ax.text(0.99, 0.97, f"▲ {above} point{'s' if above > 1 else ''} above the axis (drawn at its edge)",
                transform=ax.transAxes, ha="right", va="top", fontsize=7, color="#444")


RELAXATION_MARKERS = ("o", "s", "^", "D", "v", "P")


def relaxation_figure(frame: pd.DataFrame, palette: Palette | None = None):
    """The training -ELBO on the same batches and noise, relaxed (the objective the estimator trains,
    dashed) and hard (the discrete model, solid), against step; and their gap. Colours from the run's
    palette (the line styles say relaxed or hard here)."""
    fig, axes = plt.subplots(1, 2, figsize=(14, 4.6))
    # Line styles say hard or relaxed here, so the labels of one estimator (kl=analytic and kl=sampled, two
    # temperatures) differ by marker instead: with one marker for all they were identical lines and legend
    # entries (found by a new user).
    markers = {}
    for label, estimator in frame[["label", "estimator"]].drop_duplicates().itertuples(index=False):
        of_estimator = [m for (e, _), m in markers.items() if e == estimator]
        markers[estimator, label] = RELAXATION_MARKERS[len(of_estimator) % len(RELAXATION_MARKERS)]
    for label, style, first, rows in seed_runs(frame, palette):
        colour, marker = style["color"], markers[rows["estimator"].iloc[0], label]
        axes[0].plot(rows["step"], rows["train_neg_elbo_hard"], color=colour, marker=marker, markersize=4,
                     label=label if first else None)
        axes[0].plot(rows["step"], rows["train_neg_elbo_relaxed"], color=colour, marker=marker, markersize=4,
                     markerfacecolor="white", linestyle="--")
        axes[1].plot(rows["step"], rows["train_relaxation_gap"], color=colour, marker=marker, markersize=4)
        if "train_relaxation_gap_se" in rows:
            se = rows["train_relaxation_gap_se"].fillna(0.0)
            axes[1].fill_between(rows["step"], rows["train_relaxation_gap"] - 1.96 * se,
                                 rows["train_relaxation_gap"] + 1.96 * se, color=colour, alpha=0.15, linewidth=0)
    axes[0].plot([], [], color="grey", marker="o", markersize=4, label="hard (solid, filled)")
    axes[0].plot([], [], color="grey", linestyle="--", marker="o", markersize=4, markerfacecolor="white",
                 label="relaxed (dashed, hollow)")
    axes[0].set(xlabel="training step", ylabel="training -ELBO (nats)",
                title="relaxed (what the estimator trains) vs hard (the discrete model)")
    axes[1].axhline(0.0, color="black", linewidth=0.8)
    axes[1].set(xlabel="training step", ylabel="relaxed - hard (nats)", title="gap, with 95% intervals")
    for ax in axes:
        ax.grid(True, alpha=0.3)
    fig.legend(*axes[0].get_legend_handles_labels(), loc="center right", fontsize=9, frameon=False)
    fig.subplots_adjust(left=0.06, right=0.8, bottom=0.13, top=0.88, wspace=0.25)
    return fig, axes


def relaxation_section(rows: pd.DataFrame, run_dir: Path, latent: str, several: bool,
                       palette: Palette | None = None) -> dict:
    """The relaxed-vs-hard panel of one latent: its PNG; or a note where the run did not record the columns,
    or where every gap is exactly zero (no estimator of the latent trains a relaxed objective)."""
    columns = ("train_neg_elbo_relaxed", "train_neg_elbo_hard", "train_relaxation_gap")
    if any(column not in rows or rows[column].isna().all() for column in columns):
        return {"png": None, "flag": True, "note": "This run was written by a gradbench that did not record the "
                                                   "relaxed and the hard training -ELBO; a new run records them."}
    if (rows["train_relaxation_gap"].fillna(0.0) == 0).all():
        return {"png": None, "flag": False,
                "note": "Every estimator here evaluates its cost at exact samples from q (none trains a relaxed "
                        "objective, or the latent is continuous): relaxed and hard agree to the last bit, so there "
                        "is no gap to plot."}
    png = "relaxed-vs-hard.png" if not several else f"relaxed-vs-hard-{latent.replace(':', '-')}.png"
    fig, _ = relaxation_figure(rows, palette)
    fig.suptitle(f"{latent} latent", fontweight="bold")
    save_figure(fig, run_dir / png, dpi=90)
    return {"png": png, "flag": False, "note": None}


def timing_note(rows: pd.DataFrame) -> str | None:
    """The note under the curves when any plotted evaluation point was timed beside other units or under load."""
    flagged = sum(bool(timing_flag(row)) for _, row in rows.iterrows())
    if not flagged:
        return None
    return (f"Timing flagged at {flagged} of {len(rows)} evaluation points plotted: {timing_flags(rows)}. The test "
            "-ELBO vs wall-clock panel, time / step and the comparison at equal training time measure those "
            "conditions as well as the estimators; for timing-grade figures run with one worker on an idle machine.")


def render_vae_report(run_dir: str | Path) -> Path:
    run_dir = Path(run_dir)
    frame, meta = load_run(run_dir)
    for column, default in (("kl", "analytic"), ("device", "cpu")):
        if column not in frame:
            frame[column] = default
    frame["label"] = run_labels(frame)
    palette = Palette(frame["estimator"])
    sections = []
    for i, (latent, rows) in enumerate(frame.groupby("latent", sort=False)):
        png = "curves.png" if frame["latent"].nunique() == 1 else f"curves-{latent.replace(':', '-')}.png"
        fig, _ = curves_figure(rows, palette)
        fig.suptitle(f"{latent} latent", fontweight="bold")
        fig.subplots_adjust(top=0.84)
        save_figure(fig, run_dir / png, dpi=90)
        several = frame["latent"].nunique() > 1
        sections.append({"latent": latent, "table": Markup(summary_table(rows)), "png": png,
                         "timing_note": timing_note(rows),
                         "summary": Markup(vae_leaderboard(rows, palette, "summary" if i == 0 else f"summary-{i}")),
                         "relaxation": relaxation_section(rows, run_dir, latent, several, palette),
                         "pictures": picture_sections(rows, run_dir, latent, meta.get("problems", []))})
    page = TEMPLATES.get_template("vae.html.j2").render(
        title=f"VAE training ({meta.get('dataset', '?')})",
        meta=[(k, meta[k]) for k in META_KEYS if k in meta], sections=sections, problems=meta.get("problems", []))
    path = run_dir / "index.html"
    atomic_write(path, page)  # Ctrl-C leaves the old page, not half a new one
    return path
