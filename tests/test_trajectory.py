"""`python -m benchmarks.trajectory` as a user runs it: the optimisation trajectories of the REBAR / RELAX /
ARM toy figure, checked against closed forms (benchmarks/tasks/toys.py) wherever one exists.

Tucker's toy tucker-t: E[(b - t)^2], b ~ Bernoulli(s), s = sigmoid(theta), so

    E[f](theta) = s (1 - t)^2 + (1 - s) t^2,     dE[f]/dtheta = (1 - 2t) s (1 - s),     inf E[f] = min(t, 1 - t)^2.

Statistical checks (tests/helpers.py: level ALPHA each, fixed seeds), 11 in all:
    test_unbiased_estimators_show_no_bias_along_the_trajectory: one per unbiased Bernoulli estimator (9 today),
        Bonferroni over the 4 measurement points of its run;
    test_the_exact_loss_decreases_on_average_with_an_unbiased_estimator: 2, one per starting point.
"""
from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats

import benchmarks.sweep as sweep
import benchmarks.trajectory as trajectory
import estimators
from benchmarks.tasks import get_problem
from benchmarks.trajectory_runs import MEASURED, TrajectorySettings
from tests.helpers import ALPHA, Z, bonferroni_z

ROOT = Path(__file__).parents[1]
# Columns that record where and how fast a run went, not what it computed.
TIMING = ["train_seconds", "executor", "concurrency", "torch_threads", "load_avg_start", "load_avg_end", "timed_cpu_s",
          "timed_wall_s", "timed_wait_share", "cores"]


def run(argv, capsys):
    code = trajectory.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def rows(out: Path) -> pd.DataFrame:
    """The run's rows from results.json (full float64 precision), sorted by run and step."""
    frame = pd.DataFrame(json.loads((out / "results.json").read_text()))
    return frame.sort_values(["run_id", "step"]).reset_index(drop=True)


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def tucker_loss(t: float, theta: float) -> float:
    s = sigmoid(theta)
    return s * (1 - t) ** 2 + (1 - s) * t ** 2


def tucker_gradient(t: float, theta: float) -> float:
    s = sigmoid(theta)
    return (1 - 2 * t) * s * (1 - s)


# --- 1. the exact gradient gives full-batch gradient descent ---------------------------------------------

def test_exact_gradient_with_sgd_is_gradient_descent_by_hand(tmp_path, capsys):
    """With `--estimators exact` and SGD every step is theta <- theta - lr (1 - 2t) s (1 - s): the recorded
    theta follows gradient descent done by hand in float64 from the closed form.

    Tolerance: the run trains in float32. Each step rounds theta (|theta| <= 1: at most half an ulp of 1,
    2^-24 = 6e-8) and the update (the gradient's relative rounding ~1e-7 times lr |g| <= 0.5 x 0.025);
    the step map's derivative is 1 - lr (1 - 2t) s (1 - s) (1 - 2s) <= 1.006, so 50 steps carry at most
    50 x 7e-8 x 1.006^50 = 4.7e-6 of rounding: atol 5e-6. The path moves by 0.54, 10^5 times that."""
    t, lr, out = 0.45, 0.5, tmp_path / "run"
    code, _, _ = run(["--problems", "tucker-0.45", "--start", "theta=1", "--estimators", "exact", "--optimizer", "sgd",
                      "--lr", lr, "--steps", 50, "--measure-every", 10, "--estimates", 2, "--no-report", "--out", out],
                     capsys)
    assert code == 0
    frame = rows(out)
    assert list(frame.step) == [0, 10, 20, 30, 40, 50]
    assert set(frame.problem) == {"tucker-0.45@theta=1"} and set(frame.estimator) == {"exact"}
    theta, by_hand = 1.0, {0: 1.0}
    for step in range(1, 51):
        theta -= lr * tucker_gradient(t, theta)
        by_hand[step] = theta
    for row in frame.itertuples():
        assert row.theta == pytest.approx(by_hand[row.step], abs=5e-6), row.step
        assert json.loads(row.params) == {"logits": [row.theta]}
        # the loss and gradient columns are the closed forms at the recorded theta (float64 throughout)
        assert row.exact_loss == pytest.approx(tucker_loss(t, row.theta), rel=1e-12, abs=0)
        assert json.loads(row.exact_grad) == [pytest.approx(tucker_gradient(t, row.theta), rel=1e-9, abs=0)]
        assert row.loss_infimum == pytest.approx(min(t, 1 - t) ** 2)
        assert row.f_evals_so_far == row.step * row.f_evals  # the exact estimator: both states per step
    assert by_hand[50] < 0.47  # the path went somewhere, so the comparison above means something


