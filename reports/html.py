"""The static report: one HTML page with its PNGs beside it, readable from file://."""
from __future__ import annotations

import json
import re
from pathlib import Path

import jinja2
import matplotlib.pyplot as plt

from reports.load import load_run
from reports.plots import objective_figure
from reports.tables import fmt, objective_table

TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("reports", "templates"),
    autoescape=jinja2.select_autoescape(disabled_extensions=("j2",), default=False),
)

META_KEYS = ("started", "finished", "git_commit", "torch_version", "cpu", "cpu_threads", "cuda_devices",
             "device_note", "dtype", "seed", "n_estimates", "commands")


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def render_report(run_dir: str | Path) -> Path:
    """Write index.html and one PNG per objective into run_dir; return the page's path."""
    run_dir = Path(run_dir)
    frame, meta = load_run(run_dir)
    frame = frame[frame["variance_trace"].notna()] if "variance_trace" in frame else frame
    sections = []
    for objective, rows in frame.groupby("objective", sort=False):
        png = f"{slug(objective)}.png"
        fig, _ = objective_figure(rows, objective)
        fig.savefig(run_dir / png, dpi=90)
        plt.close(fig)
        tables = [{"n_samples": s, "n_estimates": int(part["n_estimates"].iloc[0]), "device": d,
                   "html": objective_table(part)}
                  for (s, d), part in rows.groupby(["n_samples", "device"], sort=True)]
        params = json.loads(rows["objective_params"].iloc[0]) if "objective_params" in rows else {}
        sections.append({
            "objective": objective, "anchor": slug(objective), "png": png, "tables": tables,
            "description": ", ".join(f"{k} = {v}" for k, v in params.items() if k != "point"),
            "true_grad_norm": fmt(float(rows["true_grad_norm"].iloc[0])),
        })
    meta_rows = [(key, meta[key]) for key in META_KEYS if key in meta]
    page = TEMPLATES.get_template("report.html.j2").render(
        title=f"gradient estimator variance ({run_dir.name})", meta=meta_rows, sections=sections,
        skipped=meta.get("skipped", []))
    path = run_dir / "index.html"
    path.write_text(page)
    return path
