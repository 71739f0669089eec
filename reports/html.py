"""The static report: one HTML page with its PNGs beside it, readable from file://."""
from __future__ import annotations

import concurrent.futures
import contextlib
import json
import multiprocessing
import re
from pathlib import Path

import jinja2
from markupsafe import Markup

from reports.files import atomic_write
from reports.cost import cost_table
from reports.files import resume_command_line
from reports.load import load_run
from reports.leaderboard import variance_leaderboard
from reports.palette import Palette
from reports.plots import objective_figure, samples_figure
from reports.seeds import combine_seeds
from reports.swept import annotate, panels
from reports.tables import fmt, objective_table
from reports.temperature import best_temperatures, temperature_figure, temperature_table
from reports.throughput import from_sweep, throughput_figure, throughput_table
from reports.ticks import save_figure

# Everything from the run's files is escaped; the tables built here are marked safe (Markup).
TEMPLATES = jinja2.Environment(loader=jinja2.PackageLoader("reports", "templates"), autoescape=True)

META_KEYS = ("started", "finished", "git_commit", "torch_version", "cpu", "cpu_threads", "cuda_devices",
             "device_note", "dtype", "seeds", "n_estimates", "executor", "concurrency", "worker_threads", "commands")


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def render_report(run_dir: str | Path) -> Path:
    """Write index.html and its PNGs into run_dir; return the page's path.

    The page: the leaderboard (reports.leaderboard), the temperature answer when three or more
    temperatures were swept (reports.temperature), then per objective its tables and figures; every
    one of them with the run's palette (reports.palette)."""
    run_dir = Path(run_dir)
    frame, meta = load_run(run_dir)
    finished_rows = len(frame)
    if "variance_trace" not in frame:
        frame["variance_trace"] = float("nan")  # every cell non-finite: nothing measured anywhere
    unmeasured = frame[frame["variance_trace"].isna()]
    left_out = [f"{row.cell_id}: {int(row.nonfinite)} of {int(row.n_estimates)} estimates not finite, none left to measure"
                for row in unmeasured.itertuples()]
    frame = frame[frame["variance_trace"].notna()]
    frame = annotate(combine_seeds(frame)) if len(frame) else frame  # seeds: the mean, intervals holding their spread
    palette = Palette(frame["estimator"]) if len(frame) else Palette([])
    groups = [(objective, rows) for objective, rows in frame.groupby("objective", sort=False)] if len(frame) else []
    anchors = {objective: slug(objective) for objective, _ in groups}
    jobs, pngs = [], {}
    for objective, rows in groups:
        pngs[objective] = []
        # One figure per swept hyperparameter name (reports.swept.panels): the first keeps the plain name.
        for i, (name, variant, part) in enumerate(panels(rows)):
            png = f"{slug(objective)}{'' if i == 0 else '-' + slug(' '.join(filter(None, (name, variant))))}.png"
            jobs.append(("objective", part, f"{objective}{f' ({variant})' if variant else ''}", run_dir / png, name,
                         palette))
            pngs[objective].append(png)
        if rows["n_samples"].nunique() > 1:
            png = f"{slug(objective)}-samples.png"
            jobs.append(("samples", rows, f"{objective}: against S", run_dir / png, None, palette))
            pngs[objective].append(png)
    temperatures = None
    best = best_temperatures(frame) if len(frame) else None
    if best is not None and not best.empty:
        jobs.append(("temperature", frame, best, run_dir / "temperature.png", None, palette))
    # The figures are drawn in other processes while this one builds the tables (a sixth of the report's work).
    with figures_drawn(jobs):
        if best is not None and not best.empty:
            temperatures = {"png": "temperature.png", "table": Markup(temperature_table(best, palette, anchors))}
        sections = []
        for objective, rows in groups:
            tables = [{"n_samples": s, "n_estimates": n, "device": d, "html": Markup(objective_table(part, palette))}
                      for (s, n, d), part in rows.groupby(["n_samples", "n_estimates", "device"], sort=True)]
            params = json.loads(rows["objective_params"].iloc[0]) if "objective_params" in rows else {}
            sections.append({
                "objective": objective, "anchor": anchors[objective], "pngs": pngs[objective], "tables": tables,
                "description": ", ".join(f"{k} = {v}" for k, v in params.items() if k != "point"),
                "reference": reference_text(rows),
                "cost": Markup(cost_table(rows, palette)) if "variance_x_time" in rows else "",
            })
        summaries = [{"n_samples": s, "device": d,
                      "html": Markup(variance_leaderboard(part, anchors, palette,
                                                          "summary" if i == 0 else f"summary-{i}"))}
                     for i, ((s, d), part) in enumerate(frame.groupby(["n_samples", "device"], sort=True))] \
            if len(frame) else []
        throughput = None
        if len(frame) and (frame["n_samples"].nunique() > 1 or frame["device"].nunique() > 1):
            throughput = throughput_section(from_sweep(frame), run_dir,
                                            "From the sweep's timing: one call draws a batch of estimates; "
                                            "band and brackets: fastest to slowest timed call.", palette)
    taus = sorted({float(t) for t in frame["x"][frame["x_name"] == "tau"].dropna()}) if len(frame) else []
    meta_rows = [(key, meta[key]) for key in META_KEYS if key in meta]
    return write_page(run_dir, f"gradient estimator variance ({run_dir.name})", meta_rows, sections, throughput,
                      meta.get("skipped", []) + left_out, summaries=summaries, temperatures=temperatures,
                      few_temperatures=0 < len(taus) < 3, failed=meta.get("problems", []),
                      interrupted=interruption_note(run_dir, meta, finished_rows))