# --- 2. same seed, same trajectory ---------------------------------------------------------------------

DETERMINISM = ["--problems", "tucker-0.45", "--estimators", "reinforce", "reinforce_ema", "--steps", "40",
               "--estimates", "200", "--seeds", "0", "1", "--no-report"]


def test_same_seed_same_trajectory_whatever_the_executor_or_measurement_grid(tmp_path, capsys):
    """The same command twice, in process and on a pool of 2 workers, gives identical rows (timing aside);
    another seed gives another path; measuring every 5 steps instead of 10 (each measurement forks its own
    RNG stream, and a stateful estimator is measured on a copy) leaves every common row unchanged."""
    for name, extra in (("a", ["--measure-every", 10]), ("b", ["--measure-every", 10]),
                        ("pool", ["--measure-every", 10, "--workers", 2]), ("fine", ["--measure-every", 5])):
        code, _, _ = run([*DETERMINISM, *extra, "--out", tmp_path / name], capsys)
        assert code == 0, name
    a, b, pool, fine = (rows(tmp_path / name) for name in ("a", "b", "pool", "fine"))
    assert len(a) == 2 * 2 * 5 and set(a.step) == {0, 10, 20, 30, 40}
    compared = [column for column in a.columns if column not in TIMING]
    assert {"theta", "exact_loss", "params", *MEASURED} <= set(compared)
    pd.testing.assert_frame_equal(b[compared], a[compared], check_exact=True, obj="same command again")
    pd.testing.assert_frame_equal(pool[compared], a[compared], check_exact=True, obj="--workers 2")
    assert set(pool.executor) == {"local-pool"} and set(a.executor) == {"in-process"}

    # another seed, another path (and the path moved at all)
    reinforce = a[(a.estimator == "reinforce") & (a.step == 40)].set_index("seed").theta
    assert reinforce.loc[0] != reinforce.loc[1] and (reinforce != 0).all()

    assert set(fine.step) == set(range(0, 41, 5))
    common = fine[fine.step.isin(a.step)].reset_index(drop=True)
    pd.testing.assert_frame_equal(common[compared], a[compared], check_exact=True, obj="--measure-every 5")


# --- 3. an unbiased estimator decreases the exact loss -------------------------------------------------

SEEDS = 8


