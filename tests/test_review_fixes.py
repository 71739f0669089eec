"""Regression tests for defects a review of the run loop found (each failed before its fix)."""
import json

import pandas as pd

import benchmarks.variance as variance
from benchmarks.cli_common import add_hparam_options
from reports.seeds import combine_seeds

SMALL = ["--estimators", "reinforce", "disarm", "--objectives", "tucker-0.45", "--estimates", "200", "--no-report"]


def test_hparam_and_import_may_be_given_more_than_once():
    import argparse

    parser = argparse.ArgumentParser()
    add_hparam_options(parser)
    args = parser.parse_args(["--hparam", "gumbel_rao:k=1,10", "--hparam", "rebar:eta=0.5", "--import", "a",
                              "--import", "b"])
    assert [sweep.scope for sweep in args.hparam] == ["gumbel_rao", "rebar"] and args.imports == ["a", "b"]


def test_resume_does_not_redo_a_cell_whose_row_a_stopped_run_left_in_a_part_file(tmp_path, capsys):
    out = tmp_path / "run"
    assert variance.main([*SMALL, "--out", str(out)]) == 0
    rows = json.loads((out / "results.json").read_text())
    kept, left = rows[:1], rows[1:]
    (out / "results.json").write_text(json.dumps(kept))
    (out / "parts").mkdir()
    (out / "parts" / "left.json").write_text(json.dumps(left))  # as a driver killed before its flush leaves it
    capsys.readouterr()
    assert variance.main([*SMALL, "--out", str(out), "--resume"]) == 0
    said = capsys.readouterr().out
    assert "2 of 2 units done" in said and "1 rows recovered" in said
    final = pd.read_csv(out / "results.csv")
    assert sorted(final["cell_id"]) == sorted(row["cell_id"] for row in rows)
    assert final.set_index("cell_id").loc[left[0]["cell_id"], "variance_trace"] == left[0]["variance_trace"]


def test_a_bias_one_seed_flags_stays_flagged_when_seeds_are_combined():
    base = {"estimator": "a", "hparams": "{}", "objective": "x", "n_samples": 1, "n_estimates": 10, "device": "cpu",
            "dtype": "float32", "variance_trace": 1.0, "nonfinite": 1, "n_finite": 9, "bias_z_max": 1.0}
    frame = pd.DataFrame([{**base, "seed": 0, "bias_significant": False, "cell_id": "c|seed=0"},
                          {**base, "seed": 1, "bias_significant": True, "bias_z_max": 7.0, "cell_id": "c|seed=1"}])
    row = combine_seeds(frame).iloc[0]
    assert bool(row["bias_significant"]) and row["bias_z_max"] == 7.0 and row["nonfinite"] == 2 and row["n_finite"] == 18
