"""`python -m reports compare`: shared cells, ratios, marks, and --fail-on as a CI gate."""
import json

import pandas as pd
import pytest

import benchmarks.variance as variance
from reports.compare import main as compare_main
from tests.helpers import run_whose_every_cell_failed

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


def test_runs_that_differ_in_their_settings_say_so(two_runs, tmp_path, capsys):
    """Found by a new user: two sweeps at N = 10,000 and 5,000 compared without a word about it."""
    import json
    import shutil

    a, b = two_runs
    other = tmp_path / "other"
    shutil.copytree(b, other)
    meta = json.loads((other / "run.json").read_text())
    meta.update(n_estimates=500, executor="local-pool", worker_threads=1)
    (other / "run.json").write_text(json.dumps(meta))
    assert compare_main([str(a), str(other), "--metrics", "variance_trace"]) == 0
    out = capsys.readouterr().out
    assert "note: the runs differ in estimates per cell (N): A 2000, B 500" in out
    assert "note: the runs differ in executor: A in-process, B local-pool" in out
    assert compare_main([str(a), str(b), "--metrics", "variance_trace"]) == 0
    assert "differ in" not in capsys.readouterr().out
    from reports.compare import setting_differences

    assert setting_differences({"steps": 100, "lr": 0.01, "optimizer": "adam"},
                               {"steps": 1000, "lr": 0.1, "optimizer": "adam"}) == [
        "the runs differ in --steps: A 100, B 1000", "the runs differ in --lr: A 0.01, B 0.1"]
    assert setting_differences({"settings": {"dataset": "digits", "hidden": [8]}},
                               {"settings": {"dataset": "mnist", "hidden": [16]}}) == [
        "the runs differ in --hidden: A [8], B [16]"]  # the dataset has a note of its own


def test_flagged_timing_is_noted_where_times_are_compared(two_runs, tmp_path, capsys):
    """Timing taken while the threads waited for a CPU is named before a time comparison, not before others."""
    import shutil

    a, b = tmp_path / "quiet", tmp_path / "waited"
    for run, share in ((a, 0.0), (b, 0.85)):  # whatever the machine's load was when the fixture ran
        shutil.copytree(two_runs[0], run)
        frame = pd.read_csv(run / "results.csv")
        frame[["timed_wait_share", "load_avg_start", "load_avg_end", "concurrency"]] = [share, 0.0, 0.0, 1]
        frame["timed_cpu_s"] = frame["timed_wall_s"]
        frame.to_csv(run / "results.csv", index=False)
    waited = b
    compare_main([str(a), str(waited), "--metrics", "time_per_estimate_s"])
    out = capsys.readouterr().out
    assert f"the timing of B is flagged in {len(frame)} of {len(frame)} rows (e.g. waited for a CPU (85% of its threads' time))" in out
    assert "the timing of A" not in out
    compare_main([str(a), str(waited), "--metrics", "variance_trace"])
    assert "timing of B" not in capsys.readouterr().out


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


def test_a_metric_where_lower_is_worse_fails_the_gate_when_it_falls(two_runs, tmp_path, capsys):
    """The catalogue's direction: a falling SNR is worse, a rising one better (with every metric read as
    'higher is worse', a mutation trial, --fail-on snr failed on an improvement and passed a drop)."""
    a, b = two_runs
    for factor, code in ((0.3, 1), (3.0, 0)):
        changed = tmp_path / f"snr-{factor}"
        changed.mkdir()
        (changed / "results.csv").write_text((b / "results.csv").read_text())
        scale_metric(changed, "snr", factor)
        assert compare_main([str(a), str(changed), "--metrics", "snr", "--fail-on", "snr:50"]) == code, factor
        capsys.readouterr()