@pytest.mark.statistical(checks=2)
def test_the_exact_loss_decreases_on_average_with_an_unbiased_estimator(tmp_path, capsys):
    """REINFORCE with a leave-one-out baseline (S = 4), Adam lr 0.01, 200 steps, 8 seeds, from the symmetric
    point and from theta = 1: the mean over seeds of (final - initial) exact loss is below 0 by more than
    the critical value of Student's t with 7 degrees of freedom at two-sided level ALPHA (15.8; Z = 4.9 would
    understate the level with 8 seeds and an estimated standard deviation). A trainer that does not lower the
    loss on average passes each check with probability <= ALPHA/2. The effect is ~100 standard errors (seen
    when writing this test), so a correct library fails it with negligible probability; the check is counted
    in the statistical budget (2 checks) all the same."""
    out = tmp_path / "run"
    code, _, _ = run(["--problems", "tucker-0.45", "tucker-0.45@theta=1", "--estimators", "reinforce_loo",
                      "--samples", 4, "--optimizer", "adam", "--lr", 0.01, "--steps", 200, "--measure-every", 200,
                      "--estimates", 2, "--seeds", *range(SEEDS), "--no-report", "--out", out], capsys)
    assert code == 0
    frame = rows(out)
    critical = max(Z, float(stats.t.ppf(1 - ALPHA / 2, SEEDS - 1)))
    for problem in ("tucker-0.45", "tucker-0.45@theta=1"):
        losses = frame[frame.problem == problem].pivot(index="seed", columns="step", values="exact_loss")
        assert list(losses.columns) == [0, 200] and len(losses) == SEEDS, problem
        change = losses[200] - losses[0]
        mean, se = change.mean(), change.std(ddof=1) / math.sqrt(SEEDS)
        assert mean + critical * se < 0, f"{problem}: mean change {mean:.3g} +- {se:.3g} (critical {critical:.3g})"


# --- 4. unbiased estimators measure no bias at any point of their path ---------------------------------

BERNOULLI = get_problem("tucker-0.45").distribution_type
UNBIASED_BERNOULLI = [spec.name for spec in estimators.list_estimators()
                      if spec.unbiased and not spec.is_reference and spec.supports(BERNOULLI)]
BIASED_CONTROL = "gumbel_softmax"
BIAS_N = 4000
BIAS_STEPS = [0, 10, 20, 30]


@pytest.fixture(scope="module")
def bias_run(tmp_path_factory) -> pd.DataFrame:
    """One short run of every unbiased Bernoulli estimator (and a biased control) from theta = 1; lr 0.05
    moves theta over about 1 to -0.5 in 30 steps, so the 4 points are 4 different places."""
    out = tmp_path_factory.mktemp("bias") / "run"
    samples = max(estimators.get_spec(name).min_samples for name in UNBIASED_BERNOULLI)
    code = trajectory.main(["--problems", "tucker-0.45", "--start", "theta=1", "--estimators", *UNBIASED_BERNOULLI,
                            BIASED_CONTROL, "--samples", str(samples), "--lr", "0.05", "--steps", "30",
                            "--measure-every", "10", "--estimates", str(BIAS_N), "--no-report", "--out", str(out)])
    assert code == 0
    return rows(out)


def test_the_registry_has_unbiased_bernoulli_estimators_to_check():
    assert {"reinforce", "reinforce_loo", "arm", "disarm", "relax", "rebar"} <= set(UNBIASED_BERNOULLI)


@pytest.mark.statistical
@pytest.mark.parametrize("name", UNBIASED_BERNOULLI)
def test_unbiased_estimators_show_no_bias_along_the_trajectory(bias_run, name):
    """At each measurement point the N fresh estimates' mean matches the exact gradient: bias_z_max is
    |mean - g*| / (sd / sqrt(N)) of the one coordinate; its critical value is Bonferroni over the 4 points,
    so each estimator is one check at family-wise level ALPHA."""
    run_rows = bias_run[bias_run.estimator == name].sort_values("step")
    assert list(run_rows.step) == BIAS_STEPS
    assert (run_rows.n_finite == BIAS_N).all() and (run_rows.nonfinite == 0).all()
    assert set(run_rows.reference) == {"closed form"}
    for row in run_rows.itertuples():  # the reference is the closed form at the point measured
        assert json.loads(row.exact_grad) == [pytest.approx(tucker_gradient(0.45, row.theta), rel=1e-9)]
    assert run_rows.theta.nunique() == len(BIAS_STEPS)  # four different points
    critical = bonferroni_z(ALPHA, len(BIAS_STEPS))
    worst = run_rows.set_index("step").bias_z_max
    assert (worst < critical).all(), f"{name}: |z| by step {worst.to_dict()} (critical {critical:.3g})"


