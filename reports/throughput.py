"""Throughput: estimates per second against S, CPU beside CUDA, from a sweep or a pytest-benchmark JSON;
and the speed-goal table of a pytest-benchmark JSON.

Both throughput sources become the same tidy frame: estimator, objective, device, n_samples, f_evals,
estimates_per_s with its spread (from the fastest and slowest timed call), peak memory. Speed goals are
the extra_info["speed_goal"] rows written by tests/benchmarks (benchmarks.speed_goals): a ratio with its
interval and a verdict, rendered as measured (this module never judges).
"""
from __future__ import annotations

import html
import math
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from reports.load import read_benchmark_json  # noqa: E402
from reports.swept import setting  # noqa: E402
from reports.ticks import LABEL_SIZE, TICK_SIZE, save_figure  # noqa: E402

COLUMNS = ["estimator", "objective", "device", "n_samples", "f_evals", "estimates_per_s",
           "estimates_per_s_lo", "estimates_per_s_hi", "peak_memory_bytes"]


def from_sweep(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["estimates_per_s_lo"] = 1.0 / out["time_per_estimate_max_s"]
    out["estimates_per_s_hi"] = 1.0 / out["time_per_estimate_min_s"]
    if "peak_memory_bytes" not in out:
        out["peak_memory_bytes"] = math.nan
    # One line per estimator setting (k=10 and k=100 of gumbel_rao cost differently); the temperatures of one
    # setting cost the same, so the lowest stands for them.
    out["setting"] = [setting(row, with_tau=False) for _, row in out.iterrows()] if "x_name" in out else ""
    out = out.sort_values("tau").drop_duplicates(["estimator", "setting", "objective", "device", "n_samples"])
    return out[COLUMNS + ["setting", "tau"]]


def _series(frame: pd.DataFrame) -> pd.Series:
    """The label of each row's line: the estimator, with its setting where the frame has one."""
    settings = frame["setting"] if "setting" in frame else pd.Series("", index=frame.index)
    return (frame["estimator"] + " " + settings.fillna("")).str.strip()


def load_benchmark_json(path: str | Path) -> tuple[pd.DataFrame, dict]:
    """The throughput rows of a `pytest --benchmark-json` file, and its machine and commit info."""
    data = read_benchmark_json(path)
    rows = []
    for bench in data.get("benchmarks", []):
        info = bench.get("extra_info", {})
        if "estimates_per_call" not in info or "estimator" not in info:
            continue  # not a throughput case (e.g. a speed goal, whose record may hold no stats)
        stats = bench["stats"]
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
                         "pytest --benchmark-only tests/benchmarks/test_throughput.py --benchmark-json=FILE")
    return pd.DataFrame(rows), benchmark_meta(data)


def benchmark_meta(data: dict) -> dict:
    """The machine, commit and time of a pytest-benchmark JSON file's run."""
    return {"machine": data.get("machine_info", {}).get("cpu", {}).get("brand_raw", ""),
            "commit": data.get("commit_info", {}).get("id", ""), "datetime": data.get("datetime", "")}


def load_other_benchmarks(path: str | Path) -> list[dict]:
    """The benchmarks of a pytest-benchmark JSON file that are neither throughput cases nor speed goals (the
    executors' overhead per unit, the harness against a Python loop): name, pytest-benchmark's timing of a
    round and the figures the benchmark recorded in extra_info."""
    data = read_benchmark_json(path)
    return [{"name": bench.get("name", "?"), "stats": bench["stats"], "recorded": bench.get("extra_info", {})}
            for bench in data.get("benchmarks", [])
            if not {"estimates_per_call", "speed_goal"} & set(bench.get("extra_info", {}))]


