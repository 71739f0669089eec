"""`python -m reports compare`: shared cells, ratios, marks, and --fail-on as a CI gate."""
import pandas as pd
import pytest

import benchmarks.variance as variance
from reports.compare import main as compare_main

ARGS = ["--objectives", "tucker-0.45", "--estimators", "reinforce", "gumbel_softmax", "--tau", "1", "--samples", "1", "4",
        "--estimates", "2000", "--no-report"]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    assert variance.main(ARGS + ["--out", str(root / "a")]) == 0
    assert variance.main(ARGS + ["--out", str(root / "b"), "--seed", "1"]) == 0
    return root / "a", root / "b"


def scale_metric(run_dir, metric, factor, estimator="reinforce"):
    """Make a regression by hand: scale one metric (and its interval) of one estimator's rows."""
    frame = pd.read_csv(run_dir / "results.csv")
    chosen = frame.estimator == estimator
    columns = [c for c in frame.columns if c.startswith(metric)]
    frame.loc[chosen, columns] *= factor
    frame.to_csv(run_dir / "results.csv", index=False)


def test_same_settings_other_seed_shows_no_variance_regression(two_runs, capsys):
    a, b = two_runs
    assert compare_main([str(a), str(b), "--metrics", "variance_trace", "--all", "--fail-on", "variance_trace:20"]) == 0
    out = capsys.readouterr().out
    assert "4 shared cells" in out and "variance_trace:" in out and "x" in out


def test_a_real_regression_is_marked_and_fails_the_gate(two_runs, tmp_path, capsys):
    a, b = two_runs
    worse = tmp_path / "worse"
    worse.mkdir()
    (worse / "results.csv").write_text((b / "results.csv").read_text())
    scale_metric(worse, "variance_trace", 3.0)
    code = compare_main([str(a), str(worse), "--metrics", "variance_trace", "--fail-on", "variance_trace:50"])
    captured = capsys.readouterr()
    assert code == 1 and "WORSE" in captured.out and "FAIL: variance_trace" in captured.err
    # a 3x change does not fail a gate set at 250%
    assert compare_main([str(a), str(worse), "--metrics", "variance_trace", "--fail-on", "variance_trace:250"]) == 0


def test_bad_arguments(two_runs, tmp_path, capsys):
    a, _ = two_runs
    with pytest.raises(SystemExit):
        compare_main([str(a), str(a), "--fail-on", "nonsense"])
    assert "METRIC:PCT" in capsys.readouterr().err
    assert compare_main([str(a), str(tmp_path)]) == 2
    assert "holds no results.csv" in capsys.readouterr().err