def test_an_estimator_that_broke_fails_every_gate(two_runs, tmp_path, capsys):
    """Found by a tester: an estimator whose estimates became all non-finite in B (its figures missing) and one
    that left half of them out (its figures from the rest) passed `--fail-on variance_trace:10` with exit 0 and
    "0 marked changes". A cell with non-finite estimates in B and none in A is WORSE, and fails any gate."""
    a, b = two_runs
    broken = tmp_path / "broken"
    broken.mkdir()
    frame = pd.read_csv(b / "results.csv")
    all_out = (frame.estimator == "reinforce") & (frame.n_samples == 1)
    frame.loc[all_out, ["variance_trace", "variance_trace_lo", "variance_trace_hi", "mse", "bias_norm"]] = float("nan")
    half_out = (frame.estimator == "gumbel_softmax") & (frame.n_samples == 4)

    def left_out(frame, rows, count):
        frame.loc[rows, "nonfinite"], frame.loc[rows, "n_finite"] = count, frame.loc[rows, "n_estimates"] - count

    left_out(frame, all_out, 2000)
    left_out(frame, half_out, 1000)
    frame.to_csv(broken / "results.csv", index=False)
    assert compare_main([str(a), str(broken), "--fail-on", "variance_trace:10"]) == 1
    captured = capsys.readouterr()
    assert "reinforce tucker-0.45 S=1 cpu: non-finite estimates 0 -> 2000 of 2000  WORSE" in captured.out
    assert 'gumbel_softmax {"tau": 1.0} tucker-0.45 S=4 cpu' in captured.out and "0 -> 1000 of 2000  WORSE" in captured.out
    assert "FAIL: 2 cell(s) gave more non-finite estimates in B than in A" in captured.err
    assert "4 shared cells; 0 marked changes (ratio beyond 1.1x and intervals apart); 2 cell(s) with more " \
           "non-finite estimates in B" in captured.out
    assert compare_main([str(a), str(broken)]) == 0  # without a gate: shown, not failed
    assert compare_main([str(broken), str(a), "--fail-on", "variance_trace:10"]) == 0  # fixed in B: not worse
    # Already partly non-finite in A: a cell that got much worse still fails (45 -> 1000 passed, found by a
    # new user); a change within the noise does not, nor the same share of a larger N (5% of 2,000 against 5% of
    # 10,000 was marked WORSE by counts alone, found by a review).
    for (count_a, n_a), (count_b, n_b), code in (((45, 2000), (1000, 2000), 1), ((1, 2000), (2, 2000), 0),
                                                 ((100, 2000), (500, 10000), 0)):
        frame_a, frame_b = pd.read_csv(broken / "results.csv"), pd.read_csv(broken / "results.csv")
        for frame, count, n in ((frame_a, count_a, n_a), (frame_b, count_b, n_b)):
            frame.loc[half_out, "n_estimates"] = n
            left_out(frame, half_out, count)
            left_out(frame, all_out, 0)
        for folder, frame in (("pa", frame_a), ("pb", frame_b)):
            (tmp_path / folder).mkdir(exist_ok=True)
            frame.to_csv(tmp_path / folder / "results.csv", index=False)
        assert compare_main([str(tmp_path / "pa"), str(tmp_path / "pb"), "--fail-on", "variance_trace:10"]) == code
    capsys.readouterr()


def test_runs_that_share_no_cell_say_which_setting_differs(two_runs, tmp_path, capsys):
    """Found by a tester: a float32 run against a float64 one said only "share no cell"."""
    a, _ = two_runs
    doubled = tmp_path / "float64"
    assert variance.main([*ARGS, "--dtype", "float64", "--out", str(doubled)]) == 0
    capsys.readouterr()
    assert compare_main([str(a), str(doubled)]) == 2
    assert "share no cell" in (err := capsys.readouterr().err) and "the runs differ in dtype: A float32, B float64" in err


def test_cells_in_one_run_only_are_counted(two_runs, tmp_path, capsys):
    """Found by a new user: a run extended on --resume with another --tau compared as '4 shared cells', with no
    word of the cells only it had."""
    a, b = two_runs
    fewer = tmp_path / "fewer"
    fewer.mkdir()
    frame = pd.read_csv(b / "results.csv")
    frame[frame.estimator == "reinforce"].to_csv(fewer / "results.csv", index=False)
    assert compare_main([str(a), str(fewer), "--metrics", "variance_trace"]) == 0
    out = capsys.readouterr().out
    assert "2 shared cells" in out and "note: 2 cell(s) only in A, not compared (e.g. gumbel_softmax" in out
    assert "only in B" not in out
    assert compare_main([str(a), str(b), "--metrics", "variance_trace"]) == 0
    assert "only in" not in capsys.readouterr().out