def _recorded(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def other_benchmarks_table_html(records: list[dict]) -> str:
    """benchmark | seconds a round: median [min, max] | rounds | recorded (extra_info)."""
    head = "".join(f"<th>{h}</th>" for h in ("benchmark", "seconds a round: median [min, max]", "rounds", "recorded"))
    body = "".join(
        f"<tr><td>{html.escape(r['name'])}</td><td>{r['stats']['median']:.3g} <span class=ci>"
        f"[{r['stats']['min']:.3g}, {r['stats']['max']:.3g}]</span></td><td>{r['stats']['rounds']}</td>"
        f"<td>{html.escape(', '.join(f'{k} = {_recorded(v)}' for k, v in r['recorded'].items()))}</td></tr>"
        for r in records)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# Layout in inches, so that titles, labels and the legend fit whatever the number of panels.
PANEL_W, PANEL_H, LEFT, RIGHT_PAD, GAP_W, GAP_H, TOP, BOTTOM = 4.0, 2.8, 0.9, 0.2, 0.9, 1.0, 0.8, 0.6
LEGEND_CHAR_W, LEGEND_HANDLE_W = 0.075, 0.8  # an 8-point character, and the line and marker before the text
TITLE = "throughput (solid: cpu, dashed: cuda; band: fastest to slowest timed call)"


def throughput_figure(frame: pd.DataFrame, palette=None):
    """One panel per objective: estimates per second against S (log-log), CPU solid, CUDA dashed,
    with the spread between the slowest and fastest timed call as a band; one line per estimator
    setting, coloured by estimator from the run's palette (reports.palette)."""
    from reports.palette import Palette

    palette = palette or Palette(frame["estimator"])
    frame = frame.assign(series=_series(frame))
    objectives = list(dict.fromkeys(frame["objective"]))
    columns = min(4, len(objectives))
    rows = math.ceil(len(objectives) / columns)
    labels = [f"{series} ({device})" for series, device in frame[["series", "device"]].drop_duplicates().itertuples(
        index=False)]
    legend_w = LEGEND_HANDLE_W + LEGEND_CHAR_W * max(len(label) for label in labels)
    width = LEFT + columns * PANEL_W + (columns - 1) * GAP_W + legend_w + RIGHT_PAD
    height = TOP + rows * PANEL_H + (rows - 1) * GAP_H + BOTTOM
    fig, axes = plt.subplots(rows, columns, figsize=(width, height), squeeze=False)
    markers = _setting_markers(frame, palette)
    for ax, objective in zip(axes.ravel(), objectives):
        part = frame[frame["objective"] == objective]
        for (estimator, series_name, device), series in part.groupby(["estimator", "series", "device"], sort=False):
            series = series.sort_values("n_samples")
            colour = palette[estimator].colour
            ax.plot(series["n_samples"], series["estimates_per_s"], "-" if device == "cpu" else "--",
                    marker=markers[series_name], markersize=3, color=colour,
                    label=f"{series_name} ({device})")
            ax.fill_between(series["n_samples"], series["estimates_per_s_lo"], series["estimates_per_s_hi"],
                            color=colour, alpha=0.15)
        ax.set_xscale("log")
        ax.set_yscale("log")
        samples = sorted(set(part["n_samples"]))
        if len(samples) <= 9:  # the measured S themselves, as in the sweep's other figures
            ax.set_xticks(samples, [f"{s:g}" for s in samples])  # (reports.ticks leaves this axis without minor ticks)
        ax.set_title(objective, fontsize=9)
        ax.set_xlabel("samples per estimate S", fontsize=LABEL_SIZE)
        ax.set_ylabel("estimates per second (1/s)", fontsize=LABEL_SIZE)
        ax.tick_params(labelsize=TICK_SIZE)
        ax.grid(True, which="both", alpha=0.3)
    for ax in axes.ravel()[len(objectives):]:
        ax.set_visible(False)
    handles = {}
    for ax in axes.ravel():
        for handle, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    right = (width - legend_w - RIGHT_PAD) / width
    fig.legend(list(handles.values()), list(handles.keys()), loc="upper left", bbox_to_anchor=(right + 0.1 / width,
               1 - TOP / height), fontsize=8, frameon=False)
    fig.suptitle(textwrap.fill(TITLE, int(width * 72 / (10 * 0.6))), fontsize=10, y=1 - 0.1 / height, va="top")
    fig.subplots_adjust(left=LEFT / width, right=(width - legend_w - RIGHT_PAD) / width, bottom=BOTTOM / height,
                        top=1 - TOP / height, wspace=GAP_W / PANEL_W, hspace=GAP_H / PANEL_H)
    return fig, axes


SETTING_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def _setting_markers(frame: pd.DataFrame, palette) -> dict[str, str]:
    """A marker per line: the estimator's own for its first setting, others for its other settings (which
    share its colour, and the line style says the device)."""
    markers = {}
    for estimator, series in frame.groupby("estimator", sort=False)["series"]:
        own = palette[estimator].marker
        others = [m for m in SETTING_MARKERS if m != own]
        for index, name in enumerate(dict.fromkeys(series)):
            markers[name] = own if index == 0 else others[(index - 1) % len(others)]
    return markers


def throughput_table(frame: pd.DataFrame) -> str:
    """Estimates per second, estimator settings as rows, (device, S) as columns."""
    table = frame.assign(estimator=_series(frame)).pivot_table(
        index=["objective", "estimator"], columns=["device", "n_samples"], values="estimates_per_s", aggfunc="first")
    return table.to_html(float_format=lambda v: f"{v:.3g}", na_rep="-", border=0)


GOAL_COLUMNS = ("goal", "ratio of", "ratio [interval]", "goal", "verdict", "pairs", "load")


def load_speed_goals(path: str | Path) -> list[dict]:
    """The speed-goal rows (extra_info["speed_goal"]) of a `pytest --benchmark-json` file, in run order."""
    data = read_benchmark_json(path)
    return [bench["extra_info"]["speed_goal"] for bench in data.get("benchmarks", [])
            if "speed_goal" in bench.get("extra_info", {})]


def _goal_cells(record: dict) -> list[str]:
    threshold = record.get("threshold")
    load = record.get("load_1min")
    interval = "[one run]" if record.get("ratio_low") is None else \
        f"[{record['ratio_low']:.3g}, {record['ratio_high']:.3g}]"
    return [record["goal"], record["ratio_of"], f"{record['ratio']:.3g} {interval}",
            "-" if threshold is None else f"{record['direction']} {threshold:g}", record["verdict"],
            str(record["pairs"]), "-" if load is None else f"{load:.1f}"]


def _interval_heading(records: list[dict]) -> str:
    levels = sorted({f"{r['confidence']:.0%}" for r in records if r.get("confidence") is not None})
    return f"ratio [{'/'.join(levels)} interval]"


def speed_goal_table_text(records: list[dict]) -> str:
    """A plain-text table: goal, ratio of, ratio [interval], goal, verdict, pairs, load (1-min load average)."""
    header = list(GOAL_COLUMNS)
    header[2] = _interval_heading(records)
    rows = [header] + [_goal_cells(r) for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def speed_goal_table_html(records: list[dict]) -> str:
    header = list(GOAL_COLUMNS)
    header[2] = _interval_heading(records)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in _goal_cells(r)) + "</tr>" for r in records)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def speed_goal_figure(records: list[dict]):
    """Each judged goal's interval as a margin on a log axis: ratio / threshold for a '>=' goal,
    threshold / ratio for a '<=' goal, so that right of 1 is always the goal's side."""
    judged = [r for r in records if r.get("threshold") is not None and r.get("ratio_low") is not None]
    fig, ax = plt.subplots(figsize=(9, 0.3 * len(judged) + 1.4))
    for row, record in enumerate(judged):
        margins = [v / record["threshold"] for v in (record["ratio"], record["ratio_low"], record["ratio_high"])]
        if record["direction"] == "<=":
            margins = [1 / v for v in margins]
        colour = {"met": "C2", "not met": "C3"}.get(record["verdict"], "C7")
        ax.plot([min(margins[1:]), max(margins[1:])], [row, row], color=colour, linewidth=3)
        ax.plot(margins[0], row, "o", color=colour, markersize=4)
    ax.axvline(1.0, color="k", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yticks(range(len(judged)), [r["goal"] for r in judged], fontsize=TICK_SIZE)
    ax.invert_yaxis()
    ax.set_xlabel("margin over the goal (> 1: on the goal's side); bar: interval")
    fig.tight_layout()
    return fig, ax


def render_benchmark_json(json_path: str | Path, out_dir: str | Path | None = None) -> Path:
    """The page of a `pytest --benchmark-only --benchmark-json=FILE` run: the speed-goal table, the
    throughput figure and table where the file holds throughput cases, and a table of any other
    benchmarks (their timing and the figures they recorded)."""
    from markupsafe import Markup

    from reports import html as page  # imports this module: imported here, not at the top

    json_path = Path(json_path)
    goals = load_speed_goals(json_path)
    others = load_other_benchmarks(json_path)
    try:
        frame, meta = load_benchmark_json(json_path)
    except ValueError:
        if not goals and not others:
            raise ValueError(f"{json_path} holds no benchmarks; write it with "
                             "pytest --benchmark-only --benchmark-json=FILE") from None
        frame, meta = None, benchmark_meta(read_benchmark_json(json_path))
    out_dir = Path(out_dir) if out_dir else json_path.with_name(json_path.stem + "-report")
    out_dir.mkdir(parents=True, exist_ok=True)
    goal_note = ("<h3>Speed goals</h3><p>Each goal's ratio is the median of the ratios of paired, adjacent turns "
                 "of both sides, with its distribution-free interval (benchmarks/speed_goals.py). met / not met: "
                 "the interval lies wholly on the goal's / the wrong side; undecided: it straddles the threshold. "
                 "load: the 1-minute load average when measured.</p>" + speed_goal_table_html(goals)) if goals else ""
    other_note = ("<h3>Other benchmarks</h3><p>pytest-benchmark's seconds a round, and what each benchmark recorded "
                  "(its extra_info).</p>" + other_benchmarks_table_html(others)) if others else ""
    if frame is not None:
        section = page.throughput_section(frame, out_dir, (
            "From pytest-benchmark: one round draws a batch of estimates; estimates per second from the median "
            "round, band and brackets from the slowest to the fastest round."))
        section["table"] = Markup(goal_note + other_note + "<h3>Estimates per second</h3>") + section["table"]
    elif goals:
        fig, _ = speed_goal_figure(goals)
        save_figure(fig, out_dir / "speed_goals.png", dpi=90)
        section = {"png": "speed_goals.png", "note": "Speed goals from pytest-benchmark.",
                   "table": Markup(goal_note + other_note)}
    else:
        section = {"png": None, "heading": "Benchmarks", "note": "From pytest-benchmark.", "table": Markup(other_note)}
    return page.write_page(out_dir, f"benchmarks ({json_path.name})", list(meta.items()), [], section, [])
