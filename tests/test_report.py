"""The report renders from result files alone, with a table per objective and its plots."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import benchmarks.variance as variance
from tests.helpers import inside_and_apart, run_whose_every_cell_failed


def test_reports_cli_rerenders_a_run(tmp_path, capsys):
    out = tmp_path / "run"
    assert variance.main(["--objectives", "quadratic-4", "gauss-exp-1", "--estimates", "300", "--tau", "0.3", "1",
                          "--no-report", "--out", str(out)]) == 0
    assert not (out / "index.html").exists()
    done = subprocess.run([sys.executable, "-m", "reports", str(out)], capture_output=True, text=True,
                          cwd=Path(__file__).parents[1])
    assert done.returncode == 0, done.stderr
    page = (out / "index.html").read_text()
    assert page.count("<table>") == 4 and page.count("<details>") == 2  # estimator table + cost table each
    assert "&tau; = 0.3" in page and "defaults (nothing swept)" in page
    assert "&#9733;" in page and "<b>" in page  # best marked
    for png in re.findall(r'src="([^"]+\.png)"', page):
        assert (out / png).stat().st_size > 10_000
    assert "gumbel_softmax" in page and "[" in page  # intervals shown


def test_reports_cli_on_a_folder_without_results(tmp_path):
    done = subprocess.run([sys.executable, "-m", "reports", str(tmp_path)], capture_output=True, text=True,
                          cwd=Path(__file__).parents[1])
    assert done.returncode == 2 and "holds no results.csv" in done.stderr and "Traceback" not in done.stderr


def reports_cli_on(path: Path, content: dict) -> subprocess.CompletedProcess:
    """`python -m reports PATH` on a pytest-benchmark JSON file holding `content`."""
    path.write_text(json.dumps(content))
    return subprocess.run([sys.executable, "-m", "reports", str(path)], capture_output=True, text=True,
                          cwd=Path(__file__).parents[1])


def test_benchmark_json_renders_a_throughput_page(tmp_path):
    bench = {"machine_info": {"cpu": {"brand_raw": "test cpu"}}, "commit_info": {"id": "abc"}, "datetime": "now",
             "benchmarks": [
                 {"extra_info": {"estimator": e, "objective": "tucker-0.45", "device": "cpu", "n_samples": s,
                                 "f_evals": s, "estimates_per_call": 100},
                  "stats": {"median": 0.001 * s ** 0.5, "min": 0.0009 * s ** 0.5, "max": 0.002 * s ** 0.5}}
                 for e in ("reinforce", "gumbel_softmax") for s in (1, 100, 10000)]}
    done = reports_cli_on(tmp_path / "bench.json", bench)
    assert done.returncode == 0, done.stderr
    page = (tmp_path / "bench-report" / "index.html").read_text()
    assert "Throughput" in page and "gumbel_softmax" in page and "test cpu" in page
    assert (tmp_path / "bench-report" / "throughput.png").stat().st_size > 10_000
    # estimates per second = estimates per call / median round time
    assert "1e+05" in page  # 100 / 0.001


def test_benchmark_json_of_other_benchmarks_renders_their_table_and_an_empty_one_is_refused(tmp_path):
    """A file of benchmarks that are neither throughput cases nor speed goals (the executors' overhead per unit)
    renders their timing and recorded figures; it was refused with advice to write it the way it was written."""
    bench = {"machine_info": {"cpu": {"brand_raw": "test cpu"}}, "commit_info": {"id": "abc"}, "datetime": "now",
             "benchmarks": [{"name": f"test_overhead_per_trivial_unit[{name}]",
                             "extra_info": {"executor": name, "units": 200, "seconds_per_unit": per_unit},
                             "stats": {"median": 200 * per_unit, "min": 200 * per_unit, "max": 200 * per_unit,
                                       "rounds": 1}}
                            for name, per_unit in (("local-pool", 0.00468), ("ray", 0.00263))]}
    done = reports_cli_on(tmp_path / "overhead.json", bench)
    assert done.returncode == 0, done.stderr
    page = (tmp_path / "overhead-report" / "index.html").read_text()
    assert "Other benchmarks" in page and "test cpu" in page and "<img" not in page
    assert "test_overhead_per_trivial_unit[ray]" in page and "seconds_per_unit = 0.00263" in page
    done = reports_cli_on(tmp_path / "empty.json", {"benchmarks": []})
    assert done.returncode == 2 and "holds no benchmarks" in done.stderr and "Traceback" not in done.stderr


def test_sweep_with_several_samples_gets_throughput_and_cost_sections(tmp_path):
    out = tmp_path / "run"
    assert variance.main(["--objectives", "gauss-exp-1", "--samples", "1", "10", "--estimates", "300",
                          "--out", str(out)]) == 0
    page = (out / "index.html").read_text()
    assert 'id="throughput"' in page and "variance &times; seconds" in page
    assert (out / "throughput.png").exists()


def test_every_swept_hyperparameter_is_reported_as_tau_is(tmp_path):
    """--hparam beside --tau: tau on the x-axis, one figure per value of the other swept hyperparameter
    (every curve varies one thing), columns per value in the tables; a name swept alone gets its own axis."""
    from benchmarks import variance

    out = tmp_path / "run"
    assert variance.main(["--estimators", "gumbel_rao", "gumbel_softmax", "rebar", "reinforce", "--objectives",
                          "tucker-0.45@theta=-2", "--tau", "0.3", "1", "--hparam", "gumbel_rao:k=1,3",
                          "--estimates", "300", "--out", str(out)]) == 0
    page = (out / "index.html").read_text()
    pngs = re.findall(r'src="([^"]+\.png)"', page)
    assert len(pngs) == 2 and all((out / png).stat().st_size > 10_000 for png in pngs)  # k=1 and k=3
    assert "&tau; = 0.3" in page and "gumbel_rao k=1" in page and "gumbel_rao k=3" in page
    alone = tmp_path / "alone"
    assert variance.main(["--estimators", "rebar", "reinforce", "--objectives", "tucker-0.45",
                          "--hparam", "rebar:eta=0,1", "--estimates", "300", "--out", str(alone)]) == 0
    assert "eta = 0" in (alone / "index.html").read_text()


def drawn_or_failed(job):
    """A stand-in for a figure job, importable by the report's drawing processes: writes its file or fails."""
    if job.endswith("bad.png"):
        raise ValueError(f"could not draw {job}")
    Path(job).write_text("png")


def test_figures_drawn_beside_the_tables_are_all_written_and_a_failed_one_raises(tmp_path, monkeypatch):
    import reports.html as html

    monkeypatch.setattr(html, "_save_figure", drawn_or_failed)  # the forked drawing processes inherit it
    jobs = [str(tmp_path / f"{i}.png") for i in range(4)]
    with html.figures_drawn(jobs):
        tables_built = True  # what the report does meanwhile
    assert tables_built and all(Path(job).read_text() == "png" for job in jobs)
    with pytest.raises(ValueError, match="could not draw .*bad.png"):
        with html.figures_drawn([*jobs, str(tmp_path / "bad.png")]):
            pass
    with pytest.raises(KeyError):  # an error while the tables are built is not swallowed by the drawing
        with html.figures_drawn(jobs):
            raise KeyError("table")


def test_swept_settings_get_their_own_throughput_lines_and_cost_rows(tmp_path):
    """gumbel_rao at k=1 and k=3 costs differently: each setting is a line and a table row of the throughput
    section (the temperatures of one setting cost the same and share one), and the equal-cost ranking names
    each row's setting."""
    from reports.throughput import _series, from_sweep

    out = tmp_path / "run"
    assert variance.main(["--estimators", "gumbel_rao", "reinforce", "--objectives", "tucker-0.45@theta=-2",
                          "--samples", "1", "2", "--tau", "0.5", "1", "--hparam", "gumbel_rao:k=1,3",
                          "--estimates", "300", "--out", str(out)]) == 0
    page = (out / "index.html").read_text()
    throughput = page[page.index('id="throughput"'):]
    assert "gumbel_rao k=1" in throughput and "gumbel_rao k=3" in throughput and "τ" not in throughput
    costs = re.findall(r"<td>([^<]*)</td><td>(\d+)</td><td>cpu</td>", page)  # (setting, S) of each cost row
    assert {"τ=0.5 k=1", "τ=1 k=3", "-"} <= {setting for setting, _ in costs}  # the x-axis first
    from reports.load import load_run
    from reports.seeds import combine_seeds
    from reports.swept import annotate

    frame = from_sweep(annotate(combine_seeds(load_run(out)[0])))
    assert sorted(set(_series(frame))) == ["gumbel_rao k=1", "gumbel_rao k=3", "reinforce"]
    assert len(frame) == 3 * 2  # three settings at two S


@pytest.mark.parametrize("objectives", [1, 3])
def test_throughput_figure_keeps_its_titles_labels_and_legendinside_and_apart(objectives):
    """One panel or several: the title, the panels' titles and S labels and the legend's long names all show
    (with one objective the title ran past both edges and the legend sat on the plot; with three the title
    crossed the panels' titles and the S label was cut off)."""
    import matplotlib.pyplot as plt
    import pandas as pd

    from reports.throughput import throughput_figure

    frame = pd.DataFrame([{"estimator": name, "setting": setting, "objective": f"tucker-0.45@theta={objective}",
                           "device": "cpu", "n_samples": s, "f_evals": s, "estimates_per_s": 1e6 / s,
                           "estimates_per_s_lo": 5e5 / s, "estimates_per_s_hi": 2e6 / s, "peak_memory_bytes": 0}
                          for name, setting in [("reinforce_shrunk_loo", "c=0.5"), ("reinforce_loo", "")]
                          for objective in range(objectives) for s in (2, 4)])
    fig, axes = throughput_figure(frame)
    legend = fig.legends[0]
    texts = [fig._suptitle, *legend.get_texts()]
    for ax in axes.ravel()[:objectives]:
        texts += [ax.title, ax.xaxis.label, ax.yaxis.label]
        assert [label.get_text() for label in ax.get_xticklabels()] == ["2", "4"]  # the measured S
    inside_and_apart(fig, texts)
    assert legend.get_window_extent().x0 > max(ax.get_window_extent().x1 for ax in axes.ravel())  # beside them
    plt.close(fig)


def test_dot_plots_keep_long_estimator_names_inside_the_figure():
    """Nothing swept: the first column's rows are labelled with the estimators' names, which a fixed margin cut
    (st_gumbel_softmax read as gumbel_softmax)."""
    import matplotlib.pyplot as plt
    import pandas as pd

    from reports.plots import objective_figure

    names = ["st_gumbel_softmax", "straight_through", "gumbel_rao", "reinmax"]
    frame = pd.DataFrame([{"estimator": name, "hparams": "{}", "objective": "tucker-0.45", "n_samples": 1,
                           "device": "cpu", "variance_trace": 1e-3 * (i + 1), "variance_trace_lo": 9e-4 * (i + 1),
                           "variance_trace_hi": 1.1e-3 * (i + 1), "bias_norm": 1e-3, "bias_norm_lo": 0.0,
                           "bias_norm_hi": 2e-3, "bias_significant": False, "mse": 2e-3, "mse_lo": 1e-3,
                           "mse_hi": 3e-3, "time_per_estimate_s": 1e-7, "time_per_estimate_min_s": 9e-8,
                           "time_per_estimate_max_s": 2e-7} for i, name in enumerate(names)])
    fig, axes = objective_figure(frame, "tucker-0.45", None)
    labels = [label for ax in axes[:, 0] for label in ax.get_yticklabels()]
    assert {label.get_text() for label in labels} == set(names)
    inside_and_apart(fig, labels)
    plt.close(fig)


@pytest.mark.parametrize("swept", [True, False])
def test_the_noise_floor_band_is_drawn_when_every_bias_is_significant(swept):
    """Found by a new user: gumbel_rao's biases (about 0.07) were all significant, the log axis's floor (a third
    of the smallest bias) sat above their noise floor (0.0024), and the band the footnote names was empty."""
    import matplotlib.pyplot as plt
    import pandas as pd
    from matplotlib.collections import PolyCollection
    from matplotlib.patches import Rectangle

    from reports.plots import objective_figure

    frame = pd.DataFrame([{"estimator": "gumbel_rao", "hparams": json.dumps({"k": k} if swept else {}),
                           "objective": "tucker-0.45", "n_samples": 1, "device": "cpu", "variance_trace": 1e-3,
                           "variance_trace_lo": 9e-4, "variance_trace_hi": 1.1e-3, "bias_norm": 0.07,
                           "bias_norm_lo": 0.07 - 0.0024, "bias_norm_hi": 0.07 + 0.0024, "bias_significant": True,
                           "mse": 6e-3, "mse_lo": 5e-3, "mse_hi": 7e-3, "time_per_estimate_s": 1e-7,
                           "time_per_estimate_min_s": 9e-8, "time_per_estimate_max_s": 2e-7}
                          for k in ((1, 10, 100) if swept else (10,))])
    fig, axes = objective_figure(frame, "tucker-0.45", "k" if swept else None)
    bias = axes[0, 1]
    if swept:
        band = [c for c in bias.collections if isinstance(c, PolyCollection)]
        heights = [np.ptp(path.vertices[:, 1]) for c in band for path in c.get_paths()]
    else:
        heights = [patch.get_width() for patch in bias.patches if isinstance(patch, Rectangle)]
    assert heights and min(heights) > 0
    low, _ = bias.get_ylim() if swept else bias.get_xlim()
    assert low < 0.0024  # the band's top is on the axis
    plt.close(fig)


def test_a_bias_that_is_not_significant_names_the_level_it_is_judged_at():
    """Found by a new user: 'bias 0.486 [0.22, 0.751] n.s.' read as a contradiction. The 95% interval and the
    0.999 family-wise test differ in level, and the mark now says which."""
    from reports.tables import cell_html

    row = {"variance_trace": 1.0, "variance_trace_lo": 0.95, "variance_trace_hi": 1.05, "bias_norm": 0.486,
           "bias_norm_lo": 0.22, "bias_norm_hi": 0.751, "bias_significant": False, "rel_bias": 0.1, "cosine": 0.99,
           "mse": 1.2, "nonfinite": 0}
    text = cell_html(row, False, False)
    assert "n.s. at 99.9%" in text and "family-wise level 0.999" in text
    assert "n.s." not in cell_html({**row, "bias_significant": True}, False, False)


def test_throughput_and_temperature_axes_across_one_power_of_ten_get_several_labels(tmp_path):
    """Found by a new user: each panel of throughput.png had a single label (10^7), since the figure turned off
    the minor ticks of both axes to keep the measured S alone on x, and reports.ticks then left y alone: an axis
    from 1.2e6 to 9.7e6 had no label at all."""
    import matplotlib.pyplot as plt
    import pandas as pd

    from reports.temperature import temperature_figure
    from reports.throughput import throughput_figure
    from reports.ticks import tidy_ticks

    frame = pd.DataFrame([{"estimator": "reinforce", "setting": "", "objective": "tucker-0.45", "device": "cpu",
                           "n_samples": s, "f_evals": s, "estimates_per_s": 8e6 / s ** 0.6,
                           "estimates_per_s_lo": 7.2e6 / s ** 0.6, "estimates_per_s_hi": 8.8e6 / s ** 0.6,
                           "peak_memory_bytes": 0} for s in (1, 4, 16)])
    fig, axes = throughput_figure(frame)
    tidy_ticks(fig)
    fig.canvas.draw()
    panel = axes.ravel()[0]
    assert [t.get_text() for t in panel.get_xticklabels(which="both") if t.get_text()] == ["1", "4", "16"]
    assert len(shown_labels(panel.yaxis, panel.get_ylim())) >= 2, shown_labels(panel.yaxis, panel.get_ylim())
    plt.close(fig)

    runs = tmp_path / "run"
    assert variance.main(["--estimators", "gumbel_softmax", "--objectives", "quadratic-4", "--tau-grid", "0.5", "2",
                          "3", "--estimates", "300", "--no-report", "--out", str(runs)]) == 0
    from reports.load import load_run
    from reports.palette import Palette
    from reports.seeds import combine_seeds
    from reports.swept import annotate
    from reports.temperature import best_temperatures

    rows = annotate(combine_seeds(load_run(runs)[0])).sort_values("x")
    rows["mse"] = [5.5, 2.5, 4.0]  # between 2.25 and 6.6 with their intervals: no power of ten inside
    rows["mse_lo"], rows["mse_hi"] = rows["mse"] * 0.9, rows["mse"] * 1.1
    fig, axes = temperature_figure(rows, best_temperatures(rows), Palette(rows["estimator"]))
    tidy_ticks(fig)
    fig.canvas.draw()
    panel = axes.ravel()[0]
    assert len(shown_labels(panel.yaxis, panel.get_ylim())) >= 2, (shown_labels(panel.yaxis, panel.get_ylim()),
                                                                   panel.get_ylim())
    plt.close(fig)


def shown_labels(axis, limits) -> list[str]:
    """The tick labels drawn inside the axis's limits (matplotlib also lists ticks beyond them)."""
    low, high = sorted(limits)
    index = 0 if axis.axis_name == "x" else 1
    return [t.get_text() for t in axis.get_ticklabels(which="both")
            if t.get_text() and low <= t.get_position()[index] <= high]


def test_the_star_marks_the_lowest_mse_not_the_lowest_variance():
    """A biased estimator with the lowest variance but not the lowest MSE does not get the star (the star on
    the lowest variance survived a mutation trial: on the default sweep both fall on the same cell)."""
    import pandas as pd

    from reports.tables import objective_table

    base = {"objective": "tucker-0.45", "hparams": "{}", "n_samples": 1, "device": "cpu", "nonfinite": 0,
            "bias_norm_lo": 0.0, "bias_significant": True, "rel_bias": 0.1, "rel_bias_lo": 0.05, "cosine": 0.99,
            "unbiased": True}
    rows = [dict(base, estimator="reinforce", variance_trace=2.0, variance_trace_lo=1.9, variance_trace_hi=2.1,
                 bias_norm=0.0, bias_norm_hi=0.1, mse=2.0, mse_lo=1.9, mse_hi=2.1, cell_id="a"),
            dict(base, estimator="gumbel_softmax", unbiased=False, variance_trace=1.0, variance_trace_lo=0.95,
                 variance_trace_hi=1.05, bias_norm=2.0, bias_norm_hi=2.1, mse=5.0, mse_lo=4.8, mse_hi=5.2,
                 cell_id="b")]
    page = objective_table(pd.DataFrame(rows))
    starred = [line for line in page.split("<tr>") if "&#9733;" in line]
    assert len(starred) == 1 and "reinforce" in starred[0] and "gumbel_softmax" not in starred[0]


def test_a_section_says_when_its_reference_gradient_was_estimated(tmp_path):
    """Found by a new user: a problem without a closed form (its reference the mean of many estimates) was headed
    'exact gradient norm' on the page, which never named the estimate or its standard error."""
    out = tmp_path / "run"
    assert variance.main(["--objectives", "seq-count@length=8", "tucker-0.45", "--estimators", "reinforce",
                          "--estimates", "200", "--out", str(out)]) == 0
    page = (out / "index.html").read_text()
    estimated = re.search(r"reference gradient norm [\d.]+, estimated \(reinforce_loo, mean of 10000 estimates[^)]*;"
                          r" standard error [\d.e-]+, carried into every bias interval\)", page)
    assert estimated, page[:2000]
    assert page.count("exact gradient norm") == 1  # tucker-0.45's, a closed form


def test_the_equal_cost_table_lists_degenerate_cells_last_and_marked():
    """Found by a new user: gumbel_softmax at relative bias 0.72 headed 'Ranked at equal cost', unmarked, ahead
    of every unbiased estimator (its variance x time the lowest)."""
    import pandas as pd

    from reports.cost import cost_table

    base = {"objective": "seq-sparse", "hparams": "{}", "n_samples": 1, "device": "cpu", "f_evals": 1,
            "time_per_estimate_s": 1e-6, "time_per_estimate_min_s": 9e-7, "time_per_estimate_max_s": 2e-6,
            "estimates_per_s": 1e6, "bias_norm_lo": 0.0, "cosine": 0.99}
    rows = [dict(base, estimator="gumbel_softmax", variance_trace=1.0, variance_trace_lo=0.9, variance_trace_hi=1.1,
                 rel_bias=0.72, rel_bias_lo=0.7, bias_significant=True),
            dict(base, estimator="reinforce_loo", variance_trace=5.0, variance_trace_lo=4.5, variance_trace_hi=5.5,
                 rel_bias=0.01, rel_bias_lo=0.0, bias_significant=False)]
    for row in rows:
        row["variance_x_time"] = row["variance_trace"] * row["time_per_estimate_s"]
        row["variance_x_fevals"] = row["variance_trace"]
    page = cost_table(pd.DataFrame(rows))
    body = page.split("<tbody>")[1].split("<tr>")[1:]
    assert "reinforce_loo" in body[0] and "gumbel_softmax" in body[1] and "degenerate" in body[1], page
    assert "degenerate" not in body[0] and ">0.72 <span class=degenerate" in body[1]


def test_a_row_with_many_series_is_tall_enough_for_its_legend():
    """Found by a new user on the README's sequence command: the score-function row's 20 series (4 estimators x
    5 S) had a legend running into the next row's, and cramped row labels."""
    import matplotlib.pyplot as plt
    import pandas as pd

    from reports.plots import objective_figure

    names = ["reinforce", "reinforce_loo", "reinforce_grpo", "reinforce_drgrpo", "gumbel_softmax"]
    frame = pd.DataFrame([{"estimator": name, "hparams": "{}", "objective": "seq-sparse", "n_samples": s,
                           "device": "cpu", "variance_trace": 1e-3 * s, "variance_trace_lo": 9e-4 * s,
                           "variance_trace_hi": 1.1e-3 * s, "bias_norm": 1e-3, "bias_norm_lo": 0.0,
                           "bias_norm_hi": 2e-3, "bias_significant": False, "mse": 2e-3, "mse_lo": 1e-3,
                           "mse_hi": 3e-3, "time_per_estimate_s": 1e-7 * s, "time_per_estimate_min_s": 9e-8 * s,
                           "time_per_estimate_max_s": 2e-7 * s} for name in names for s in (2, 4, 8, 16, 64)])
    fig, axes = objective_figure(frame, "seq-sparse", None)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    first_legend = axes[0, -1].get_legend()
    assert first_legend is not None and len(first_legend.get_texts()) == 20
    below = max(ax.get_window_extent(renderer).y1 for ax in axes[1])
    assert first_legend.get_window_extent(renderer).y0 > below  # above the next row's panels
    labels = [label for label in axes[0, 0].get_yticklabels() if label.get_text()]
    inside_and_apart(fig, labels)
    plt.close(fig)


def test_an_interrupted_sweep_says_so_on_its_page(tmp_path, monkeypatch, capsys):
    """Found by a tester: a sweep stopped after 23 of its 126 cells rendered a page that ranked them as if they were
    the whole sweep, with no word of the interruption. Resumed to its end, the note goes."""
    import benchmarks.harness as harness
    from reports.html import render_report

    out = tmp_path / "run"
    args = ["--objectives", "tucker-0.45", "quadratic-4", "--estimators", "reinforce", "disarm", "gumbel_softmax",
            "--estimates", "300", "--no-report", "--out", str(out)]
    measured, original = [], harness.run_cell

    def stopped_after_two(cell, *rest, **options):
        if len(measured) == 2:
            raise KeyboardInterrupt
        measured.append(cell)
        return original(cell, *rest, **options)

    monkeypatch.setattr(harness, "run_cell", stopped_after_two)
    assert variance.main(args) == 130
    page = render_report(out).read_text()
    note = re.search(r"<p class=flag id=interrupted>(.*?)</p>", page).group(1)
    assert note.startswith("Interrupted at ") and " before the 5 cells of its last command were done: the folder " \
        "holds 2 finished cells" in note
    assert note.endswith(f"Continue it with python -m benchmarks.variance {' '.join(args[:-2])} --out {out} --resume")
    monkeypatch.setattr(harness, "run_cell", original)
    assert variance.main(args + ["--resume"]) == 0
    assert "id=interrupted" not in render_report(out).read_text()
    capsys.readouterr()


# --- damaged files and wrong paths: one message naming the file, exit 2 -------------------------------------

@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("small") / "run"
    assert variance.main(["--estimators", "reinforce", "--objectives", "tucker-0.45", "--estimates", "300", "--seed",
                          "0", "1", "--no-report", "--out", str(out)]) == 0
    return out


def reports_main(argv, capsys):
    from reports.__main__ import main

    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def damaged(source: Path, target: Path, name: str, edit) -> Path:
    """A copy of the run folder `source` whose file `name` is edit(its text)."""
    import shutil

    shutil.copytree(source, target)
    (target / name).write_text(edit((target / name).read_text()))
    return target


DAMAGES = {
    "empty": ("results.csv", lambda text: "", "(it is empty)"),
    "header only": ("results.csv", lambda text: text.splitlines(keepends=True)[0], "(it holds a header and no rows)"),
    "cut mid-row": ("results.csv", lambda text: text[:-40], "(row 3 has"),
    "cut mid-field": ("results.csv", lambda text: text[:-2], "(its last row is cut off: no newline at its end)"),
    "run.json a list": ("run.json", lambda text: "[]", "(it holds a JSON list, not an object of run settings)"),
    # the rows are what is wrong: a variance sweep's results.csv beside a VAE run's run.json
    "rows of another kind": ("run.json", lambda text: json.dumps({**json.loads(text), "kind": "vae"}),
                             "(run.json says it holds a VAE run, but its rows have no latent column)"),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_run_folder_is_one_message_naming_the_file(small_run, tmp_path, capsys, damage):
    """Found by a tester: "No columns to parse from file", "cannot convert float NaN to integer" (naming no file)
    or an AttributeError traceback; a row cut mid-line was read as a row of NaN figures, and counted as a seed."""
    name, edit, what = DAMAGES[damage]
    run = damaged(small_run, tmp_path / "run", name, edit)
    code, err = reports_main([run], capsys)
    named = "results.csv" if damage == "rows of another kind" else name
    assert code == 2 and f"error: {run / named} is damaged or not a gradbench file {what}" in err, err
    if damage.startswith("cut") or damage in ("empty", "header only"):  # results.json still holds the rows:
        assert f"{run / 'results.json'} is intact and holds the run's 2 rows" in err and "flush()" in err  # how to use it


@pytest.mark.parametrize("text,what", [
    ("", "(it is empty)"), ('{"benchmarks": [{"na', "(not valid JSON: "), ("[]", "(it holds a JSON list"),
    ('{"benchmarks": [{"name": "x"}]}', "(benchmark x has no stats with median, min, max"),
])
def test_a_damaged_benchmark_file_is_one_message_naming_it(tmp_path, capsys, text, what):
    path = tmp_path / "bench.json"
    path.write_text(text)
    code, err = reports_main([path], capsys)
    assert code == 2 and f"error: {path} is damaged or not a gradbench file {what}" in err, err


def test_wrong_paths_say_what_is_wrong_with_them(small_run, tmp_path, capsys):
    """Found by a tester: a missing folder, or a file in a run folder, was said to hold no results.csv, and so was
    the folder of a driver killed before it gathered its finished cells."""
    code, err = reports_main([tmp_path / "nonexistent"], capsys)
    assert code == 2 and f"{tmp_path / 'nonexistent'} does not exist" in err
    for name in ("results.csv", "results.json", "run.json"):
        code, err = reports_main([small_run / name], capsys)
        assert code == 2 and f"give the run folder, {small_run}, not a file in it" in err, err
    killed = tmp_path / "killed"
    (killed / "parts").mkdir(parents=True)
    (killed / "run.json").write_text((small_run / "run.json").read_text())
    for i, row in enumerate(json.loads((small_run / "results.json").read_text())):
        (killed / "parts" / f"{i}.json").write_text(json.dumps([row]))
    code, err = reports_main([killed], capsys)
    assert code == 2 and f"{killed} holds 2 finished cells not yet gathered (the driver stopped)" in err
    assert err.rstrip().endswith(f"--out {killed} --resume")


def test_a_run_whose_every_cell_failed_says_so_and_names_the_error(tmp_path, capsys, monkeypatch):
    """Found by a tester: "No columns to parse from file" for a run whose only cells raised."""
    out = run_whose_every_cell_failed(tmp_path / "run", monkeypatch)
    capsys.readouterr()
    code, err = reports_main([out], capsys)
    assert code == 2 and f"{out} holds no finished cells; its run recorded 1 error: " in err
    assert "RuntimeError: boom in a user's estimator (traceback in" in err and "--resume" in err


def test_ctrl_c_while_a_report_is_drawn_is_one_line_and_leaves_every_file_whole(small_run, tmp_path, capsys,
                                                                                monkeypatch):
    """Found by a tester: a KeyboardInterrupt traceback; and savefig wrote into the PNG itself, so Ctrl-C left half
    an image behind (the page was written in place too)."""
    import shutil

    from matplotlib.figure import Figure

    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    assert reports_main([run], capsys)[0] == 0
    before = {path.name: path.read_bytes() for path in run.iterdir() if path.is_file()}

    def interrupted(self, target, *args, **kwargs):  # Ctrl-C once savefig has written part of the image
        if isinstance(target, (str, Path)):
            Path(target).write_bytes(b"\x89PNG half")
        else:
            target.write(b"\x89PNG half")
        raise KeyboardInterrupt

    monkeypatch.setattr(Figure, "savefig", interrupted)
    code, err = reports_main([run], capsys)
    assert code == 130 and err.strip() == "interrupted" and "Traceback" not in err
    assert {path.name: path.read_bytes() for path in run.iterdir() if path.is_file()} == before


def read_only_file_system(monkeypatch) -> None:
    """Every file or folder created from now on fails as on a read-only mount (all writes go through mkstemp, and
    the probe of reports.files.write_refusal through mkdtemp)."""
    import errno
    import os
    import tempfile

    def refused(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(tempfile, "mkstemp", refused)
    monkeypatch.setattr(tempfile, "mkdtemp", refused)


def test_a_read_only_run_folder_is_one_message_before_anything_is_drawn(small_run, capsys, monkeypatch):
    """Found by a tester (a read-only bind mount): an OSError traceback once the figures were drawn."""
    read_only_file_system(monkeypatch)
    code, err = reports_main([small_run], capsys)
    assert code == 2 and err.startswith(f"error: cannot write the report into {small_run} (read-only file system); "
                                        "copy the run folder"), err


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes into a folder without w")
def test_a_run_folder_this_user_cannot_write_is_one_message(small_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    run.chmod(0o555)
    try:
        code, err = reports_main([run], capsys)
    finally:
        run.chmod(0o755)
    assert code == 2 and f"cannot write the report into {run} (permission denied)" in err, err


def test_what_a_review_found_reading_run_folders(small_run, tmp_path, capsys):
    """A review of the readers: a results.csv with a trailing blank line (pandas reads it) was refused as damaged
    ("row 4 has 0 fields"); a speed goal's record without stats gave a KeyError traceback; a run.json command
    that does not parse (an unbalanced quote) gave a traceback where a message suggests the resume command."""
    run = damaged(small_run, tmp_path / "blank", "results.csv", lambda text: text + "\n")
    assert reports_main([run], capsys)[0] == 0
    goals = tmp_path / "goals.json"
    goals.write_text(json.dumps({"benchmarks": [{"name": "g", "extra_info": {"speed_goal": {
        "goal": "g", "ratio_of": "a / b", "ratio": 2.0, "ratio_low": None, "ratio_high": None, "direction": ">=",
        "threshold": 1.5, "verdict": "met", "pairs": 1, "confidence": None, "load_1min": None}}}]}))
    assert reports_main([goals], capsys)[0] == 0
    from reports.files import resume_command_line

    assert resume_command_line(tmp_path, {"commands": ["python -m benchmarks.variance --out 'x"]}) == \
        "the same command and --resume"
    assert resume_command_line(tmp_path, {"commands": ["python -m benchmarks.variance --out x"]}) == \
        f"python -m benchmarks.variance --out {tmp_path} --resume"