def test_bad_arguments(two_runs, tmp_path, capsys):
    a, _ = two_runs
    with pytest.raises(SystemExit):
        compare_main([str(a), str(a), "--fail-on", "nonsense"])
    assert "METRIC:PCT" in capsys.readouterr().err
    for gate in ("time_per_estimate_s:-50", "variance_trace:nan", "variance_trace:inf"):
        with pytest.raises(SystemExit):
            compare_main([str(a), str(a), "--fail-on", gate])
        assert "the percentage must be a finite number >= 0" in capsys.readouterr().err
    assert compare_main([str(a), str(tmp_path)]) == 2
    assert "holds no results.csv" in capsys.readouterr().err


# --- every kind of run: VAE, trajectory, pytest-benchmark JSON ------------------------------------------

import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import benchmarks.trajectory as trajectory  # noqa: E402
import benchmarks.vae as vae  # noqa: E402

# Written by pytest --benchmark-only --benchmark-json: two throughput cases, two registry-overhead goals
# ("<="), one Gumbel-Softmax goal (">="); the speed-goal benchmarks have one round each.
BENCHMARK_JSON = Path(__file__).parent / "data" / "benchmark_small.json"
S1 = "tests/benchmarks/test_throughput.py::test_throughput[reinforce-tucker-0.45-S1-cpu]"
AT_MOST_GOAL = "tests/benchmarks/test_overhead.py::test_registry_overhead[reinforce-poly-2-10000]"
AT_LEAST_GOAL = "tests/benchmarks/test_speed_claims.py::test_gumbel_softmax_vs_functional_gumbel_softmax[quadratic-4]"


@pytest.fixture(scope="module")
def vae_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("vae") / "run"
    # --grad-estimates 0: the encoder-gradient reference would cost most of this file's time
    # (test_one_vae_seed_is_judged_on_the_gradients_own_interval covers those columns)
    assert vae.main(["--latent", "gaussian:4", "--estimators", "pathwise", "reinforce", "--steps", "4", "--evals", "2",
                     "--hidden", "16", "--grad-estimates", "0", "--iw-samples", "5", "--iw-points", "20",
                     "--seed", "0", "1", "--out", str(out), "--no-report"]) == 0
    return out


@pytest.fixture(scope="module")
def trajectory_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("trajectory") / "run"
    assert trajectory.main(["--problems", "tucker-0.45", "--estimators", "reinforce", "disarm", "--steps", "10",
                            "--estimates", "50", "--seeds", "0", "1", "--out", str(out), "--no-report"]) == 0
    return out


@pytest.fixture
def runs(two_runs, vae_run, trajectory_run):
    return {"variance": two_runs[0], "vae": vae_run, "trajectory": trajectory_run, "benchmark": BENCHMARK_JSON}


def copy_run(source: Path, target: Path, edit=None) -> Path:
    """A run folder's copy with its results.csv edited by `edit(frame) -> frame`."""
    target.mkdir()
    for name in ("results.csv", "run.json"):
        if (source / name).exists():
            shutil.copy(source / name, target / name)
    if edit is not None:
        edit(pd.read_csv(target / "results.csv")).to_csv(target / "results.csv", index=False)
    return target


def scaled(frame, columns, factor, rows=None):
    frame = frame.copy()
    frame.loc[slice(None) if rows is None else rows(frame), columns] *= factor
    return frame


def edit_benchmarks(target: Path, edits: dict) -> Path:
    """A copy of BENCHMARK_JSON with edits[fullname](bench) applied."""
    data = json.loads(BENCHMARK_JSON.read_text())
    for bench in data["benchmarks"]:
        if bench["fullname"] in edits:
            edits[bench["fullname"]](bench)
    target.write_text(json.dumps(data))
    return target


def slower(factor):
    def edit(bench):
        for stat in ("min", "max", "mean", "median", "q1", "q3"):
            bench["stats"][stat] *= factor
    return edit


def goal_ratio(factor):
    def edit(bench):
        goal = bench["extra_info"]["speed_goal"]
        for field in ("ratio", "ratio_low", "ratio_high"):
            goal[field] *= factor
    return edit


@pytest.mark.parametrize("kind,gate", [("variance", "variance_trace:20"), ("vae", "test_neg_elbo:20"),
                                       ("trajectory", "exact_loss:20"), ("benchmark", "median_s:20")])
