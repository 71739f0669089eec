"""Estimators from outside the package: `--import MODULE` on the sweep, the "gradbench.estimators" entry-point
group of installed plugins, and `--hparam` sweeps of declared hyperparameters (with each estimator's declared
default when nothing is swept)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

import benchmarks.variance as variance
import estimators

ROOT = Path(__file__).parents[1]
SMALL = ["--objectives", "tucker-0.45", "--estimates", "200", "--no-report"]

PLUGIN_SOURCE = '''
import estimators


@estimators.register("{name}", needs=("log_prob",), unbiased=True,
                     hparams={{"scale": estimators.HParam(1.0, estimators.greater_than(0))}},
                     summary="REINFORCE scaled by `scale` (a plugin of the tests)", reference="tests/test_plugins.py")
def plugin_estimator(f, dist, num_samples=1, *, scale=1.0):
    return estimators.get("reinforce")(f, dist, num_samples) * scale
'''


def python(args: list[str], pythonpath: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    """`python ARGS` from the project root, as a user runs it, with pythonpath in front of the import path."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(pythonpath), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=timeout)


def run(argv, capsys):
    try:
        code = variance.main([str(a) for a in argv])
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def hparams_of(frame: pd.DataFrame, estimator: str) -> list[dict]:
    return [json.loads(text) for text in frame[frame.estimator == estimator].hparams]


# --- --import MODULE ------------------------------------------------------------------------------------