def reference_text(rows) -> str:
    """'exact gradient norm 0.025', or for a reference that was estimated (a problem without a closed form) what
    it is and its standard error: a page that called a sampled reference exact hid where its bias figures come
    from (found by a new user)."""
    first = rows.iloc[0]
    norm = fmt(float(first["true_grad_norm"]))
    se = float(first.get("reference_se", 0.0) or 0.0)
    if se > 0:
        return (f"reference gradient norm {norm}, estimated ({first.get('reference', 'by sampling')}; standard error "
                f"{fmt(se)}, carried into every bias interval)")
    return f"exact gradient norm {norm}"


# At 80 dpi an 8.5-point tick label's superscript was 5 pixels tall, and 10^2 read like 10^3 (found looking at
# the main command's PNGs); at 110 about 7.
FIGURE_DPI = 110


def _save_figure(job) -> None:
    kind, rows, title, path, x_name, palette = job
    if kind == "objective":
        fig, _ = objective_figure(rows, title, x_name, palette)
    elif kind == "samples":
        fig, _ = samples_figure(rows, title, palette)
    else:  # "temperature": title holds the table of best temperatures
        fig, _ = temperature_figure(rows, title, palette)
    save_figure(fig, path, dpi=FIGURE_DPI)


@contextlib.contextmanager
def figures_drawn(jobs):
    """Render the PNGs while the block runs, on two processes where the platform forks (matplotlib is
    single-threaded and a figure takes about half a second); they are all written when the block ends."""
    if len(jobs) <= 2 or "fork" not in multiprocessing.get_all_start_methods():
        yield
        for job in jobs:
            _save_figure(job)
        return
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
        drawn = [pool.submit(_save_figure, job) for job in jobs]
        try:
            yield
            for future in drawn:
                future.result()  # a figure that failed raises here
        except BaseException:  # the block's error, or a figure's: the figures not begun are not drawn
            pool.shutdown(cancel_futures=True)
            raise


def interruption_note(run_dir: Path, meta: dict, finished_rows: int) -> str:
    """'Interrupted at TIME: 23 of 126 cells finished; ...' for a run stopped before its grid was done (run.json's
    `interrupted`, which a finished invocation removes), else ''. Without it the page ranked a cut-short run's
    cells as if they were the whole sweep (found by a tester: 23 of 126 cells, no word of it)."""
    if not meta.get("interrupted"):
        return ""
    planned = meta.get("units_planned")
    # The rows may include cells of earlier commands (a --resume with another --tau): not "12 of 5".
    grid = f" before the {planned} cells of its last command were done" if planned else ""
    return (f"Interrupted at {meta['interrupted']}{grid}: the folder holds {finished_rows} finished cells, and the "
            f"summary and tables cover only those. Continue it with {resume_command_line(run_dir, meta)}")


def throughput_section(frame, out_dir: Path, note: str, palette: Palette | None = None) -> dict:
    fig, _ = throughput_figure(frame, palette)
    save_figure(fig, out_dir / "throughput.png", dpi=FIGURE_DPI)
    return {"png": "throughput.png", "table": Markup(throughput_table(frame)), "note": note}


def write_page(out_dir: Path, title: str, meta_rows, sections, throughput, skipped, **extra) -> Path:
    page = TEMPLATES.get_template("report.html.j2").render(
        title=title, meta=meta_rows, sections=sections, throughput=throughput, skipped=skipped, **extra)
    path = out_dir / "index.html"
    atomic_write(path, page)  # Ctrl-C leaves the old page, not half a new one
    return path