def test_the_bias_check_has_power_a_biased_estimator_fails_it(bias_run):
    """The same check flags gumbel_softmax (biased on this toy) at its start, so a pass above says something.
    (Not at every point: it drifts towards where its relaxed gradient's bias is small; z was 38, 23, 11, 2
    at steps 0, 10, 20, 30 when this test was written.) Not a level-ALPHA check: a correct library fails it
    only if the bias, 7 critical values large at theta = 1, were hidden by noise."""
    control = bias_run[bias_run.estimator == BIASED_CONTROL].set_index("step").bias_z_max
    assert list(control.index) == BIAS_STEPS
    assert control.loc[0] > bonferroni_z(ALPHA, len(BIAS_STEPS)), control.to_dict()


# --- 5. a run whose parameters go non-finite stops, the others go on -----------------------------------

def test_a_diverging_run_stops_with_its_earlier_points_and_the_others_finish(tmp_path, capsys):
    """SGD at lr 1e30 on gauss-square-3 = E[(x - 3)^2], x ~ N(mu, sigma^2): a step moves sigma by about
    +-1e30; where it goes negative the run stops at once, outside the Normal's support (the constraint in
    the message), and where it goes to +1e30 the next step overflows float32 and the run stops on
    non-finite values. On tucker-0.45 REINFORCE's logit saturates at a finite value and its run
    completes. Exit 0, the stopped runs listed in run.json with their earlier points kept."""
    out = tmp_path / "run"
    code, _, err = run(["--problems", "gauss-square-3", "tucker-0.45", "--estimators", "reinforce", "pathwise",
                        "--optimizer", "sgd", "--lr", "1e30", "--steps", 20, "--measure-every", 1, "--estimates", 50,
                        "--out", out], capsys)
    assert code == 0 and "Traceback" not in err
    meta = json.loads((out / "run.json").read_text())
    stopped = {line.split("|")[1]: line for line in meta["problems"]}
    assert set(stopped) == {"pathwise[]", "reinforce[]"} and all(line.startswith("gauss-square-3|")
                                                                for line in stopped.values())
    stop_steps = {}
    for name, line in stopped.items():
        assert ("the parameters left the normal family's support (its scale must be > "
                "0); earlier points are kept" in line
                or "is not finite; earlier points are kept" in line or "are not finite; earlier" in line), line
        stop_steps[name.removesuffix("[]")] = int(line.split("stopped at step ")[1].split(":")[0])
    assert "stopped at step" in err  # said as it happens, too
    frame = rows(out)
    for name in ("pathwise", "reinforce"):
        kept = frame[(frame.problem == "gauss-square-3") & (frame.estimator == name)]
        assert list(kept.step) == list(range(stop_steps[name])), name  # the points before the stop
        assert kept.theta.iloc[0] == 1.0 and kept.exact_loss.map(math.isfinite).all(), name
    finished = frame[frame.problem == "tucker-0.45"]
    assert set(finished.estimator) == {"reinforce"} and list(finished.step) == list(range(21))
    assert finished.theta.map(math.isfinite).all() and finished.exact_loss.map(math.isfinite).all()
    page = (out / "index.html").read_text()  # the report renders, and names the stopped runs
    assert "Stopped runs" in page and "stopped at step" in page
    assert (out / "gauss-square-3.png").exists() and (out / "tucker-0.45.png").exists()


# --- 6. presets --------------------------------------------------------------------------------------

