"""What `--resume` says it has done, and the progress bar it starts: steps held in unfinished runs'
checkpoints count as done (read from the step file beside each checkpoint, nothing unpickled), the bar
starts at them, and a unit advances it only by the steps it runs now, so that tqdm's rate, (n - initial)
/ elapsed, and its estimate of the time left are those of this invocation.
"""
from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from tqdm import tqdm

import benchmarks.sweep as sweep
import benchmarks.vae as vae_cli
from benchmarks.checkpoints import checkpoint_path, save_checkpoint, saved_step, step_path
from benchmarks.cli_common import Terminated
from benchmarks.executors import InProcess
from benchmarks.results import RunFolder
from benchmarks.units import run_unit
from tests.helpers import training_interrupted_at

# The settings of tests/test_vae.py's interrupted run: the 150th call of VAE.loss falls between the checkpoint
# at step 100 and the end at step 200.
TINY = ["--latent", "categorical:3x4", "--steps", "200", "--evals", "2", "--grad-estimates", "20", "--iw-samples",
        "5", "--no-report"]


class RecordingBar(tqdm):
    """The run loop's progress bar, with every advance kept."""
    made: list["RecordingBar"] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.advances: list[int] = []
        RecordingBar.made.append(self)

    def update(self, n=1):
        self.advances.append(n)
        return super().update(n)


@pytest.fixture
def bars(monkeypatch):
    RecordingBar.made = []
    monkeypatch.setattr(sweep, "tqdm", RecordingBar)
    return RecordingBar.made


@pytest.fixture(scope="module")
def interrupted_grid(tmp_path_factory):
    """A run folder where reinforce's run finished (200 steps) and gumbel_softmax's stopped between its
    checkpoint at step 100 and its end; each test resumes a copy."""
    out = tmp_path_factory.mktemp("interrupted") / "run"
    assert vae_cli.main([*TINY, "--estimators", "reinforce", "--out", str(out)]) == 0
    with training_interrupted_at(150):
        assert vae_cli.main([*TINY, "--estimators", "reinforce", "gumbel_softmax", "--out", str(out),
                             "--resume"]) == 130
    frame = pd.read_csv(out / "results.csv")
    assert list(frame[frame.estimator == "gumbel_softmax"].step) == [100]
    return out


def copied(folder, tmp_path):
    return Path(shutil.copytree(folder, tmp_path / "run"))


@pytest.mark.parametrize("executor", [[], ["--workers", "2"]], ids=["in-process", "pool"])
def test_resume_counts_checkpointed_steps_and_the_bar_advances_by_the_steps_run_now(interrupted_grid, tmp_path,
                                                                                   capsys, bars, executor):
    out = copied(interrupted_grid, tmp_path)
    assert saved_step(next((out / "checkpoints").glob("*gumbel_softmax*.pt"))) == 100
    assert vae_cli.main([*TINY, "--estimators", "reinforce", "gumbel_softmax", "--out", str(out), "--resume",
                         *executor]) == 0
    said = capsys.readouterr().out
    assert f"resuming {out}: 1 of 2 units done, 1 to resume from its checkpoint (300 of 400 steps)" in said, said
    [bar] = bars
    # the bar holds the runs still to go (gumbel_softmax's 200 steps), starts at its checkpoint, and is advanced
    # by the 100 steps trained now only (a worker's progress comes back through its pipe)
    assert (bar.total, bar.initial, sum(bar.advances), bar.n) == (200, 100, 100, 200)
    assert all(n > 0 for n in bar.advances)
    final = pd.read_csv(out / "results.csv")
    assert list(final[final.estimator == "gumbel_softmax"].step) == [100, 200]


def test_a_checkpoint_without_a_step_file_still_resumes_and_the_bar_ends_at_its_total(interrupted_grid, tmp_path,
                                                                                     capsys, bars):
    """A checkpoint written before step files existed: counted as 0 steps done (it is never loaded to count),
    resumed all the same; its 100 steps then reach the bar as the run resumes, which ends at its total."""
    out = copied(interrupted_grid, tmp_path)
    checkpoint = next((out / "checkpoints").glob("*gumbel_softmax*.pt"))
    step_path(checkpoint).unlink()
    assert saved_step(checkpoint) == 0
    assert vae_cli.main([*TINY, "--estimators", "reinforce", "gumbel_softmax", "--out", str(out), "--resume"]) == 0
    assert f"resuming {out}: 1 of 2 units done (200 of 400 steps)" in capsys.readouterr().out
    [bar] = bars
    assert (bar.total, bar.initial, sum(bar.advances), bar.n) == (200, 0, 200, 200)
    final = pd.read_csv(out / "results.csv")
    assert list(final[final.estimator == "gumbel_softmax"].step) == [100, 200]
    assert json.loads(step_path(checkpoint).read_text()) == {"step": 200}  # written with the next checkpoint


def test_the_step_file_is_written_beside_each_checkpoint_and_read_without_loading_it(tmp_path):
    path = checkpoint_path(tmp_path, "bernoulli:4|analytic|reinforce|tau0=1.0|seed=0|cpu")
    assert saved_step(path) == 0  # no checkpoint
    save_checkpoint(path, {"step": 300, "model": {"w": torch.zeros(2)}})
    assert step_path(path).name.endswith(".step.json") and saved_step(path) == 300
    path.write_bytes(b"not a checkpoint")  # never read to count its step
    assert saved_step(path) == 300
    for text in ("", "{", '{"step": "300"}', '{"step": -4}', "[]"):  # unreadable: count none, resume anyway
        step_path(path).write_text(text)
        assert saved_step(path) == 0, text
    step_path(path).write_text('{"step": 300}')
    path.unlink()  # a deleted checkpoint restarts its run from step 0, whatever its step file says
    assert saved_step(path) == 0


