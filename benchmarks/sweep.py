"""The one run loop: every CLI builds its units of work (benchmarks.units) and hands them here.

It takes the folder's lock, writes the run's metadata, skips finished units on `--resume` (saying
how many units and steps are done, the steps of unfinished units' checkpoints included), shows one
progress bar over the steps of the units it runs (starting at the steps their checkpoints hold; its
estimate of the time left counts the units not yet started: the rate is averaged over the steps run
since this invocation started, so steps done before do not inflate it), lets an
executor (benchmarks.executors) run them, absorbs each unit's rows as it ends, collects the units
left out with their reasons, keeps everything finished on Ctrl-C or SIGTERM (and prints the resume
command), stamps the end, renders the report and returns the exit code: 0, 1 when a worker died or
a unit failed or could not resume (even every unit: the resume command runs them once fixed), 2 when
every unit was left out (nothing could be measured), 130 when interrupted by Ctrl-C and 143 by
SIGTERM (128 + the signal's number, the shells' convention, so a scheduler sees which it was).
"""
from __future__ import annotations

import dataclasses
import shlex
import sys
import time
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from benchmarks.cli_common import exit_code, sigterm_as_interrupt
from benchmarks.machine import machine_info, now
from benchmarks.results import RunFolder
from benchmarks.units import steps_done
from reports.files import resume_command

FLUSH_EVERY_S = 1.0


@dataclasses.dataclass
class Outcome:
    """What the loop saw: units left out (with reasons), units that stopped early or failed."""
    left_out: list[str] = dataclasses.field(default_factory=list)
    stopped: list[str] = dataclasses.field(default_factory=list)
    failed: list[str] = dataclasses.field(default_factory=list)


def run_loop(*, folder: RunFolder, units: list, done: Callable[[RunFolder], set[str]], meta: dict, executor,
             command: list[str],
             step_name: str = "cell", label: Callable = lambda unit: unit.unit_id,
             render: Callable[[Path], Path] | None = None, described: Callable[[str], str] = lambda uid: uid) -> int:
    """Run the units not in `done(folder)` on `executor` into `folder`; the process exit code. `done` is
    asked once the rows a stopped run left in part files are recovered, so none of them is redone."""
    executor.prepare()  # Ray starts or joins here, before anything is written (a failure: ExecutorError)
    with folder.lock(), sigterm_as_interrupt():
        try:
            return _run_locked(folder, units, done, meta, executor, command, step_name, label, render, described)
        except KeyboardInterrupt as stop:  # before the units started (the later moments have their own handlers)
            again = resume_command(command, folder.path)
            if not folder.holds_run():  # no run.json yet: nothing to resume, the same command into this folder
                again.remove("--resume")
            print(f"\ninterrupted: {len(folder.rows)} finished rows are kept in {folder.path}; continue with "
                  f"{shlex.join(again)}", file=sys.stderr)
            return exit_code(stop)