def test_each_kind_compares_with_itself(runs, capsys, kind, gate):
    run = runs[kind]
    assert compare_main([str(run), str(run), "--all", "--fail-on", gate]) == 0
    out = capsys.readouterr().out
    shared = int(out.split(" shared cells")[0].split()[-1])
    assert shared >= 2 and "0 marked changes" in out and "x1.000" in out and "WORSE" not in out


def test_vae_regression_is_marked_and_fails_the_gate(vae_run, tmp_path, capsys):
    """Two seeds: the interval of the test -ELBO is the spread over them; 1.5x leaves it."""
    worse = copy_run(vae_run, tmp_path / "worse", lambda f: scaled(f, ["test_neg_elbo"], 1.5))
    code = compare_main([str(vae_run), str(worse), "--fail-on", "test_neg_elbo:20"])
    captured = capsys.readouterr()
    assert code == 1 and "FAIL: test_neg_elbo worse by more than 20% in 2 cell(s)" in captured.err
    assert "seeds per cell: A 2, B 2" in captured.out
    assert "pathwise gaussian:4 kl=analytic S=1 cpu test_neg_elbo:" in captured.out and "x1.500  WORSE" in captured.out
    # a 1.5x change does not fail a gate set at 60%
    assert compare_main([str(vae_run), str(worse), "--fail-on", "test_neg_elbo:60"]) == 0


def test_vae_cells_match_on_the_temperature_they_started_from(vae_run, tmp_path, capsys):
    """Found trying compare: a row records the tau of its step (learned by RELAX, annealed), so runs of one
    setting never matched and a seed's rows were not pooled. Planted: every run starts at tau 1, and ends
    at a tau of its own."""
    def ended_at(offset):
        def edit(frame):
            frame["tau0"] = 1.0
            frame["hparams"] = [json.dumps({"tau": offset + 0.01 * seed}) for seed in frame["seed"]]
            return frame
        return edit

    a = copy_run(vae_run, tmp_path / "a", ended_at(0.9))
    b = copy_run(vae_run, tmp_path / "b", ended_at(0.5))
    assert compare_main([str(a), str(b), "--metrics", "test_neg_elbo"]) == 0
    out = capsys.readouterr().out
    assert "2 shared cells" in out and "seeds per cell: A 2, B 2" in out


def test_one_vae_seed_is_judged_on_the_gradients_own_interval(tmp_path, capsys):
    """One seed: a grad_* metric is judged on its own bootstrap interval, the test -ELBO (none) is not."""
    def write(folder, factor):
        folder.mkdir()
        pd.DataFrame([{"estimator": "reinforce", "hparams": "{}", "latent": "gaussian:4", "kl": "analytic",
                       "n_samples": 1, "device": "cpu", "seed": 0, "step": 4, "test_neg_elbo": 40.0 * factor,
                       "grad_variance_trace": 10.0 * factor, "grad_variance_trace_lo": 9.0 * factor,
                       "grad_variance_trace_hi": 11.0 * factor}]).to_csv(folder / "results.csv", index=False)
        (folder / "run.json").write_text(json.dumps({"kind": "vae"}))
        return folder

    a, b = write(tmp_path / "a", 1.0), write(tmp_path / "b", 3.0)
    gates = ["--fail-on", "grad_variance_trace:50", "--fail-on", "test_neg_elbo:50"]
    assert compare_main([str(a), str(b), "--metrics", "grad_variance_trace", "test_neg_elbo"] + gates) == 1
    captured = capsys.readouterr()
    assert "grad_variance_trace: 10 [9, 11] -> 30 [27, 33]  x3.000  WORSE" in captured.out
    assert "test_neg_elbo: 40 -> 120  x3.000  no interval: not judged" in captured.out
    assert "FAIL: grad_variance_trace" in captured.err and "FAIL: test_neg_elbo" not in captured.err


def test_trajectory_regression_is_marked_and_fails_the_gate(trajectory_run, tmp_path, capsys):
    worse = copy_run(trajectory_run, tmp_path / "worse", lambda f: scaled(
        f, ["exact_loss"], 2.0, rows=lambda f: f.estimator == "disarm"))
    code = compare_main([str(trajectory_run), str(worse), "--metrics", "exact_loss", "--fail-on", "exact_loss:50"])
    captured = capsys.readouterr()
    assert code == 1 and "FAIL: exact_loss worse by more than 50% in 1 cell(s)" in captured.err
    assert "disarm tucker-0.45 exact_loss:" in captured.out and "x2.000  WORSE" in captured.out


