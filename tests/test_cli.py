"""The variance CLI as a user runs it: outputs, bad input, interruption and --resume."""
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

import benchmarks.harness as harness
import benchmarks.variance as variance

REQUIRED_COLUMNS = [
    "estimator", "tau", "objective", "family", "n_samples", "n_estimates", "device", "seed", "variance_trace",
    "variance_trace_lo", "variance_trace_hi", "bias_norm", "bias_norm_lo", "bias_norm_hi", "rel_bias", "mse",
    "cosine", "snr", "bias_z_max", "true_grad_norm", "f_evals", "time_per_estimate_s", "estimates_per_s", "nonfinite",
]
SMALL = ["--objectives", "tucker-0.45", "quadratic-4", "--estimates", "200", "--no-report"]
ROOT = Path(__file__).resolve().parents[1]


def run(argv, capsys):
    code = variance.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_small_sweep_writes_results_metadata_and_report(tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, _ = run(["--objectives", "tucker-0.45", "gauss-cos-2", "--estimates", "300", "--tau", "0.5", "1",
                           "--samples", "1", "2", "--device", "cpu", "--out", out], capsys)
    assert code == 0 and "report: file://" in stdout
    frame = pd.read_csv(out / "results.csv")
    assert set(REQUIRED_COLUMNS) <= set(frame.columns)
    # tau-free estimators once per (objective, S); tau-taking ones once per tau
    gumbel = frame[frame.estimator == "gumbel_softmax"]
    assert sorted(gumbel.tau.unique()) == [0.5, 1.0] and len(gumbel) == 4
    assert frame[frame.estimator == "reinforce"].tau.isna().all() and len(frame[frame.estimator == "reinforce"]) == 4
    assert set(frame[frame.estimator == "reinforce_loo"].n_samples) == {2}  # S = 1 is skipped, not failed
    assert (frame.nonfinite == 0).all() and (frame.n_estimates == 300).all()
    meta = json.loads((out / "run.json").read_text())
    for key in ("torch_version", "cpu", "cpu_threads", "git_commit", "commands", "started", "finished", "seed"):
        assert key in meta
    assert any("needs S >= 2" in line for line in meta["skipped"])
    assert (out / "index.html").exists() and (out / "tucker-0.45.png").exists() and (out / "gauss-cos-2.png").exists()
    assert json.loads((out / "results.json").read_text())[0]["cell_id"] == frame.cell_id[0]


def test_same_seed_same_numbers(tmp_path, capsys):
    for name in ("a", "b"):
        assert run(SMALL + ["--estimators", "reinforce", "gumbel_softmax", "--out", tmp_path / name], capsys)[0] == 0
    a, b = (pd.read_csv(tmp_path / name / "results.csv") for name in ("a", "b"))
    pd.testing.assert_series_equal(a.variance_trace, b.variance_trace)
    pd.testing.assert_series_equal(a.bias_norm, b.bias_norm)


@pytest.mark.parametrize("argv,message", [
    (["--estimators", "reinfroce"], "Did you mean 'reinforce'"),
    (["--objectives", "tuker-*"], "unknown problem 'tuker-*'. Did you mean"),
        (["--objectives", "gauss-square-3@mu=0,sigma=-1"], "its scale must be > 0 (the point gives mu=0,sigma=-1)"),
        (["--objectives", "tuker-0.45@theta=1"], "unknown problem family"),
    (["--tau", "0"], "temperature must be finite and > 0"),
    (["--tau", "-1"], "temperature must be finite and > 0"),
    (["--tau", "nan"], "temperature must be finite and > 0"),
    (["--tau", "inf"], "temperature must be finite and > 0"),
    (["--samples", "0"], "--samples"),
    (["--estimates", "1"], "--estimates"),
    (["--estimators", "pathwise", "--objectives", "tucker-*"], "pathwise does not support the bernoulli family of tucker-0.45 (and 7 more); estimators that do: arm, disarm"),
])
def test_bad_input_is_a_message_and_nonzero_exit(tmp_path, capsys, argv, message):
    try:
        code = variance.main(argv + ["--out", str(tmp_path / "x")])
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    captured = capsys.readouterr()
    assert code != 0 and message in captured.err
    assert "Traceback" not in captured.err


def test_an_out_folder_that_cannot_be_written_is_a_usage_error(tmp_path, capsys):
    """Found by a new user: --out /proc/foo ended in mkdir's traceback (exit 1). Now a usage error, for each
    CLI (they share the check), and the probe leaves nothing behind."""
    (tmp_path / "a-file").write_text("")
    cases = [(tmp_path / "a-file" / "run", f"{tmp_path / 'a-file'} is a file, not a folder")]
    if Path("/proc").is_dir():
        cases.append((Path("/proc/gradbench-run"), "cannot create a folder in /proc"))
    for out, message in cases:
        code, _, err = run(SMALL + ["--out", out], capsys)
        assert code == 2 and f"--out {out}: {message}" in err and "Traceback" not in err, err
    fresh = tmp_path / "new" / "deeper"
    assert run(SMALL + ["--estimators", "reinforce", "--out", fresh], capsys)[0] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "new"]
    assert not [p for p in fresh.iterdir() if p.name.startswith(".probe-")]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_gpu_is_refused(tmp_path, capsys):
    code, _, err = run(["--device", "cuda", "--out", tmp_path / "x"], capsys)
    assert code == 2 and "no CUDA GPU" in err and "--device cpu" in err