@dataclasses.dataclass(frozen=True)
class ScriptedUnit:
    """A unit that says `done` of its `steps` are done, then advances the bar by `advances`."""
    unit_id: str
    steps: int
    done: int
    advances: tuple
    imports: tuple = ()

    def steps_done(self, run_folder) -> int:
        return self.done

    def run(self, sink) -> str:
        for n in self.advances:
            sink.advance(n)
        sink.add({"cell_id": self.unit_id})
        return "ok"


class ReportsAtTheEnd(InProcess):
    """Like Ray: no progress while a unit runs, its whole size when it ends."""

    def run(self, units, run_folder, on_progress, on_end) -> None:
        for unit in units:
            status = run_unit(unit, run_folder, self.context())
            on_progress(unit.unit_id, unit.steps)
            on_end(unit.unit_id, status, False)


@pytest.mark.parametrize("executor,advances,initial", [
    (InProcess, (-60, 100), 0),  # resumed from step 0 though its step file said 60: takes them back, then 100
    (InProcess, (40, 100), 60),  # a unit that reports more than its size: the bar stops at its total
    (ReportsAtTheEnd, (), 60),  # Ray: the whole size at the end counts the 40 steps left only
], ids=["restarted-from-0", "over-reported", "whole-size-at-the-end"])
def test_each_units_count_stays_within_its_steps(tmp_path, bars, capsys, executor, advances, initial):
    units = [ScriptedUnit("a", 100, 60, advances), ScriptedUnit("b", 50, 0, (50,))]
    folder = RunFolder(tmp_path / "run")
    assert sweep.run_loop(folder=folder, units=units, done=lambda f: f.done, meta={"started": "earlier"},
                          executor=executor(), command=["python", "-m", "x"]) == 0
    assert re.search(r"0 of 2 units done, 1 to resume from its checkpoint \(60 of 150 cells\)", capsys.readouterr().out)
    [bar] = bars
    assert (bar.total, bar.initial, bar.n) == (150, initial, 150)


@pytest.mark.parametrize("stop,code", [(Terminated, 143), (KeyboardInterrupt, 130)], ids=["sigterm", "ctrl-c"])
def test_a_signal_while_the_report_is_drawn_exits_with_its_code_and_says_what_is_kept(tmp_path, capsys, stop, code):
    """Found in review: SIGTERM during the report (a third of the main command's time) ended in a traceback
    and exit 1, which means "a worker died". The rows are written before the report, so the run says so and
    how to draw the report, with the signal's exit code."""
    def render(path):
        raise stop

    folder = RunFolder(tmp_path / "run")
    assert sweep.run_loop(folder=folder, units=[ScriptedUnit("a", 1, 0, (1,))], done=lambda f: f.done, meta={},
                          executor=InProcess(), command=["python", "-m", "x"], render=render) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"interrupted while finishing: the rows are kept in {folder.path}" in err
    assert f"draw the report with python -m reports {folder.path}" in err
    assert len(pd.read_csv(folder.path / "results.csv")) == 1
    assert "finished" in json.loads((folder.path / "run.json").read_text())


@pytest.mark.parametrize("stop,code", [(Terminated, 143), (KeyboardInterrupt, 130)], ids=["sigterm", "ctrl-c"])
def test_a_signal_before_the_units_start_exits_with_its_code_and_the_resume_command(tmp_path, capsys, monkeypatch,
                                                                                    stop, code):
    """Found trying to break a run: SIGTERM just after the "resuming ..." line, while the progress bar was being
    made, ended in a traceback and exit 1. Between taking the lock and starting the units it now stops as at
    any other moment: the signal's exit code, what is kept, and the command that continues."""
    def no_bar(*args, **kwargs):
        raise stop

    monkeypatch.setattr(sweep, "tqdm", no_bar)
    folder = RunFolder(tmp_path / "run")
    assert sweep.run_loop(folder=folder, units=[ScriptedUnit("a", 1, 0, (1,))], done=lambda f: f.done, meta={},
                          executor=InProcess(), command=["python", "-m", "x"]) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"interrupted: 0 finished rows are kept in {folder.path}; continue with python -m x --out" in err
    assert not (folder.path / ".lock").exists()


def test_a_signal_before_run_json_is_written_prints_the_command_that_starts_it_again(tmp_path, capsys):
    """Before run.json exists there is nothing to resume, and --resume on such a folder is refused: the printed
    command is the run's own (found in review: it printed a --resume command that was then refused)."""
    def interrupted(folder):
        raise KeyboardInterrupt

    folder = RunFolder(tmp_path / "run")
    assert sweep.run_loop(folder=folder, units=[ScriptedUnit("a", 1, 0, (1,))], done=interrupted, meta={},
                          executor=InProcess(), command=["python", "-m", "x"]) == 130
    err = capsys.readouterr().err
    assert f"continue with python -m x --out {folder.path}\n" in err and "--resume" not in err
