"""The report's answers: the leaderboard (ranks tie where intervals overlap, degenerate cells are never
ranked or starred), the best temperature with its range, the palette by family, and pages that render
from edge-case run folders (one cell, every cell non-finite, no temperature, one estimator)."""
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.cli_common import log_grid
from reports.degenerate import degenerate_reason
from reports.leaderboard import interval_ranks
from reports.palette import MAX_PER_PANEL, Palette
from reports.renderers import kind_of, register_renderer, render, renderer_for
from reports.swept import annotate
from reports.temperature import best_temperatures

ROOT = Path(__file__).resolve().parents[1]

ZERO_GRADIENT = '''
import torch
import estimators
from estimators.surrogates import score_function_surrogate


@estimators.register("zero_gradient", needs=("log_prob",), unbiased=False,
                     summary="a constant zero gradient", reference="none: a planted degenerate estimator")
def zero_gradient(f, dist, num_samples):
    z = dist.sample((num_samples,))
    return score_function_surrogate(torch.zeros_like(f(z)), dist.log_prob(z), 0.0)
'''


def sweep(tmp_path, *args, imports: str | None = None) -> Path:
    out = tmp_path / "run"
    env = None
    command = [sys.executable, "-m", "benchmarks.variance", "--out", str(out), "--estimates", "400", *args]
    if imports:
        (tmp_path / "planted.py").write_text(imports)
        command += ["--import", "planted"]
        env = {"PYTHONPATH": f"{tmp_path}:{ROOT}", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def row_of(page: str, name: str) -> str:
    """The HTML of one table row whose header names `name` (the first such row of each table, joined)."""
    return "\n".join(re.findall(rf"<tr><th><span class=swatch[^>]*></span>{name}<br>.*?</tr>", page, re.S))


def test_a_zero_gradient_is_degenerate_never_starred_or_ranked_and_temperatures_are_answered(tmp_path):
    out = sweep(tmp_path, "--estimators", "reinforce", "disarm", "gumbel_softmax", "zero_gradient",
                "--objectives", "tucker-0.45", "tucker-0.45@theta=-2", "--tau", "0.3", "1", "3",
                imports=ZERO_GRADIENT)
    page = (out / "index.html").read_text()
    assert 'id=summary' in page and 'id="temperature"' in page
    zero_rows = row_of(page, "zero_gradient")
    assert zero_rows and "&#9733;" not in zero_rows and "degenerate" in zero_rows
    summary = page.split("id=summary", 1)[1].split("</table>", 1)[0]
    zero_summary = re.search(r"zero_gradient<br>.*?</tr>", summary, re.S).group(0)
    assert zero_summary.count("deg.") == 4  # both problems, by MSE and by MSE x time: never a rank
    assert zero_summary.count("<td>0</td>") == 2  # no wins either way
    # Every PNG the page shows exists and is a real figure.
    for png in re.findall(r'src="([^"]+\.png)"', page):
        assert (out / png).stat().st_size > 10_000, png
    assert (out / "temperature.png").exists() and "&tau;* =" in page


def test_interval_ranks_tie_where_intervals_overlap():
    # A and B overlap (tie for first); C lies wholly above both; D overlaps C only.
    lo = np.array([1.0, 1.5, 5.0, 4.0])
    hi = np.array([2.0, 2.5, 6.0, 5.5])
    assert interval_ranks(lo, hi).tolist() == [1, 1, 3, 3]


@pytest.mark.parametrize("row, degenerate", [
    ({"variance_trace": 0.0, "bias_significant": True, "rel_bias": 1.0, "rel_bias_lo": 1.0, "cosine": 1.0}, True),
    ({"variance_trace": 0.0, "bias_significant": False, "rel_bias": 0.0, "rel_bias_lo": 0.0, "cosine": 1.0}, False),
    ({"variance_trace": 1.0, "bias_significant": True, "rel_bias": 0.6, "rel_bias_lo": 0.5, "cosine": 0.9}, True),
    # an unbiased estimator where g* is tiny: its 95% interval excludes 0, but the bias is not significant
    ({"variance_trace": 1.0, "bias_significant": False, "rel_bias": 18.0, "rel_bias_lo": 2.5, "cosine": -1.0}, False),
    # a noisy estimate whose interval reaches below 0.5 is imprecise, not degenerate
    ({"variance_trace": 1.0, "bias_significant": False, "rel_bias": 0.9, "rel_bias_lo": 0.1, "cosine": 0.2}, False),
    ({"variance_trace": 1.0, "bias_significant": True, "rel_bias": 0.3, "rel_bias_lo": 0.2, "cosine": 0.4}, True),
    ({"variance_trace": 1.0, "bias_significant": True, "rel_bias": 0.3, "rel_bias_lo": 0.2, "cosine": 0.5}, False),
    # figures from the finite estimates only: never starred or ranked (a tester's half-nan estimator got the star)
    ({"variance_trace": 1.0, "bias_significant": False, "rel_bias": 0.0, "rel_bias_lo": 0.0, "cosine": 1.0,
      "nonfinite": 159}, True),
    ({"variance_trace": 1.0, "bias_significant": False, "rel_bias": 0.0, "rel_bias_lo": 0.0, "cosine": 1.0,
      "nonfinite": 0}, False),
])
def test_degenerate_criteria(row, degenerate):
    assert bool(degenerate_reason(row)) is degenerate


def test_best_temperature_and_its_range():
    taus = [0.1, 0.3, 1.0, 3.0]
    mse = [4.0, 1.0, 1.1, 9.0]
    frame = pd.DataFrame({"objective": "p", "estimator": "gumbel_softmax", "variant": "", "n_samples": 1,
                          "device": "cpu", "x_name": "tau", "x": taus, "mse": mse,
                          "mse_lo": [m * 0.9 for m in mse], "mse_hi": [m * 1.2 for m in mse]})
    best = best_temperatures(frame).iloc[0]
    assert best["tau"] == 0.3 and (best["tau_lo"], best["tau_hi"]) == (0.3, 1.0) and not best["at_edge"]
    assert best_temperatures(frame.iloc[:2]).empty  # two temperatures: no answer


def test_the_best_temperature_skips_degenerate_cells_and_its_range_is_contiguous():
    taus = [0.1, 0.3, 1.0, 3.0]
    mse = [1.0, 5.0, 1.05, 0.5]
    frame = pd.DataFrame({"objective": "p", "estimator": "gumbel_softmax", "variant": "", "n_samples": 1,
                          "device": "cpu", "x_name": "tau", "x": taus, "mse": mse, "mse_lo": [m * 0.9 for m in mse],
                          "mse_hi": [m * 1.1 for m in mse], "variance_trace": 1.0, "bias_significant": True,
                          "rel_bias": [0.1, 0.1, 0.1, 0.8], "rel_bias_lo": [0.05, 0.05, 0.05, 0.7],
                          "cosine": 1.0})
    best = best_temperatures(frame).iloc[0]
    # tau = 3 has the lowest MSE but is degenerate; tau = 1 is within 0.1's interval but not its neighbour
    assert best["tau"] == 0.1 and (best["tau_lo"], best["tau_hi"]) == (0.1, 0.1)


def test_a_degenerate_cell_counts_as_last_in_the_median_rank():
    from reports.leaderboard import _summary, rank_table
    rows = []
    for objective, values in (("p1", {"a": 1.0, "b": 2.0}), ("p2", {"a": 1.0, "b": 0.0}), ("p3", {"a": 1.0, "b": 0.0})):
        for estimator, variance in values.items():
            rows.append({"objective": objective, "estimator": estimator, "mse": variance + 0.1,
                         "mse_lo": variance + 0.09, "mse_hi": variance + 0.11, "variance_trace": variance,
                         "bias_significant": variance == 0.0, "rel_bias": 0.0, "rel_bias_lo": 0.0, "cosine": 1.0})
    summary = _summary(rank_table(pd.DataFrame(rows), "mse"))
    assert summary.loc["a", "median_rank"] == 1 and summary.loc["b", "median_rank"] == 2


def test_timing_flags_of_several_rows_name_each_condition_once_at_its_worst():
    """A training run's evaluation rows read together: the most units at once, the load highest for its own
    row's cores (a 16-core node at load 8 is not loaded), the smallest CPU share; no hygiene columns, no flag."""
    from reports.cost import timing_flags
    rows = pd.DataFrame([
        {"concurrency": 1, "cores": 2, "load_avg_start": 0.5, "load_avg_end": 1.0, "timed_cpu_s": 1.0, "timed_wall_s": 1.0,
         "timed_wait_share": 0.02},
        {"concurrency": 2, "cores": 2, "load_avg_start": 1.0, "load_avg_end": 3.0, "timed_cpu_s": 0.2, "timed_wall_s": 1.0,
         "timed_wait_share": 0.85},
        {"concurrency": 1, "cores": 16, "load_avg_start": 8.0, "load_avg_end": 8.0, "timed_cpu_s": 0.0, "timed_wall_s": 0.0,
         "timed_wait_share": 0.1}])
    assert timing_flags(rows) == ("concurrent (2 units at once); under load (load average 3.0 on 2 cores); "
                                  "starved (CPU 0.2 s in 1 s); waited for a CPU (85% of its threads' time)")
    assert timing_flags(rows.iloc[[0, 2]]) == ""
    assert timing_flags(pd.DataFrame({"step": [10, 20], "train_seconds": [1.0, 2.0]})) == ""


def test_palette_groups_families_and_caps_panels():
    names = [f"reinforce_{i}" for i in range(9)] + ["gumbel_softmax", "st_gumbel_softmax", "arm", "disarm", "mine"]
    palette = Palette(names)
    assert palette["gumbel_softmax"].family == "relaxed" and palette["mine"].family == "other"
    groups = palette.groups(names)
    assert all(len(members) <= MAX_PER_PANEL for _, members in groups)
    assert [label for label, _ in groups][:2] == ["score function (1/2)", "score function (2/2)"]
    colours = [palette[n].colour for n in names]
    assert len(set(colours)) == len(colours)  # a colour of its own, within and across families
    same = Palette(list(reversed(names)))
    assert all(same[n] == palette[n] for n in names)  # the same look whatever the order


def test_log_grid():
    grid = log_grid(0.05, 2, 9)
    assert len(grid) == 9 and grid[0] == 0.05 and grid[-1] == 2.0 and log_grid(0.1, 0.123456, 3)[-1] == 0.123456
    ratios = np.diff(np.log(grid))
    assert np.allclose(ratios, ratios[0], rtol=0.02)


def test_tau_grid_on_the_command_line_and_its_errors():
    def run(*args):
        return subprocess.run([sys.executable, "-m", "benchmarks.variance", *args], cwd=ROOT, capture_output=True,
                              text=True, timeout=60)
    for args, message in [(("--tau-grid", "2", "0.05", "9"), "HI must exceed LO"),
                          (("--tau-grid", "0.05", "2", "1"), "N must be >= 2"),
                          (("--tau-grid", "0.05", "2", "x"), "N must be a whole number"),
                          (("--tau", "1", "--tau-grid", "0.05", "2", "3"), "not allowed with"),
                          (("--tau-grid", "abc", "2", "3"), "'abc' is not a number"),
                          (("--tau-grid", "1", "1.001", "4"), "do not fit")]:
        result = run(*args)
        assert result.returncode == 2 and message in result.stderr, result.stderr


def test_edge_case_folders_render(tmp_path):
    """One cell; one estimator and no temperature; every cell non-finite: each renders a page."""
    out = sweep(tmp_path, "--estimators", "reinforce", "--objectives", "tucker-0.45", "--no-report")
    assert render(out).exists()  # a single cell, no temperature, one estimator
    frame = pd.read_csv(out / "results.csv")
    broken = frame.copy()
    for column in [c for c in frame.columns if c.startswith(("variance_trace", "bias_norm", "mse", "snr", "rel_bias"))
                   ] + ["cosine", "variance_mean", "variance_max", "bias_sq_debiased", "bias_z_max"]:
        broken[column] = np.nan
    broken["nonfinite"] = broken["n_estimates"]
    broken.to_csv(out / "results.csv", index=False)
    page = render(out).read_text()
    assert "none left to measure" in page
    broken.drop(columns=[c for c in broken.columns if c.startswith("variance_trace")]).to_csv(
        out / "results.csv", index=False)  # an objective whose only estimator gave no finite estimate at all
    assert "none left to measure" in render(out).read_text()


def test_one_entry_renders_by_kind_and_new_kinds_register(tmp_path):
    folder = tmp_path / "custom"
    folder.mkdir()
    (folder / "results.csv").write_text("a\n1\n")
    (folder / "run.json").write_text(json.dumps({"kind": "custom-task"}))
    with pytest.raises(ValueError, match="no renderer for 'custom-task'"):
        render(folder)

    def custom(path: Path) -> Path:
        (path / "index.html").write_text("custom")
        return path / "index.html"

    register_renderer("custom-task", custom)
    try:
        assert render(folder).read_text() == "custom" and kind_of(folder) == "custom-task"
        with pytest.raises(ValueError, match="already registered"):
            register_renderer("custom-task", custom)
    finally:
        from reports import renderers
        del renderers.RENDERERS["custom-task"]
    assert renderer_for("variance").__name__ == "render_report"


def test_several_samples_and_seeds_draw_curves_against_s(tmp_path):
    out = sweep(tmp_path, "--estimators", "reinforce", "reinforce_loo", "gumbel_softmax", "--objectives",
                "tucker-0.45@theta=-2", "--samples", "2", "4", "--seed", "0", "1", "--tau", "0.5")
    page = (out / "index.html").read_text()
    assert "tucker-0.45_theta_-2-samples.png" in page
    assert (out / "tucker-0.45_theta_-2-samples.png").stat().st_size > 10_000
    frame = annotate(pd.read_csv(out / "results.csv"))
    assert set(frame["seed"]) == {0, 1}


def test_an_old_run_folder_renders(tmp_path):
    """A folder written before hparams, rel_bias, cosine, seeds and timing hygiene existed still renders."""
    out = sweep(tmp_path, "--estimators", "reinforce", "gumbel_softmax", "--objectives", "tucker-0.45",
                "--tau", "0.5", "1", "--no-report")
    frame = pd.read_csv(out / "results.csv")
    old = frame.drop(columns=[c for c in frame.columns if c.startswith(("hparams", "rel_bias", "cosine", "load_avg",
                                                                        "timed_", "seed", "executor", "concurrency"))])
    old.to_csv(out / "results.csv", index=False)
    (out / "run.json").unlink()
    page = render(out).read_text()
    assert "id=summary" in page and "&tau; = 0.5" in page
