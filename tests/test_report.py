"""The report renders from result files alone, with a table per objective and its plots."""
import re
import subprocess
import sys
from pathlib import Path

import benchmarks.variance as variance


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


def test_benchmark_json_renders_a_throughput_page(tmp_path):
    import json

    bench = {"machine_info": {"cpu": {"brand_raw": "test cpu"}}, "commit_info": {"id": "abc"}, "datetime": "now",
             "benchmarks": [
                 {"extra_info": {"estimator": e, "objective": "tucker-0.45", "device": "cpu", "n_samples": s,
                                 "f_evals": s, "estimates_per_call": 100},
                  "stats": {"median": 0.001 * s ** 0.5, "min": 0.0009 * s ** 0.5, "max": 0.002 * s ** 0.5}}
                 for e in ("reinforce", "gumbel_softmax") for s in (1, 100, 10000)]}
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(bench))
    done = subprocess.run([sys.executable, "-m", "reports", str(path)], capture_output=True, text=True,
                          cwd=Path(__file__).parents[1])
    assert done.returncode == 0, done.stderr
    page = (tmp_path / "bench-report" / "index.html").read_text()
    assert "Throughput" in page and "gumbel_softmax" in page and "test cpu" in page
    assert (tmp_path / "bench-report" / "throughput.png").stat().st_size > 10_000
    # estimates per second = estimates per call / median round time
    assert "1e+05" in page  # 100 / 0.001


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