def test_benchmark_regressions_are_marked_and_fail_the_gate(tmp_path, capsys):
    """A round time's interval is the IQR of its rounds; a speed goal is worse away from its direction:
    a '<=' goal's ratio going up, a '>=' goal's going down."""
    worse = edit_benchmarks(tmp_path / "worse.json", {
        S1: slower(2.0), AT_MOST_GOAL: goal_ratio(3.0), AT_LEAST_GOAL: goal_ratio(1 / 20)})
    code = compare_main([str(BENCHMARK_JSON), str(worse), "--fail-on", "median_s:50", "--fail-on", "ratio:100"])
    captured = capsys.readouterr()
    assert code == 1 and "FAIL: median_s worse by more than 50% in 1 cell(s)" in captured.err
    assert "FAIL: ratio worse by more than 100% in 2 cell(s)" in captured.err
    assert f"{S1} median_s:" in captured.out and "x2.000  WORSE" in captured.out
    assert f"{AT_MOST_GOAL} ratio:" in captured.out and f"{AT_LEAST_GOAL} ratio:" in captured.out
    # one round has no spread: its round time is shown, not judged
    assert "median_s), not judged" in captured.out
    better = edit_benchmarks(tmp_path / "better.json", {AT_LEAST_GOAL: goal_ratio(20.0)})
    assert compare_main([str(BENCHMARK_JSON), str(better), "--fail-on", "ratio:10"]) == 0
    assert "x20.000  better" in capsys.readouterr().out


def test_runs_of_different_kinds_are_refused(runs, capsys):
    assert compare_main([str(runs["vae"]), str(runs["variance"])]) == 2
    err = capsys.readouterr().err
    assert "is a VAE run" in err and "a variance sweep" in err and "one kind" in err
    assert compare_main([str(runs["benchmark"]), str(runs["trajectory"])]) == 2
    assert "pytest-benchmark JSON file" in capsys.readouterr().err


def test_a_metric_of_another_kind_is_refused_with_the_kinds_metrics(vae_run, capsys):
    assert compare_main([str(vae_run), str(vae_run), "--fail-on", "variance_trace:20"]) == 2
    err = capsys.readouterr().err
    assert "vae runs have no metric 'variance_trace'" in err and "test_neg_elbo" in err and "grad_mse" in err
    assert compare_main([str(BENCHMARK_JSON), str(BENCHMARK_JSON), "--metrics", "exact_loss"]) == 2
    assert "median_s" in capsys.readouterr().err


def test_old_vae_folder_without_hparams_compares_on_its_temperature(vae_run, tmp_path, capsys):
    """A folder from before `hparams`, `variant` and `n_samples` were recorded, one seed: no KeyError;
    a figure without its own interval is shown as not judged, the gradient variance is judged on its own."""
    old = copy_run(vae_run, tmp_path / "old", lambda f: scaled(
        f[f.seed == 0].drop(columns=["hparams", "variant", "n_samples", "run_id"]), ["test_neg_elbo"], 1.5))
    new = copy_run(vae_run, tmp_path / "new", lambda f: f[f.seed == 0])
    assert compare_main([str(new), str(old), "--all", "--fail-on", "test_neg_elbo:10"]) == 0
    captured = capsys.readouterr()
    assert "cells matched on tau0" in captured.out and "2 shared cells" in captured.out
    assert "test_neg_elbo" in captured.out and "x1.500  no interval: not judged" in captured.out
    assert "without an interval" in captured.err  # the gate says what it could not judge
    assert "test_iw_bound: " in captured.out  # one seed: judged on its standard error
    iw_line = next(line for line in captured.out.splitlines() if "test_iw_bound:" in line)
    assert "[" in iw_line and "x1.000" in iw_line and "not judged" not in iw_line