def test_import_option_measures_the_estimators_a_module_registers(tmp_path):
    (tmp_path / "halved_plugin.py").write_text(PLUGIN_SOURCE.format(name="plugin_halved_reinforce"))
    out = tmp_path / "run"
    done = python(["-m", "benchmarks.variance", "--import", "halved_plugin", "--estimators", "plugin_halved_reinforce",
                   *SMALL, "--hparam", "plugin_halved_reinforce:scale=0.5,1", "--out", str(out)], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    frame = pd.read_csv(out / "results.csv")
    assert set(frame.estimator) == {"plugin_halved_reinforce"} and set(frame.objective) == {"tucker-0.45"}
    assert sorted(h["scale"] for h in hparams_of(frame, "plugin_halved_reinforce")) == [0.5, 1.0]
    assert (frame.n_estimates == 200).all() and (frame.nonfinite == 0).all()
    assert "--import halved_plugin" in json.loads((out / "run.json").read_text())["commands"][0]


def test_a_sweep_whose_estimator_gives_non_finite_estimates_says_so(tmp_path):
    """Found by a tester: an estimator whose estimates were all nan ended the sweep with exit 0 and no word of it."""
    source = PLUGIN_SOURCE.format(name="plugin_nan_reinforce").replace("* scale", "* scale * float('nan')")
    (tmp_path / "nan_plugin.py").write_text(source)
    done = python(["-m", "benchmarks.variance", "--import", "nan_plugin", "--estimators", "plugin_nan_reinforce",
                   "reinforce", *SMALL, "--out", str(tmp_path / "run")], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert ("note: 1 cell gave non-finite estimates, left out of their figures (the report marks such a cell "
            "degenerate, or lists it as left out where none was finite): "
            "plugin_nan_reinforce[scale=1]|tucker-0.45|S=1|N=200|cpu|float32|seed=0 (200 of 200)") in done.stderr


def test_import_of_a_missing_module_is_a_message_before_anything_runs(tmp_path, capsys):
    start = time.perf_counter()
    # every estimator on the default problems at 10,000 estimates: minutes, if the sweep ran first
    code, _, err = run(["--import", "no_such_module_gradbench", "--no-report", "--out", tmp_path / "x"], capsys)
    assert code == 2 and "no_such_module_gradbench" in err and "PYTHONPATH" in err and "Traceback" not in err
    assert time.perf_counter() - start < 5
    assert not (tmp_path / "x").exists()


def test_import_of_a_module_that_fails_names_it_and_its_error(tmp_path, capsys, monkeypatch):
    (tmp_path / "failing_plugin_gradbench.py").write_text("raise RuntimeError('the plugin is broken on purpose')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    code, _, err = run(["--import", "failing_plugin_gradbench", *SMALL, "--out", tmp_path / "x"], capsys)
    assert code == 2 and "--import failing_plugin_gradbench failed" in err
    assert "RuntimeError: the plugin is broken on purpose" in err and "Traceback" not in err


# --- entry points of installed plugins ----------------------------------------------------------------------

def install_fake_distribution(site: Path, entry_points: dict[str, str]) -> None:
    """What `pip install myplugin` leaves on the path: a dist-info with METADATA and entry_points.txt."""
    info = site / "myplugin-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: myplugin\nVersion: 0.1\n")
    lines = "".join(f"{name} = {module}\n" for name, module in entry_points.items())
    (info / "entry_points.txt").write_text(f"[gradbench.estimators]\n{lines}")


CHECK_PLUGINS = textwrap.dedent("""
    import sys, estimators
    print(estimators.PLUGINS)
    print('plugin_x' in estimators.REGISTRY)
    print('reinforce' in estimators.REGISTRY and estimators.get_spec('rebar').hparams['tau'] == 0.5)
    from benchmarks.variance import main
    sys.exit(main(sys.argv[1:]))
""")


def test_an_installed_plugin_registers_its_estimators_on_import(tmp_path):
    site = tmp_path / "site"
    install_fake_distribution(site, {"mine": "myplugin_mod"})
    (site / "myplugin_mod.py").write_text(PLUGIN_SOURCE.format(name="plugin_x"))
    out = tmp_path / "run"
    # no --import: the entry point alone makes plugin_x known to the sweep
    done = python(["-c", CHECK_PLUGINS, "--estimators", "plugin_x", *SMALL, "--out", str(out)], site)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[:3] == ["['mine']", "True", "True"]
    assert "failed to load" not in done.stderr
    assert hparams_of(pd.read_csv(out / "results.csv"), "plugin_x") == [{"scale": 1.0}]


def test_a_broken_plugin_is_a_warning_naming_it_and_the_others_still_load(tmp_path):
    site = tmp_path / "site"
    install_fake_distribution(site, {"broken": "broken_plugin_mod", "mine": "myplugin_mod",
                                     "clash": "clashing_plugin_mod"})
    (site / "broken_plugin_mod.py").write_text("raise ImportError('needs a library that is not installed')\n")
    (site / "clashing_plugin_mod.py").write_text(PLUGIN_SOURCE.format(name="reinforce"))  # a built-in's name
    (site / "myplugin_mod.py").write_text(PLUGIN_SOURCE.format(name="plugin_x"))
    done = python(["-c", CHECK_PLUGINS, "--estimators", "reinforce", "plugin_x", *SMALL, "--out",
                   str(tmp_path / "run")], site)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[:3] == ["['mine']", "True", "True"]
    assert "gradbench plugin 'broken' (broken_plugin_mod)" in done.stderr
    assert "ImportError: needs a library that is not installed" in done.stderr
    assert "gradbench plugin 'clash' (clashing_plugin_mod)" in done.stderr and "already registered" in done.stderr
    frame = pd.read_csv(tmp_path / "run" / "results.csv")
    assert set(frame.estimator) == {"reinforce", "plugin_x"}
    assert hparams_of(frame, "reinforce") == [{}]  # the built-in, not the clashing plugin's (which takes scale)


# --- --hparam --------------------------------------------------------------------------------------------

def test_hparam_sweeps_a_declared_hyperparameter(tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, _ = run(["--estimators", "gumbel_rao", *SMALL, "--hparam", "gumbel_rao:k=1,3", "--out", out], capsys)
    assert code == 0 and "left out" not in stdout
    frame = pd.read_csv(out / "results.csv")
    assert sorted(h["k"] for h in hparams_of(frame, "gumbel_rao")) == [1, 3]
    assert all(h["tau"] == estimators.get_spec("gumbel_rao").hparams["tau"] for h in hparams_of(frame, "gumbel_rao"))
    assert frame.cell_id.is_unique


def test_a_value_breaking_its_constraint_leaves_that_cell_out_with_the_reason_once(tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, err = run(["--estimators", "gumbel_rao", "reinforce", "--objectives", "tucker-0.45", "tucker-0.499",
                             "--estimates", "200", "--no-report", "--hparam", "gumbel_rao:k=0,2", "--out", out], capsys)
    assert code == 0, err
    reason = [line for line in stdout.splitlines() if "k=0" in line]
    assert len(reason) == 1, stdout  # said once, for both problems
    assert all(part in reason[0] for part in ("'gumbel_rao'", "k=0", "k >= 1, an integer")), reason
    frame = pd.read_csv(out / "results.csv")
    assert sorted(h["k"] for h in hparams_of(frame, "gumbel_rao")) == [2, 2]
    assert len(frame[frame.estimator == "reinforce"]) == 2
    meta = json.loads((out / "run.json").read_text())
    assert any("k=0 breaks its constraint" in line for line in meta["skipped"])


def test_the_only_value_breaking_its_constraint_is_an_error(tmp_path, capsys):
    code, stdout, err = run(["--estimators", "gumbel_rao", *SMALL, "--hparam", "gumbel_rao:k=0",
                             "--out", tmp_path / "x"], capsys)
    assert code == 2 and "k >= 1" in stdout and "no (estimator, objective, S) combination" in err


@pytest.mark.parametrize("estimators_chosen,hparam,message", [
    (["gumbel_rao"], "nosuch:k=1", "unknown estimator 'nosuch'"),
    (["gumbel_rao"], "gumbel_roa:k=1", "Did you mean 'gumbel_rao'"),
    (["reinforce"], "gumbel_rao:k=1", "gumbel_rao is not among the chosen estimators"),
    (["reinforce"], "k=1", "no chosen estimator has a hyperparameter 'k'"),
    (["gumbel_rao"], "gumbel_rao:kk=1", "'gumbel_rao' has no hyperparameter 'kk'; it takes tau (default 1.0), k (default 10)"),
    (["gumbel_rao"], "gumbel_rao:k=many", "'many' is not a value of gumbel_rao's k"),
    (["gumbel_rao"], "k=", "write NAME=V1,V2"),
])
def test_an_hparam_that_cannot_be_used_is_a_usage_error(tmp_path, capsys, estimators_chosen, hparam, message):
    code, _, err = run(["--estimators", *estimators_chosen, *SMALL, "--hparam", hparam, "--out", tmp_path / "x"], capsys)
    assert code == 2 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "x" / "results.csv").exists()


@pytest.mark.parametrize("settings,message", [
    (["--tau", "0.5", "--hparam", "tau=1"], "--tau (or --tau-grid) and --hparam tau=1 both set"),
    (["--hparam", "tau=0.5", "--hparam", "tau=1"], "--hparam tau is given twice (0.5 and 1); give every value in "
                                                   "one: tau=0.5,1"),
    (["--hparam", "gumbel_softmax:tau=0.5", "gumbel_softmax:tau=0.5,2"], "gumbel_softmax:tau=0.5,2"),
])
def test_two_settings_of_one_hyperparameter_are_a_usage_error(tmp_path, capsys, settings, message):
    """Found by a new user: the later of two settings silently won (--tau 0.5 --hparam tau=1 ran tau=1 only)."""
    code, _, err = run(["--estimators", "gumbel_softmax", *SMALL, *settings, "--out", tmp_path / "x"], capsys)
    assert code == 2 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "x" / "results.csv").exists()


def test_a_scoped_temperature_beside_tau_sets_that_estimator_only(tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = run(["--estimators", "gumbel_softmax", "reinmax", *SMALL, "--tau", "1.5",
                        "--hparam", "gumbel_softmax:tau=0.5", "--out", out], capsys)
    assert code == 0, err
    assert pd.read_csv(out / "results.csv").set_index("estimator").tau.to_dict() == {"gumbel_softmax": 0.5,
                                                                                     "reinmax": 1.5}


def test_a_tau_an_estimator_cannot_take_leaves_it_out_with_the_reason(tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, _ = run(["--estimators", "reinmax", "gumbel_softmax", *SMALL, "--tau", "0.5", "--out", out], capsys)
    assert code == 0
    reason = [line for line in stdout.splitlines() if "reinmax" in line]
    assert len(reason) == 1 and "tau >= 1" in reason[0] and "tau=0.5" in reason[0], stdout
    frame = pd.read_csv(out / "results.csv")
    assert list(frame.estimator) == ["gumbel_softmax"] and list(frame.tau) == [0.5]


def test_without_tau_each_estimator_runs_at_its_declared_default(tmp_path, capsys):
    """Regression: without --tau every tempered estimator used to run at 1.0; REBAR and RELAX declare 0.5."""
    out = tmp_path / "run"
    code, _, err = run(["--estimators", "rebar", "relax", "gumbel_softmax", *SMALL, "--out", out], capsys)
    assert code == 0, err
    frame = pd.read_csv(out / "results.csv").set_index("estimator")
    assert frame.tau.to_dict() == {"rebar": 0.5, "relax": 0.5, "gumbel_softmax": 1.0}
    for name in ("rebar", "relax", "gumbel_softmax"):
        assert json.loads(frame.loc[name, "hparams"])["tau"] == estimators.get_spec(name).hparams["tau"]
    assert json.loads((out / "run.json").read_text())["taus"] == [0.5, 1.0]
