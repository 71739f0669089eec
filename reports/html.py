"""The static report: one HTML page with its PNGs beside it, readable from file://."""
from __future__ import annotations

import concurrent.futures
import json
import multiprocessing
import re
from pathlib import Path

import jinja2
from markupsafe import Markup
import matplotlib.pyplot as plt

from reports.cost import cost_table
from reports.load import load_run
from reports.plots import objective_figure
from reports.seeds import combine_seeds
from reports.swept import annotate, panels
from reports.tables import fmt, objective_table
from reports.throughput import from_sweep, load_benchmark_json, throughput_figure, throughput_table

# Everything from the run's files is escaped; the tables built here are marked safe (Markup).
TEMPLATES = jinja2.Environment(loader=jinja2.PackageLoader("reports", "templates"), autoescape=True)

META_KEYS = ("started", "finished", "git_commit", "torch_version", "cpu", "cpu_threads", "cuda_devices",
             "device_note", "dtype", "seeds", "n_estimates", "executor", "concurrency", "worker_threads", "commands")


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def render_report(run_dir: str | Path) -> Path:
    """Write index.html and one PNG per objective into run_dir; return the page's path."""
    run_dir = Path(run_dir)
    frame, meta = load_run(run_dir)
    unmeasured = frame[frame["variance_trace"].isna()] if "variance_trace" in frame else frame.iloc[0:0]
    left_out = [f"{row.cell_id}: {int(row.nonfinite)} of {int(row.n_estimates)} estimates not finite, none left to measure"
                for row in unmeasured.itertuples()]
    frame = frame[frame["variance_trace"].notna()] if "variance_trace" in frame else frame
    frame = combine_seeds(frame)  # several seeds: the mean, with intervals that hold their spread
    groups = [(objective, annotate(rows)) for objective, rows in frame.groupby("objective", sort=False)]
    # One figure per swept hyperparameter name (reports.swept.panels): the first keeps the plain name.
    figures = {objective: [(name, part, f"{slug(objective)}{'' if i == 0 else '-' + slug(' '.join(filter(None, (name, variant))))}.png",
                            f"{objective}{f' ({variant})' if variant else ''}")
                           for i, (name, variant, part) in enumerate(panels(rows))] for objective, rows in groups}
    draw_figures([(part, title, run_dir / png, name) for objective, parts in figures.items()
                  for name, part, png, title in parts])
    sections = []
    for objective, rows in groups:
        pngs = [png for _, _, png, _ in figures[objective]]
        tables = [{"n_samples": s, "n_estimates": n, "device": d, "html": Markup(objective_table(part))}
                  for (s, n, d), part in rows.groupby(["n_samples", "n_estimates", "device"], sort=True)]
        params = json.loads(rows["objective_params"].iloc[0]) if "objective_params" in rows else {}
        sections.append({
            "objective": objective, "anchor": slug(objective), "pngs": pngs, "tables": tables,
            "description": ", ".join(f"{k} = {v}" for k, v in params.items() if k != "point"),
            "true_grad_norm": fmt(float(rows["true_grad_norm"].iloc[0])),
            "cost": Markup(cost_table(rows)) if "variance_x_time" in rows else "",
        })
    throughput = None
    if len(frame) and (frame["n_samples"].nunique() > 1 or frame["device"].nunique() > 1):
        throughput = throughput_section(from_sweep(frame), run_dir,
                                        "From the sweep's timing: one call draws a batch of estimates; "
                                        "band and brackets: fastest to slowest timed call.")
    meta_rows = [(key, meta[key]) for key in META_KEYS if key in meta]
    return write_page(run_dir, f"gradient estimator variance ({run_dir.name})", meta_rows, sections, throughput,
                      meta.get("skipped", []) + left_out)


def _save_objective_figure(job) -> None:
    rows, title, path, x_name = job
    fig, _ = objective_figure(rows, title, x_name)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def draw_figures(jobs) -> None:
    """Render the per-objective PNGs, on two processes where the platform forks (matplotlib is
    single-threaded and a figure takes about half a second)."""
    if len(jobs) > 2 and "fork" in multiprocessing.get_all_start_methods():
        with concurrent.futures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
            list(pool.map(_save_objective_figure, jobs))
    else:
        for job in jobs:
            _save_objective_figure(job)


def throughput_section(frame, out_dir: Path, note: str) -> dict:
    fig, _ = throughput_figure(frame)
    fig.savefig(out_dir / "throughput.png", dpi=90)
    plt.close(fig)
    return {"png": "throughput.png", "table": Markup(throughput_table(frame)), "note": note}


def write_page(out_dir: Path, title: str, meta_rows, sections, throughput, skipped) -> Path:
    page = TEMPLATES.get_template("report.html.j2").render(
        title=title, meta=meta_rows, sections=sections, throughput=throughput, skipped=skipped)
    path = out_dir / "index.html"
    path.write_text(page)
    return path


def render_benchmark_report(json_path: str | Path, out_dir: str | Path | None = None) -> Path:
    """The throughput page of a `pytest --benchmark-only --benchmark-json=FILE` run."""
    json_path = Path(json_path)
    out_dir = Path(out_dir) if out_dir else json_path.with_name(json_path.stem + "-report")
    out_dir.mkdir(parents=True, exist_ok=True)
    frame, meta = load_benchmark_json(json_path)
    note = ("From pytest-benchmark: one round draws a batch of estimates; estimates per second from the median "
            "round, band and brackets from the slowest to the fastest round.")
    return write_page(out_dir, f"estimator throughput ({json_path.name})", list(meta.items()), [],
                      throughput_section(frame, out_dir, note), [])