def test_presets_set_the_papers_settings_and_options_beside_them_win(tmp_path, monkeypatch, capsys):
    args = trajectory.settled(trajectory.build_parser().parse_args(["--preset", "relax-fig1"]))
    assert (args.problems, args.estimators, args.steps, args.samples, args.optimizer, args.lr) == \
        (["tucker-0.499"], ["reinforce", "rebar", "relax"], 10_000, 1, "adam", 0.01)
    arm = trajectory.settled(trajectory.build_parser().parse_args(["--preset", "arm-toy"]))
    assert sorted(arm.problems) == ["tucker-0.49", "tucker-0.499", "tucker-0.501", "tucker-0.51"]
    assert sorted(arm.estimators) == ["arm", "disarm", "rebar", "reinforce", "relax"] and arm.steps == 3_000
    mine = trajectory.settled(trajectory.build_parser().parse_args(
        ["--preset", "relax-fig1", "--steps", "50", "--lr", "0.1", "--optimizer", "sgd", "--estimators", "reinforce",
         "--measure-every", "5", "--samples", "3"]))
    assert (mine.problems, mine.estimators, mine.steps, mine.lr, mine.optimizer, mine.measure_every, mine.samples) == \
        (["tucker-0.499"], ["reinforce"], 50, 0.1, "sgd", 5, 3)
    plain = trajectory.settled(trajectory.build_parser().parse_args(["--steps", "200"]))
    assert plain.measure_every == 10 and plain.optimizer == "adam" and plain.lr == 0.01

    # the runs main builds from the preset, without running them
    handed = {}
    monkeypatch.setattr(sweep, "run_loop", lambda **kwargs: handed.update(kwargs) or 0)
    assert trajectory.main(["--preset", "relax-fig1", "--seeds", "0", "1", "--out", str(tmp_path / "run")]) == 0
    units = handed["units"]
    assert sorted({unit.estimator for unit in units}) == ["rebar", "reinforce", "relax"] and len(units) == 6
    assert {unit.problem for unit in units} == {"tucker-0.499"} and {unit.seed for unit in units} == {0, 1}
    assert {unit.settings for unit in units} == {TrajectorySettings(10_000, 1, "adam", 0.01, 100, 1_000, "cpu")}
    assert handed["meta"]["kind"] == "trajectory" and handed["meta"]["preset"] == "relax-fig1"
    handed.clear()
    assert trajectory.main(["--preset", "relax-fig1", "--lr", "0.1", "--estimators", "relax",
                            "--out", str(tmp_path / "other")]) == 0
    assert [(unit.estimator, unit.settings.lr, unit.settings.steps) for unit in handed["units"]] == \
        [("relax", 0.1, 10_000)]
    capsys.readouterr()


# --- 7. the report -----------------------------------------------------------------------------------

def _threshold_rows(page: str) -> dict[str, list[str]]:
    return {cells[0]: cells[1:] for cells in (re.findall(r"<td>(.*?)</td>", row)
                                              for row in re.findall(r"<tr><td>.*?</tr>", page))}