def _run_locked(folder, units, done, meta, executor, command, step_name, label, render, described) -> int:
    """run_loop's work, with the folder's lock held and SIGTERM raising Terminated."""
    recovered = folder.absorb_all()  # rows of units a killed run had finished part of
    done = done(folder)
    resuming = "started" in meta
    meta.setdefault("started", now())
    meta.setdefault("commands", []).append(shlex.join(command))
    meta.update(machine_info())
    meta.update({"executor": executor.name, "concurrency": executor.concurrency,
                 "worker_threads": executor.threads, "units_planned": len(units)})  # of the last command's grid
    folder.write_meta(meta)
    todo = [unit for unit in units if unit.unit_id not in done]
    # Steps of the units to run that a stopped run did already (a VAE run's checkpoint), from files the
    # units read without unpickling anything: the units skip them, and the bar starts with them.
    counted = {unit.unit_id: steps_done(unit, folder.path) for unit in todo}
    if resuming or done or recovered:
        finished = [unit for unit in units if unit.unit_id in done]
        begun = sum(1 for steps in counted.values() if steps)
        print(f"resuming {folder.path}: {len(finished)} of {len(units)} units done"
              + (f", {begun} to resume from {'its checkpoint' if begun == 1 else 'their checkpoints'}"
                 if begun else "")
              + f" ({sum(u.steps for u in finished) + sum(counted.values())} of {sum(u.steps for u in units)} "
                f"{step_name}s)"
              + (f"; {recovered} rows recovered from units a stopped run had begun" if recovered else "")
              + (f"; {outside} finished units of the run are outside this grid (other settings), kept: the run "
                 "grows by this grid's units not done" if (outside := len(set(done) - {unit.unit_id for unit in units})) else ""))
    outcome = Outcome()
    by_id = {unit.unit_id: unit for unit in todo}
    # smoothing=0: the rate is averaged over the whole run, so the estimate of the time left counts every
    # unit not yet started at the pace seen so far, not the pace of the last few updates. tqdm takes that
    # rate as (n - initial) / elapsed: the steps done before this invocation are in `initial`, not in the rate.
    with tqdm(total=sum(u.steps for u in todo), initial=sum(counted.values()), desc=f"{step_name}s",
              unit=step_name, smoothing=0, dynamic_ncols=True) as bar:
        def on_progress(unit_id: str, steps: int) -> None:
            # Each unit's count stays within 0..steps: a negative advance (a unit that resumed from an
            # earlier step than its step file said) takes back steps counted as done before; on Ray a run of
            # one-step units reports each when it ends.
            steps = max(-counted[unit_id], min(steps, by_id[unit_id].steps - counted[unit_id]))
            counted[unit_id] += steps
            if steps < 0:
                bar.initial += steps
            bar.update(steps)
            if step_name != "cell":
                bar.set_postfix_str(label(by_id[unit_id]), refresh=False)

        last_flush = [time.monotonic()]

        def on_end(unit_id: str, status: str, failed: bool) -> None:
            folder.absorb(unit_id, write=False)
            if time.monotonic() - last_flush[0] > FLUSH_EVERY_S:  # results.csv is at most a second behind
                folder.flush(units_running=True)
                last_flush[0] = time.monotonic()
            line = f"{described(unit_id)}: {status.removeprefix('failed: ')}"
            if failed or status.startswith("failed: "):  # a dead worker, a checkpoint it could not resume
                outcome.failed.append(line)
                tqdm.write(line, file=sys.stderr)
            elif status.startswith("left out: "):
                outcome.left_out.append(f"{described(unit_id)}: {status.removeprefix('left out: ')}")
            elif status != "ok":
                outcome.stopped.append(line)
                tqdm.write(line, file=sys.stderr)

        try:
            executor.run(todo, folder.path, on_progress, on_end)
        except KeyboardInterrupt as stop:
            folder.flush()
            folder.absorb_all()
            meta["interrupted"] = now()
            folder.write_meta(meta)
            bar.close()
            print(f"\ninterrupted: {len(folder.rows)} finished rows are kept in {folder.path}; continue with "
                  f"{shlex.join(resume_command(command, folder.path))}", file=sys.stderr)
            return exit_code(stop)
        except Exception:  # a bug outside any unit: keep what finished, then show it
            folder.flush()
            folder.absorb_all()
            print(f"\nerror: the run stopped; its {len(folder.rows)} finished rows are kept in {folder.path}",
                  file=sys.stderr)
            raise
    # SIGTERM or Ctrl-C while the rows are written out or the report is drawn: every unit has finished, so
    # say what is kept and how to get the rest, with the signal's exit code (not a traceback and exit 1).
    try:
        folder.flush()
        for line in outcome.left_out:
            print(f"left out {line}")
        meta["skipped"] = sorted(set(meta.get("skipped", [])) | set(outcome.left_out))
        # Earlier invocations' notes stay, except for the units this one ran again.
        ran = {unit.unit_id for unit in todo}
        meta["problems"] = [line for line in meta.get("problems", []) if line.split(": ", 1)[0] not in ran] \
            + outcome.stopped + outcome.failed
        meta.pop("interrupted", None)
        meta["finished"] = now()
        folder.write_meta(meta)
        if not folder.rows and not outcome.failed:  # every unit left out: nothing the same command could add
            print("error: nothing could be measured (reasons above)", file=sys.stderr)
            return 2
        if folder.rows:
            print(f"{len(folder.rows)} rows in {folder.path / 'results.csv'}")
            if render is not None:
                print(f"report: {render(folder.path).resolve().as_uri()}")
        else:  # units failed (a user's cost that raises): a failed run, continued by --resume once it is fixed
            print(f"no unit finished: {folder.path} holds no rows, so no report was drawn")
        if outcome.failed:
            print(f"error: {len(outcome.failed)} unit(s) did not finish (above); once the cause is fixed, run them "
                  f"with {shlex.join(resume_command(command, folder.path))}", file=sys.stderr)
            return 1
        return 0
    except KeyboardInterrupt as stop:
        then = (f"draw the report with python -m reports {shlex.quote(str(folder.path))}" if "finished" in meta
                else f"continue with {shlex.join(resume_command(command, folder.path))}")
        print(f"\ninterrupted while finishing: the rows are kept in {folder.path}; {then}", file=sys.stderr)
        return exit_code(stop)