def test_folder_with_another_run_needs_resume(tmp_path, capsys):
    out = tmp_path / "run"
    assert run(SMALL + ["--estimators", "reinforce", "--out", out], capsys)[0] == 0
    code, _, err = run(SMALL + ["--estimators", "reinforce", "--out", out], capsys)
    assert code == 2 and "--resume" in err
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    code, _, err = run(SMALL + ["--out", tmp_path / "other"], capsys)
    assert code == 2 and "holds no gradbench run" in err


def test_interrupted_sweep_keeps_finished_cells_and_resumes(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    real_run_cell = harness.run_cell
    calls, interrupted = [], []

    def interrupt_on_third(cell, **kwargs):
        calls.append(cell.cell_id)
        if len(calls) == 3 and not interrupted:
            interrupted.append(True)
            raise KeyboardInterrupt
        return real_run_cell(cell, **kwargs)

    monkeypatch.setattr(harness, "run_cell", interrupt_on_third)  # what the sweep's units call
    code, _, err = run(SMALL + ["--out", out], capsys)
    assert code == 130 and "--resume" in err
    kept = pd.read_csv(out / "results.csv")
    assert list(kept.cell_id) == calls[:2]

    calls.clear()
    code, stdout, _ = run(SMALL + ["--out", out, "--resume"], capsys)
    assert code == 0 and "2 of" in stdout
    assert not set(calls) & set(kept.cell_id)  # finished cells are not measured again
    final = pd.read_csv(out / "results.csv")
    assert final.cell_id.is_unique and set(kept.cell_id) <= set(final.cell_id)


def test_resume_with_other_settings_says_the_run_grows(tmp_path, capsys):
    """Found by a new user: --resume with another --tau said '116 of 166 units done' and added cells to the run
    without a word about the 110 finished ones outside the new grid."""
    out = tmp_path / "run"
    grid = ["--estimators", "gumbel_softmax", "reinforce", "--objectives", "tucker-0.45", "--estimates", "200",
            "--no-report", "--out", out]
    assert run([*grid, "--tau", "0.1", "1"], capsys)[0] == 0
    code, stdout, _ = run([*grid, "--tau", "0.3", "--resume"], capsys)
    assert code == 0 and "1 of 2 units done" in stdout, stdout
    assert "2 finished units of the run are outside this grid (other settings), kept" in stdout
    assert sorted(pd.read_csv(out / "results.csv").tau.fillna(0)) == [0, 0.1, 0.3, 1]
    code, stdout, _ = run([*grid, "--tau", "0.3", "--resume"], capsys)
    assert code == 0 and "3 of 3 units done" not in stdout and "2 of 2 units done" in stdout


def test_list_prints_registry_and_objectives(capsys):
    code, stdout, _ = run(["--list"], capsys)
    assert code == 0 and "reinforce_loo" in stdout and "quadratic-12" in stdout and "Williams 1992" in stdout


def test_module_entry_point_without_traceback(tmp_path):
    done = subprocess.run([sys.executable, "-m", "benchmarks.variance", "--estimators", "nope", "--out", str(tmp_path / "x")],
                          capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert done.returncode == 2 and "unknown estimator 'nope'" in done.stderr and "Traceback" not in done.stderr


def test_resume_refuses_other_settings_and_needs_out(tmp_path, capsys):
    out = tmp_path / "run"
    assert run(SMALL + ["--estimators", "reinforce", "--out", out], capsys)[0] == 0
    code, _, err = run(["--objectives", "tucker-0.45", "--estimates", "300", "--no-report", "--out", out, "--resume"], capsys)
    assert code == 2 and "--estimates 200" in err
    code, _, err = run(SMALL + ["--resume"], capsys)
    assert code == 2 and "--resume needs --out" in err
    # same settings, more estimators and temperatures: resumes and merges the run's metadata
    code, _, _ = run(SMALL + ["--estimators", "reinforce", "gumbel_softmax", "--tau", "0.5", "--out", out, "--resume"], capsys)
    meta = json.loads((out / "run.json").read_text())
    # taus lists the temperatures measured: the first run had no tempered estimator
    assert code == 0 and meta["taus"] == [0.5] and len(meta["commands"]) == 2
    assert meta["commands"][0].startswith("python -m benchmarks.variance")


def test_corrupt_result_files_get_a_message(tmp_path, capsys):
    out = tmp_path / "run"
    assert run(SMALL + ["--estimators", "reinforce", "--out", out], capsys)[0] == 0
    (out / "results.json").write_text("{ truncated")
    code, _, err = run(SMALL + ["--estimators", "reinforce", "--out", out, "--resume"], capsys)
    assert code == 2 and "results.json is not valid JSON" in err


@pytest.mark.parametrize("name,text,message", [
    ("results.json", "null", "results.json does not hold a list of rows with a cell_id each"),
    ("results.json", "{}", "results.json does not hold a list of rows with a cell_id each"),
    ("results.json", '[{"estimator": "x"}]', "results.json does not hold a list of rows with a cell_id each"),
    ("run.json", "[]", "run.json does not hold an object of run settings"),
    ("run.json", "null", "run.json does not hold an object of run settings"),
    ("parts/x.json", "[{", "x.json is not valid JSON"),
])
def test_damaged_run_files_are_refused_with_a_message_not_a_traceback(tmp_path, capsys, name, text, message):
    """Found trying to break a run: valid JSON of the wrong shape ended in a TypeError, KeyError or
    AttributeError traceback (exit 1), {} was read as no rows (every finished cell run again), and a truncated
    part file's clear message came as an uncaught traceback."""
    out = tmp_path / "run"
    assert run(SMALL + ["--estimators", "reinforce", "--out", out], capsys)[0] == 0
    (out / name).parent.mkdir(exist_ok=True)
    (out / name).write_text(text)
    code, _, err = run(SMALL + ["--estimators", "reinforce", "--out", out, "--resume"], capsys)
    assert code == 2 and message in err and "Traceback" not in err, err
    assert "move it away" in err


def test_resume_of_a_folder_that_holds_no_run_is_refused(tmp_path, capsys):
    """A mistyped folder with --resume started a new run there without a word."""
    code, _, err = run(SMALL + ["--out", tmp_path / "nonexist", "--resume"], capsys)
    assert code == 2 and "--resume: " in err and "holds no run to continue (no such folder)" in err
    assert not (tmp_path / "nonexist").exists()
    (tmp_path / "empty").mkdir()
    code, _, err = run(SMALL + ["--out", tmp_path / "empty", "--resume"], capsys)
    assert code == 2 and "(it holds no run.json)" in err


def test_resume_needs_the_threads_the_run_was_made_with(tmp_path, capsys):
    """Its rows depend on the torch threads: a run continued on others mixed rows of two numerics (found in
    review: --threads 2 --resume of a --threads 1 run exited 0, and run.json then said 2)."""
    out = tmp_path / "run"
    assert run(SMALL + ["--estimators", "reinforce", "--out", out], capsys)[0] == 0
    code, _, err = run(SMALL + ["--estimators", "reinforce", "gumbel_softmax", "--threads", "2", "--out", out,
                                "--resume"], capsys)
    assert code == 2 and f"{out} was run with --threads 1, not 2" in err and "resume with --threads 1" in err
    assert json.loads((out / "run.json").read_text())["worker_threads"] == 1


def test_a_folder_holding_only_a_stale_lock_is_run_there(tmp_path, capsys):
    """What a killed driver leaves (its lock, and the takeover guard of a later driver) is no foreign content."""
    import socket

    out = tmp_path / "run"
    out.mkdir()
    ended = subprocess.Popen(["true"])
    ended.wait()  # reaped: its pid names no process now
    (out / ".lock").write_text(json.dumps({"pid": ended.pid, "host": socket.gethostname(), "since": "then"}))
    (out / ".lock.takeover").write_text("")
    assert run(SMALL + ["--estimators", "reinforce", "--out", out], capsys)[0] == 0
    assert (out / "run.json").exists() and not (out / ".lock").exists()


def test_no_measurable_cell_is_an_error_with_reasons(tmp_path, capsys):
    code, out, err = run(["--estimators", "exact", "--objectives", "poly-2", "--out", tmp_path / "x"], capsys)
    assert code == 2 and "2^128 configurations" in out and "nothing could be measured" in err
    code, out, err = run(["--estimators", "reinforce_loo", "--objectives", "tucker-0.45", "--out", tmp_path / "y"], capsys)
    assert code == 2 and "needs S >= 2" in out and "see the reasons above" in err


def test_a_mistyped_estimator_is_refused_before_torch_is_imported(tmp_path):
    """Found trying to break runs: a mistyped --estimators name took 1.4-1.6 s to be refused, importing torch
    for the registry. The built-in names are read from the estimators' source instead; each CLI refuses the
    name right after parsing, with the registry's message."""
    script = ("import sys\n"
              "import benchmarks.variance as v, benchmarks.vae as e, benchmarks.trajectory as t\n"
              "for main in (v.main, e.main, t.main):\n"
              f"    print(main(['--estimators', 'reinfroce', 'nosuch*', '--out', {str(tmp_path / 'x')!r}]),\n"
              "          'torch' in sys.modules)\n"
              "from benchmarks.estimator_names import unknown_estimator_messages\n"
              "print(unknown_estimator_messages(['reinforce*', 'st_*', 'exact', 'relax'], []), 'torch' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.stdout.split("\n")[:4] == ["2 False"] * 3 + ["[] False"], done.stdout + done.stderr
    assert done.stderr.count("unknown estimator 'reinfroce'. Did you mean 'reinforce' or") == 3, done.stderr
    assert "Known: arm, disarm, exact" in done.stderr and not (tmp_path / "x").exists()


def test_a_mistyped_problem_is_refused_before_torch_is_imported(tmp_path):
    """A mistyped --objectives (variance) or --problems (trajectory) took 1.4-1.6 s to be refused, importing torch
    for the problem registry. The registered ids are written out in benchmarks.problem_names; each CLI refuses
    the id right after parsing, with the registry's message. Points of registered families, globs and aliases
    pass on to the registry."""
    out = str(tmp_path / "x")
    script = ("import sys\n"
              "import benchmarks.variance as v, benchmarks.trajectory as t\n"
              f"print(v.main(['--objectives', 'tuker-0.45', '--out', {out!r}]), 'torch' in sys.modules)\n"
              f"print(t.main(['--problems', 'tucker-0.45', 'tuker-0.45@theta=1', '--out', {out!r}]), "
              "'torch' in sys.modules)\n"
              "from benchmarks.problem_names import unknown_problem_messages\n"
              "print(unknown_problem_messages(['tucker-0.45@*', 'tucker-0.45@theta=0.7', 'tucker-0.45@theta=0', "
              "'seq-*', 'poly-2@logits=-3..3'], []), 'torch' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.stdout.split("\n")[:3] == ["2 False", "2 False", "[] False"], done.stdout + done.stderr
    assert "unknown problem 'tuker-0.45'. Did you mean 'tucker-0.45' or" in done.stderr, done.stderr
    assert "unknown problem family 'tuker-0.45'. Did you mean 'tucker-0.45' or" in done.stderr, done.stderr
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("pattern", ["tuker-0.45", "tuker-*", "tuker-0.45@theta=1", "tucker-0.45@",
                                     "tucker-0.4[5@theta=1", "tucker-0.4[6]", "nosuch@*", "[t]uker-0.45"])
def test_a_problem_refused_without_torch_gets_the_registrys_message(pattern):
    """Found in review: the early check added a hint the registry gives only to an empty point."""
    from benchmarks.problem_names import problem_message
    from benchmarks.tasks.registry import UnknownProblemError, list_problems

    with pytest.raises(UnknownProblemError) as refused:
        list_problems([pattern])
    assert problem_message(pattern) == str(refused.value)


@pytest.mark.parametrize("pattern", ["tucker-0.45@theta=-2.0", "tucker-0.45@p=0.9", "tucker-0.45@theta=0",
                                     "dirichlet-quadratic-4@alpha=[ 1, 2,3,4]", "tucker-0.4[59]", "seq-*", "*",
                                     "gauss-square-3@sigma=0.5,mu=-0.5", "poly-2@logits=-3..3.0"])
def test_a_problem_the_registry_takes_is_not_refused_without_torch(pattern):
    from benchmarks.problem_names import problem_message
    from benchmarks.tasks.registry import list_problems

    assert list_problems([pattern]) and problem_message(pattern) is None


def test_the_problem_ids_written_out_are_the_registrys():
    """benchmarks.problem_names lists the registered ids so that a typo is refused without torch; the registry
    is the truth. On a difference this prints the lines to paste into benchmarks/problem_names.py."""
    import textwrap

    import benchmarks.problem_names as written
    from benchmarks.tasks import registry

    def lines(name, ids):
        body = textwrap.fill(", ".join(map(repr, ids)), 112, initial_indent="    ", subsequent_indent="    ",
                             break_on_hyphens=False, break_long_words=False)
        return f"{name} = (\n{body},\n)"

    for name in ("FAMILIES", "PROBLEMS", "ALIASES"):
        truth = tuple(getattr(registry, name))
        assert getattr(written, name) == truth, f"paste into benchmarks/problem_names.py:\n{lines(name, truth)}"


def test_the_name_messages_without_torch_are_the_registrys():
    from benchmarks.estimator_names import unknown_name_message as written
    from estimators.registry import unknown_name_message

    for kind, name, known in [("estimator", "reinfroce", ["reinforce", "rebar", "relax"]), ("problem", "x", ["a"]),
                              ("problem family", "tuker-0.45", ["tucker-0.499", "tucker-0.45", "poly-2"])]:
        assert written(kind, name, known) == unknown_name_message(kind, name, known)


def test_the_estimator_names_read_from_the_source_are_the_registrys():
    """benchmarks.estimator_names reads the names from the register(...) calls; the registry is the truth."""
    from benchmarks.estimator_names import builtin_names

    done = subprocess.run([sys.executable, "-c", "import estimators; print(' '.join(sorted(estimators.REGISTRY)))"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert builtin_names() == done.stdout.split()


def test_help_and_messages_promise_only_what_each_cli_has(tmp_path):
    """Found by a new user: the VAE and trajectory --help promised a best-temperature answer and a --list they do
    not have, and the trajectory CLI's CUDA message suggested --device all, which it refuses."""
    helps = {cli: subprocess.run([sys.executable, "-m", f"benchmarks.{cli}", "--help"], cwd=ROOT, capture_output=True,
                                 text=True, check=True).stdout for cli in ("variance", "vae", "trajectory")}
    assert "best-temperature answer" in " ".join(helps["variance"].split())
    for cli in ("vae", "trajectory"):
        text = " ".join(helps[cli].split())
        assert "best-temperature" not in text and "python -m benchmarks.variance --list shows" in text, cli
    if not torch.cuda.is_available():
        from benchmarks import trajectory

        code = trajectory.main(["--device", "cuda", "--out", str(tmp_path / "run")])
        assert code == 2


def test_the_trajectory_cuda_message_does_not_suggest_device_all():
    from benchmarks.cli_common import UsageError, resolve_devices

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(UsageError) as refused:
        resolve_devices("cuda", all_allowed=False)
    assert str(refused.value).endswith("use --device cpu")
    with pytest.raises(UsageError, match="or --device all to use whatever is present"):
        resolve_devices("cuda")


@pytest.mark.parametrize("made_by,resumed_by", [("vae", "variance"), ("trajectory", "variance"),
                                                ("variance", "vae"), ("variance", "trajectory")])
def test_a_folder_of_another_cli_is_refused_first_and_left_untouched(tmp_path, capsys, made_by, resumed_by):
    """Found by a tester: --resume with the wrong CLI appended its rows to the run and rewrote run.json's kind,
    gave a TypeError traceback (a trajectory run resumed by the sweep), or was refused for a wrong reason
    ("written by an older gradbench", "--samples [1], not 1")."""
    import benchmarks.trajectory as trajectory
    import benchmarks.vae as vae

    out = tmp_path / "run"
    out.mkdir()
    files = {"run.json": json.dumps({"kind": made_by, "started": "then", "samples": [1], "settings": {}}),
             "results.json": "[]", "results.csv": "\n"}
    for name, text in files.items():
        (out / name).write_text(text)
    main = {"variance": variance.main, "vae": vae.main, "trajectory": trajectory.main}[resumed_by]
    code = main(["--estimators", "reinforce", "--samples", "1", "--out", str(out), "--resume"])
    err = capsys.readouterr().err
    what = {"vae": "a VAE run", "trajectory": "a trajectory run", "variance": "a variance sweep"}[made_by]
    assert code == 2 and f"{out} holds {what} (kind '{made_by}')" in err, err
    assert f"resume it with python -m benchmarks.{made_by} --resume --out {out}" in err
    assert {f.name: f.read_text() for f in out.iterdir()} == files
    # With the run's command recorded, the suggestion is that command (its settings) with --resume: the bare
    # CLI's defaults were refused in turn ("was run with --hidden 32, not 512 256"; found by a new user).
    recorded = json.loads(files["run.json"])
    recorded["commands"] = [f"python -m benchmarks.{made_by} --hidden 32 --out elsewhere"]
    (out / "run.json").write_text(json.dumps(recorded))
    assert main(["--estimators", "reinforce", "--samples", "1", "--out", str(out), "--resume"]) == 2
    assert f"resume it with python -m benchmarks.{made_by} --hidden 32 --out {out} --resume," in capsys.readouterr().err


def test_a_run_whose_every_cell_raised_is_a_failed_run_with_its_resume_command(tmp_path, capsys, monkeypatch):
    """Found by a tester: a run whose only cells raised exited 2 ("nothing could be measured", the code of a
    usage error) and printed no --resume command, though --resume runs them once the cause is fixed."""
    def raises(cell, **kwargs):
        raise RuntimeError("boom in a user's estimator")

    monkeypatch.setattr(harness, "run_cell", raises)
    out = tmp_path / "run"
    code, stdout, err = run(SMALL + ["--estimators", "reinforce", "--out", out], capsys)
    assert code == 1 and "boom in a user's estimator" in err and "nothing could be measured" not in err
    assert err.splitlines()[-1].endswith(f"--out {out} --resume") and "holds no rows" in stdout
    assert len(list((out / "errors").iterdir())) == 2


def test_a_result_file_is_on_disk_before_it_replaces_the_old_one(tmp_path, monkeypatch):
    """The rename could reach the disk before the data: a power cut then left an empty results file."""
    import os

    from benchmarks.results import atomic_write

    calls, fsync, replace = [], os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append("fsync"), fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append("replace"), replace(a, b))[1])
    atomic_write(tmp_path / "results.json", "[]")
    assert calls == ["fsync", "replace"] and (tmp_path / "results.json").read_text() == "[]"
