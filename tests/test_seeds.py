"""Seeds as a grid dimension: a sweep over several seeds renders, its tables and `compare` use the
spread over seeds (reports.seeds), and a stateful estimator shows why that matters."""
import pandas as pd

import benchmarks.variance as variance
from reports import compare
from reports.seeds import combine_seeds


def test_several_seeds_give_one_row_per_cell_whose_interval_holds_every_seed(tmp_path, capsys):
    out = tmp_path / "run"
    assert variance.main(["--objectives", "tucker-0.499", "--estimators", "reinforce_nvil", "reinforce",
                          "--seed", "0", "1", "2", "--estimates", "2000", "--out", str(out)]) == 0
    frame = pd.read_csv(out / "results.csv")
    assert sorted(frame["seed"].unique()) == [0, 1, 2] and len(frame) == 6
    combined = combine_seeds(frame)
    assert len(combined) == 2 and (combined["seeds"] == 3).all()
    for _, row in combined.iterrows():
        seeds = frame[frame["estimator"] == row["estimator"]]
        assert row["variance_trace_lo"] <= seeds["variance_trace"].min() <= seeds["variance_trace"].max() \
            <= row["variance_trace_hi"]
        assert row["variance_trace_seed_min"] == seeds["variance_trace"].min()
    # NVIL's learned baseline differs by seed: its seeds' own intervals do not all overlap, which one seed
    # alone would hide; the combined interval spans them.
    nvil = frame[frame["estimator"] == "reinforce_nvil"]
    assert nvil["variance_trace_lo"].max() > nvil["variance_trace_hi"].min()
    page = (out / "index.html").read_text()
    assert "mean over the seeds" in page and "seeds" in page
    # compare: a run against itself matches every cell once, not once per pair of seeds
    assert compare.main([str(out), str(out), "--all"]) == 0
    assert "2 shared cells" in capsys.readouterr().out


def test_one_seed_is_left_as_it_is():
    frame = pd.DataFrame([{"estimator": "a", "hparams": "{}", "objective": "x", "n_samples": 1, "n_estimates": 10,
                           "device": "cpu", "dtype": "float32", "seed": 0, "variance_trace": 1.0, "cell_id": "c"}])
    combined = combine_seeds(frame)
    assert combined["variance_trace"].tolist() == [1.0] and combined["seeds"].tolist() == [1]
