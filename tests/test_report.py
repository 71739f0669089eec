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
    assert page.count("<table>") == 2 and "&tau; = 0.3" in page and "no temperature" in page
    assert "&#9733;" in page and "<b>" in page  # best marked
    for png in re.findall(r'src="([^"]+\.png)"', page):
        assert (out / png).stat().st_size > 10_000
    assert "gumbel_softmax" in page and "[" in page  # intervals shown


def test_reports_cli_on_a_folder_without_results(tmp_path):
    done = subprocess.run([sys.executable, "-m", "reports", str(tmp_path)], capture_output=True, text=True,
                          cwd=Path(__file__).parents[1])
    assert done.returncode == 2 and "holds no results.csv" in done.stderr and "Traceback" not in done.stderr
