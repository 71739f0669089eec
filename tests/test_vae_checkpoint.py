"""A trained VAE back from its run folder (benchmarks.vae_checkpoint): the problem and estimator that
the run measured at its checkpoint's step, so measuring them again gives the row's figures."""
import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

import benchmarks.vae as vae_cli
from benchmarks import measure
from benchmarks.checkpoints import checkpoint_path
from benchmarks.vae_checkpoint import TrainedRunError, load_trained_run

TINY = ["--hidden", "32", "16", "--steps", "40", "--evals", "2", "--grad-estimates", "60", "--iw-samples", "5",
        "--no-report"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """bernoulli:20 (2^20 configurations: an estimated reference) and categorical:3x4 (enumerated), with a
    stateful estimator (a moving-average baseline) and an annealed temperature (tau moves every 10 steps)."""
    out = tmp_path_factory.mktemp("vae") / "run"
    assert vae_cli.main(["--latent", "bernoulli:20", "categorical:3x4", "--estimators", "reinforce_ema",
                         "gumbel_softmax", "--anneal", "0.01", "--anneal-every", "10", "--out", str(out),
                         *TINY]) == 0
    return out, pd.read_csv(out / "results.csv")


def test_measuring_the_runs_own_estimator_at_the_checkpoint_gives_the_rows_figures(trained):
    out, frame = trained
    assert len(frame.run_id.unique()) == 4
    for run_id in frame.run_id.unique():
        run = load_trained_run(out, run_id)
        row = run.row
        assert run.step == frame[frame.run_id == run_id].step.max() == 40
        again = measure(run.estimator, run.problem, spec=run.spec, n_estimates=run.n_estimates,
                        n_samples=run.n_samples, seed=run.seed, warmup=False, timing=False, threads=run.threads)
        for name in ("variance_trace", "bias_norm", "mse", "reference_se"):
            assert again[name] == pytest.approx(row[f"grad_{name}"], rel=1e-12, abs=1e-300), (run_id, name)
        assert again["reference"] == row["grad_reference"]
    annealed = load_trained_run(out, frame[frame.estimator == "gumbel_softmax"].run_id.iloc[0])
    assert annealed.row["tau"] < annealed.row["tau0"] and annealed.hparams["tau"] == annealed.row["tau"]


def test_the_stateful_estimator_comes_with_its_learned_state_and_each_copy_starts_from_it(trained):
    out, frame = trained
    run = load_trained_run(out, frame[(frame.estimator == "reinforce_ema") & (frame.latent == "bernoulli:20")]
                           .run_id.iloc[0])
    first, second = run.estimator, run.estimator
    assert first is not second
    # Trained for 40 steps (a fresh one has made 0 calls), and measuring one copy leaves the next one as saved.
    assert first.state_dict()["calls"] == second.state_dict()["calls"] == 40
    measure(first, run.problem, spec=run.spec, n_estimates=50, warmup=False, timing=False)
    assert first.state_dict()["calls"] > 40 and run.estimator.state_dict()["calls"] == 40
    # Another estimator on the same trained model: the problem is an ordinary gradient problem.
    other = measure("reinforce_loo", run.problem, n_estimates=100, n_samples=2, timing=False)
    assert other["n_finite"] == 100 and other["variance_trace"] > 0


def test_bad_folder_run_id_and_missing_checkpoint_are_messages(trained, tmp_path):
    out, frame = trained
    run_id = frame.run_id.iloc[0]
    with pytest.raises(TrainedRunError, match="Did you mean") as info:
        load_trained_run(out, run_id.replace("seed=0", "seed=1"))
    assert run_id in str(info.value) and "run_id column of results.csv" in str(info.value)
    with pytest.raises(TrainedRunError, match="holds no python -m benchmarks.vae run"):
        load_trained_run(tmp_path, run_id)
    older = tmp_path / "older"
    shutil.copytree(out, older)
    rows = json.loads((older / "results.json").read_text())
    (older / "results.json").write_text(json.dumps([{k: v for k, v in r.items() if k != "hparams"} for r in rows]))
    with pytest.raises(TrainedRunError, match="no hparams column"):
        load_trained_run(older, run_id)
    for bad in (0, 1, 2.5, -5):
        with pytest.raises(TrainedRunError, match=r"reference_estimates must be a whole number >= 2"):
            load_trained_run(out, run_id, reference_estimates=bad)
    with pytest.raises(TrainedRunError, match="device 'gpu'"):
        load_trained_run(out, run_id, device="gpu")
    if not torch.cuda.is_available():  # not "the checkpoint is truncated, delete it": it holds the only model
        with pytest.raises(TrainedRunError, match="no CUDA GPU; load it with device='cpu'"):
            load_trained_run(out, run_id, device="cuda")
    checkpoint = checkpoint_path(out, run_id)
    moved = checkpoint.with_suffix(".moved")
    checkpoint.rename(moved)
    try:
        with pytest.raises(TrainedRunError, match="has rows but no checkpoint"):
            load_trained_run(out, run_id)
    finally:
        moved.rename(checkpoint)


def test_the_readme_example_runs_as_written(trained):
    """The README's block, on this folder and one of its run ids (and N = 100 to keep it short)."""
    out, frame = trained
    text = (Path(__file__).parents[1] / "README.md").read_text()
    block = re.search(r"<!-- trained-run-example -->\s*```python\n(.*?)```", text, re.S)
    assert block, "README.md lost its trained-run-example block"
    code = block.group(1)
    folder, run_id = re.search(r'load_trained_run\("([^"]+)", "([^"]+)"\)', code).groups()
    mine = frame[(frame.estimator == "gumbel_softmax") & (frame.latent == "categorical:3x4")].run_id.iloc[0]
    code = code.replace(folder, str(out)).replace(run_id, mine).replace("n_estimates=1000", "n_estimates=100")
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    run = namespace["run"]
    assert run.row["run_id"] == mine
    assert namespace["again"]["variance_trace"] == pytest.approx(run.row["grad_variance_trace"], rel=1e-12)


def test_a_run_on_two_threads_gives_its_figures_again_on_its_threads(tmp_path):
    """The figures depend on torch's threads in their last digits (torch splits large ops between threads):
    a run made with --threads 2 gives its row back with threads=run.threads, and other figures on one thread."""
    out = tmp_path / "run"
    assert vae_cli.main(["--latent", "bernoulli:10", "--estimators", "gumbel_softmax", "--hidden", "64", "--steps",
                         "30", "--evals", "2", "--grad-estimates", "100", "--iw-samples", "5", "--no-report",
                         "--threads", "2", "--out", str(out)]) == 0
    [run_id] = pd.read_csv(out / "results.csv").run_id.unique()
    run = load_trained_run(out, run_id)
    assert run.threads == 2

    def variance_on(threads):
        return measure(run.estimator, run.problem, spec=run.spec, n_estimates=run.n_estimates,
                       n_samples=run.n_samples, seed=run.seed, warmup=False, timing=False,
                       threads=threads)["variance_trace"]

    assert variance_on(run.threads) == run.row["grad_variance_trace"]
    if variance_on(1) == run.row["grad_variance_trace"]:
        pytest.skip("torch rounded this measurement the same on 1 and 2 threads here: the check above cannot fail")


SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.mark.skipif(not (SHARED / "mnist").exists(), reason=f"no MNIST copies in {SHARED}")
def test_an_mnist_run_loads_from_the_folder_it_read_and_a_missing_one_names_data_dir(tmp_path, monkeypatch):
    """Found by a new user: a run trained with --data-dir could not be loaded without data_dir= again, and the
    error told a Python caller to 'pass --data-dir'. The run's folder (absolute, in run.json) is the default."""
    import os

    monkeypatch.delenv("GRADBENCH_DATA", raising=False)
    out = tmp_path / "run"
    monkeypatch.chdir(SHARED.parent)  # a relative --data-dir, as the README writes it
    assert vae_cli.main(["--dataset", "mnist", "--data-dir", "data", "--latent", "bernoulli:4", "--estimators",
                         "reinforce", "--hidden", "8", "--steps", "2", "--evals", "1", "--grad-estimates", "4",
                         "--iw-samples", "2", "--iw-points", "4", "--no-report", "--out", str(out)]) == 0
    monkeypatch.chdir(tmp_path)
    run_id = pd.read_csv(out / "results.csv").run_id.iloc[0]
    meta = json.loads((out / "run.json").read_text())
    assert os.path.isabs(meta["data_source"])
    loaded = load_trained_run(out, run_id)
    assert loaded.step == 2
    meta["data_source"] = str(tmp_path / "gone")
    (out / "run.json").write_text(json.dumps(meta))
    with pytest.raises(TrainedRunError, match=r"here: load_trained_run\(\.\.\., data_dir=DIR\)"):
        load_trained_run(out, run_id)