def write_trajectory(folder: Path, final_losses: dict[int, float]) -> Path:
    """A hand-made trajectory folder: one cell, one run per seed, ending at step 10 with the given loss."""
    folder.mkdir()
    rows = [{"estimator": "reinforce", "hparams": "{}", "problem": "tucker-0.45", "seed": seed, "step": step,
             "exact_loss": 9.0 if step == 0 else loss} for seed, loss in final_losses.items() for step in (0, 10)]
    pd.DataFrame(rows).to_csv(folder / "results.csv", index=False)
    (folder / "run.json").write_text(json.dumps({"kind": "trajectory"}))
    return folder


def test_a_change_within_the_spread_over_seeds_is_not_significant(tmp_path, capsys):
    a = write_trajectory(tmp_path / "a", {0: 1.0, 1: 2.0})
    within = write_trajectory(tmp_path / "within", {0: 1.2, 1: 2.6})   # mean x1.27, spreads overlap
    beyond = write_trajectory(tmp_path / "beyond", {0: 3.0, 1: 4.0})   # mean x2.33, spreads apart
    gate = ["--metrics", "exact_loss", "--fail-on", "exact_loss:10", "--all"]
    assert compare_main([str(a), str(within)] + gate) == 0
    out = capsys.readouterr().out
    assert "1 shared cells; 0 marked changes" in out and "1.5 [1, 2] -> 1.9 [1.2, 2.6]  x1.267" in out
    assert compare_main([str(a), str(beyond)] + gate) == 1
    assert "1.5 [1, 2] -> 3.5 [3, 4]  x2.333  WORSE" in capsys.readouterr().out
    # one seed each: no spread, no interval: shown, not judged, and no gate fails on it
    one_a, one_b = write_trajectory(tmp_path / "one_a", {0: 1.0}), write_trajectory(tmp_path / "one_b", {0: 3.0})
    assert compare_main([str(one_a), str(one_b)] + gate) == 0
    assert "1 -> 3  x3.000  no interval: not judged" in capsys.readouterr().out


def test_a_loss_that_rises_through_negative_values_is_worse(tmp_path, capsys):
    """E cos(kx) and other losses can be negative: worse is judged on B - A, not on B / A."""
    a = write_trajectory(tmp_path / "a", {0: -2.0, 1: -1.9})
    b = write_trajectory(tmp_path / "b", {0: -1.0, 1: -0.9})
    assert compare_main([str(a), str(b), "--metrics", "exact_loss", "--fail-on", "exact_loss:40"]) == 1
    assert "-1.95 [-2, -1.9] -> -0.95 [-1, -0.9]  x0.487  WORSE" in capsys.readouterr().out


def test_a_reader_that_stops_early_ends_the_output_quietly(two_runs):
    """Found trying the README: `python -m reports compare A B | head -3` ended in a BrokenPipeError traceback."""
    import subprocess
    import sys
    from pathlib import Path

    a, b = two_runs
    done = subprocess.run(f"{sys.executable} -m reports compare {a} {b} --all | head -1", shell=True,
                          cwd=Path(__file__).parents[1], capture_output=True, text=True, timeout=120)
    assert done.stdout.count("\n") == 1 and "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr


# --- damaged runs: one message naming the file, exit 2 (found by a tester: EmptyDataError, KeyError and
# pandas merge tracebacks) -------------------------------------------------------------------------------

@pytest.mark.parametrize("damage,what", [
    (lambda text: "", "(it is empty)"),
    (lambda text: text.splitlines(keepends=True)[0], "(it holds a header and no rows)"),
    (lambda text: text[:-40], "(row {last} has"),  # the header is row 1
], ids=["empty", "header only", "cut mid-row"])
def test_a_damaged_run_is_refused_naming_its_file(vae_run, tmp_path, capsys, damage, what):
    target = copy_run(vae_run, tmp_path / "damaged")
    text = (target / "results.csv").read_text()
    (target / "results.csv").write_text(damage(text))
    what = what.format(last=len(text.splitlines()))
    assert compare_main([str(vae_run), str(target)]) == 2
    err = capsys.readouterr().err
    assert f"error: {target / 'results.csv'} is damaged or not a gradbench file {what}" in err, err


def test_a_run_whose_every_cell_failed_is_refused_with_its_errors(two_runs, tmp_path, capsys, monkeypatch):
    out = run_whose_every_cell_failed(tmp_path / "failed", monkeypatch)
    capsys.readouterr()
    assert compare_main([str(two_runs[0]), str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{out} holds no finished cells; its run recorded 1 error: " in err and "boom in a user's estimator" in err