def test_report_renders_with_the_threshold_table_and_re_renders_from_the_folder(tmp_path, capsys):
    """Exact gradients with Adam (lr 0.1) drive tucker-0.45's excess loss below 10% of its start within 60
    steps; gumbel_softmax, biased towards the interior of the relaxation, does not."""
    out = tmp_path / "run"
    code, stdout, _ = run(["--problems", "tucker-0.45", "--estimators", "exact", "gumbel_softmax", "--lr", 0.1,
                           "--steps", 60, "--measure-every", 5, "--estimates", 50, "--out", out], capsys)
    assert code == 0 and "report: file://" in stdout
    assert sorted(p.name for p in out.glob("*.png")) == ["tucker-0.45.png"]
    assert (out / "tucker-0.45.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "index.html").read_text()
    assert "infimum of the loss: closed form" in page
    table = _threshold_rows(page)
    frame = rows(out)
    exact = frame[frame.estimator == "exact"].set_index("step")
    excess = exact.exact_loss - 0.45 ** 2
    first = int(excess[excess < 0.1 * excess.loc[0]].index[0])
    assert table["exact"][:2] == ["1 of 1", str(first)]
    gumbel = next(cells for label, cells in table.items() if label.startswith("gumbel_softmax"))
    assert gumbel[:4] == ["0 of 1", "did not reach it", "did not reach it", "did not reach it"]

    for rendered in (out / "index.html", out / "tucker-0.45.png"):
        rendered.unlink()
    done = subprocess.run([sys.executable, "-m", "reports", str(out)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0 and "report: file://" in done.stdout, done.stderr[-2000:]
    again = (out / "index.html").read_text()
    assert "optimisation trajectories" in again and (out / "tucker-0.45.png").exists()
    assert _threshold_rows(again) == table


# --- 8. bad input --------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv,stream,message", [
    (["--problems", "tuker-0.45"], "err", "unknown problem 'tuker-0.45'. Did you mean 'tucker-0.45'"),
    (["--problems", "tucker-0.45", "--start", "sigma=1"], "err",
     "point of 'tucker-0.45' has no sigma; its point is set by theta"),
    (["--problems", "tucker-0.45", "--estimators", "reinforce_loo", "--samples", "1"], "out",
     "left out: reinforce_loo needs S >= 2 (add --samples 2)"),
    (["--steps", "0"], "err", "--steps"),
    (["--estimates", "1"], "err", "--estimates"),
    (["--lr", "-1"], "err", "--lr"),
    (["--problems", "tucker-0.45", "--estimators", "pathwise", "--steps", "5"], "out",
     "left out: pathwise does not support the bernoulli family of tucker-0.45; estimators that do: arm, disarm"),
])
def test_bad_input_is_a_message_and_exit_2(tmp_path, capsys, argv, stream, message):
    out = tmp_path / "run"
    try:
        code = trajectory.main([*argv, "--no-report", "--out", str(out)])
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    captured = capsys.readouterr()
    assert code == 2 and message in getattr(captured, stream), (captured.out, captured.err)
    assert "Traceback" not in captured.err and not out.exists()
    if "reinforce_loo" in argv or "pathwise" in argv:
        assert "no (problem, estimator) pair can be run: see the reasons above" in captured.err


def test_an_estimator_named_for_a_family_it_does_not_support_is_named_as_left_out(tmp_path, capsys):
    """The other estimators run; the one that cannot serve the problem's family is named, with those that can."""
    code, out, _ = run(["--problems", "gauss-square-3", "--estimators", "reinforce", "disarm", "--steps", 5,
                        "--estimates", 50, "--no-report", "--out", tmp_path / "run"], capsys)
    assert code == 0
    assert "left out: disarm does not support the normal family of gauss-square-3; estimators that do:" in out
    assert set(pd.read_csv(tmp_path / "run" / "results.csv")["estimator"]) == {"reinforce"}


# --- 7b. timing hygiene --------------------------------------------------------------------------------

HYGIENE = ["load_avg_start", "load_avg_end", "timed_cpu_s", "timed_wall_s", "timed_wait_share", "cores"]


def test_rows_record_their_timing_conditions_and_the_page_flags_them(tmp_path, capsys):
    """Every row records, over its train_seconds (every step since the start, measurements left out), the load
    average at the start and at the row, this process's CPU seconds beside the wall seconds, and the cores;
    rows planted as timed beside another unit are flagged in the table, the page says which executor ran, and
    a folder without these columns (an older run) still renders."""
    from benchmarks.executors import cpu_count
    from reports.__main__ import main as reports_main

    out = tmp_path / "run"
    code, _, _ = run(["--problems", "tucker-0.45", "--estimators", "reinforce", "disarm", "--steps", 40,
                      "--measure-every", 20, "--estimates", 50, "--no-report", "--out", out], capsys)
    assert code == 0
    frame = rows(out)
    assert len(frame) == 6 and frame[HYGIENE].notna().all().all() and set(frame.cores) == {cpu_count()}
    assert (frame.load_avg_start >= 0).all() and (frame.load_avg_end >= 0).all()
    assert (frame.timed_wall_s == frame.train_seconds).all()
    assert (frame[frame.step == 0].timed_cpu_s == 0).all() and (frame[frame.step > 0].timed_cpu_s > 0).all()
    for _, path in frame.groupby("run_id"):
        assert path.timed_cpu_s.is_monotonic_increasing and path.load_avg_start.nunique() == 1

    def row_of(page: str, label: str) -> str:
        return next(row for row in re.findall(r"<tr><td>.*?</tr>", page) if row.startswith(f"<tr><td>{label}"))

    results = pd.read_csv(out / "results.csv")
    planted = results.assign(concurrency=results.concurrency.where(results.estimator != "reinforce", 2))
    planted.to_csv(out / "results.csv", index=False)
    assert reports_main([str(out)]) == 0
    page = (out / "index.html").read_text()
    assert "executor in-process" in page and "<th>timing</th>" in page
    assert "concurrent (2 units at once)" in row_of(page, "reinforce")
    assert "concurrent" not in row_of(page, "disarm")

    results.drop(columns=HYGIENE + ["executor", "concurrency", "torch_threads"]).to_csv(out / "results.csv", index=False)
    meta = json.loads((out / "run.json").read_text())
    (out / "run.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "executor"}))
    assert reports_main([str(out)]) == 0
    page = (out / "index.html").read_text()
    assert "executor" not in page.split("<p>")[1] and "<td class=flag></td></tr>" in row_of(page, "reinforce")


def test_an_exact_zero_is_left_out_of_the_log_panels_and_named():
    """Found by a new user: DisARM's variance of exactly 0 at theta = 0 (step 0) was drawn at a third of the
    smallest positive variance, as if measured there. It is now a gap, and the panel names it."""
    import matplotlib.pyplot as plt
    import numpy as np
    import pandas as pd

    from reports.trajectory import trajectory_figure

    frame = pd.DataFrame([{"label": name, "estimator": name, "seed": 0, "step": step, "f_evals_so_far": 2 * step,
                           "excess": 0.1 / (1 + step), "variance_trace": 0.0 if (name == "disarm" and step == 0)
                           else 1e-3 / (1 + step), "theta": step / 100} for name in ("disarm", "reinforce")
                          for step in (0, 10, 20)])
    fig, axes = trajectory_figure(frame, "tucker-0.45")
    disarm = next(line for line in axes[2].get_lines() if line.get_label() == "disarm")
    assert np.isnan(disarm.get_ydata()[0]) and np.isfinite(disarm.get_ydata()[1:]).all()
    notes = [text.get_text() for text in axes[2].texts]
    assert len(notes) == 1 and "variance exactly 0" in notes[0] and "disarm" in notes[0] and "reinforce" not in notes[0]
    assert not axes[0].texts  # no excess loss of exactly 0
    plt.close(fig)


def test_long_legend_labels_stay_inside_the_figure_and_off_the_panels():
    """Found by a new user: 'rebar coupling: tied, eta: 1.0, tau: 0.316' ran off the image, and the legend
    covered the tick labels of the cost panel."""
    import matplotlib.pyplot as plt
    import pandas as pd

    from reports.trajectory import trajectory_figure
    from tests.helpers import inside_and_apart

    names = ["rebar coupling: tied, eta: 1.0, tau: 0.316", "rebar coupling: independent, eta: 0.5, tau: 1", "reinforce"]
    frame = pd.DataFrame([{"label": name, "estimator": name.split()[0], "seed": 0, "step": step,
                           "f_evals_so_far": 300 + 50 * step, "excess": 0.1 / (1 + step),
                           "variance_trace": 1e-3 / (1 + step), "theta": step / 100}
                          for name in names for step in (0, 10, 20)])
    fig, axes = trajectory_figure(frame, "tucker-0.45")
    legend = fig.legends[0]
    fig.canvas.draw()
    inside_and_apart(fig, list(legend.get_texts()) + [fig._suptitle])
    assert legend.get_window_extent().x0 > max(ax.get_window_extent().x1 for ax in axes)
    plt.close(fig)
