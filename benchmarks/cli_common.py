"""Argument checks shared by the command-line tools: each bad value gets a message naming the fix."""
from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import json
import math
import shlex
import signal
import sys
from pathlib import Path


class UsageError(Exception):
    """A user mistake: printed as one line and a non-zero exit, never a traceback."""


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def _finite_number(text: str, zero_allowed: bool, message: str) -> float:
    """A finite number > 0 (>= 0 with zero_allowed), else `message` (formatted with the text given)."""
    value = _number(text)
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero_allowed):
        raise argparse.ArgumentTypeError(message.format(text=text))
    return value


def positive_finite(text: str) -> float:
    """A finite number > 0 (a learning rate, a minimum temperature); argparse names the option."""
    return _finite_number(text, False, "must be a finite number > 0, got {text}")


def non_negative_finite(text: str) -> float:
    """A finite number >= 0 (an annealing rate, where 0 turns it off); argparse names the option."""
    return _finite_number(text, True, "must be a finite number >= 0, got {text}")


def temperature(text: str) -> float:
    """A temperature of --tau: finite and > 0."""
    return _finite_number(text, False, "temperature must be finite and > 0, got {text}; e.g. --tau 0.1 1.0")


def log_grid(low: float, high: float, count: int) -> list[float]:
    """`count` temperatures spaced evenly in log between low and high (both included), to 3 significant
    figures so that cell ids stay readable: log_grid(0.05, 2, 9) = [0.05, 0.0792, 0.126, ..., 1.26, 2.0]."""
    ratio = (high / low) ** (1 / (count - 1))
    return [float(f"{low * ratio ** i:.3g}") for i in range(count - 1)] + [high]


class TauGrid(argparse.Action):
    """--tau-grid LO HI N: a log grid of N temperatures, stored in `tau` as if given with --tau."""

    def __call__(self, parser, namespace, values, option_string=None):
        low_text, high_text, count_text = values
        try:
            low, high = temperature(low_text), temperature(high_text)
        except argparse.ArgumentTypeError as error:
            parser.error(f"--tau-grid LO HI N: {error}")
        try:
            count = int(count_text)
        except ValueError:
            parser.error(f"--tau-grid LO HI N: N must be a whole number, got {count_text!r}; e.g. --tau-grid 0.05 2 9")
        if count < 2:
            parser.error(f"--tau-grid LO HI N: N must be >= 2, got {count}; e.g. --tau-grid 0.05 2 9")
        if high <= low:
            parser.error(f"--tau-grid LO HI N: HI must exceed LO, got LO={low:g} HI={high:g}; e.g. --tau-grid 0.05 2 9")
        grid = log_grid(low, high, count)
        if len(set(grid)) < count:
            parser.error(f"--tau-grid {low:g} {high:g} {count}: {count} temperatures to 3 significant figures do not fit "
                         f"between {low:g} and {high:g}; widen the range or take fewer")
        setattr(namespace, self.dest, grid)


def add_tau_options(parser: argparse.ArgumentParser, help: str, best_temperature: bool = False) -> None:
    """--tau T [T ...] or --tau-grid LO HI N (one of them): the temperatures, in args.tau. `best_temperature`:
    the CLI's report answers which temperature is best from three or more (the sweep's does; its help says so)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--tau", type=temperature, nargs="+", default=None, metavar="T", help=help)
    group.add_argument("--tau-grid", dest="tau", nargs=3, action=TauGrid, metavar=("LO", "HI", "N"),
                       help="N temperatures spaced evenly in log from LO to HI, e.g. --tau-grid 0.05 2 9"
                            + (" (three or more give the report's best-temperature answer)" if best_temperature
                               else ""))


def zero_or_at_least(minimum: int, what: str):
    """A whole number that is 0 (off) or at least `minimum`, e.g. --grad-estimates: 0 or >= 2."""
    at_least = int_at_least(0, what)

    def parse(text: str) -> int:
        value = at_least(text)
        if 0 < value < minimum:
            raise argparse.ArgumentTypeError(f"{what} must be 0 (off) or >= {minimum}, got {value}")
        return value
    return parse


def int_at_least(minimum: int, what: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} must be a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{what} must be >= {minimum}, got {value}")
        return value
    return parse


def resolve_devices(choice: str | None, all_allowed: bool = True) -> tuple[list[str], str]:
    """Devices to run on, and a note for run.json on what was chosen and why. `all_allowed`: whether the CLI takes
    --device all (the trajectory CLI, one device a run, does not: its message must not suggest it)."""
    import torch  # here, not at the top: parsing arguments must not wait for torch

    has_cuda = torch.cuda.is_available()
    if choice == "cuda" and not has_cuda:
        raise UsageError("--device cuda was asked for, but torch sees no CUDA GPU "
                         f"(torch {torch.__version__}, cuda build: {torch.version.cuda or 'none'}); use --device cpu"
                         + (", or --device all to use whatever is present" if all_allowed else ""))
    if choice in ("cpu", "cuda"):
        return [choice], f"--device {choice}"
    devices = ["cpu", "cuda"] if has_cuda else ["cpu"]
    note = "cpu and cuda" if has_cuda else "cpu only: no CUDA GPU is available"
    return devices, f"--device {choice or 'default'}: {note}"


def _hparam(text: str):
    from benchmarks.hparam_grid import HParamUsageError, parse_hparam

    try:
        return parse_hparam(text)
    except HParamUsageError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_hparam_options(parser: argparse.ArgumentParser) -> None:
    """--hparam (any declared hyperparameter swept) and --import (estimators and problems from a module)."""
    parser.add_argument("--hparam", type=_hparam, nargs="+", action="extend", default=[], metavar="[EST:]NAME=V1,V2",
                        help="sweep a declared hyperparameter: NAME=V1,V2,... for every chosen estimator that "
                             "takes it, ESTIMATOR:NAME=... for one (e.g. gumbel_rao:k=1,10,100 rebar:eta=0.5,1); "
                             "python -m benchmarks.variance --list shows each one's hyperparameters and constraints")
    parser.add_argument("--import", dest="imports", nargs="+", action="extend", default=[], metavar="MODULE",
                        help="import these modules first, so that the estimators and problems they register "
                             "are measured too (the folder holding them must be importable, e.g. on PYTHONPATH)")


def import_plugins(modules: list[str]) -> None:
    """Import the user's modules named by --import; any failure is a UsageError naming the module."""
    for name in modules:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name and not name.startswith(f"{error.name}."):  # found, but its own import failed
                raise UsageError(f"--import {name} failed: ModuleNotFoundError: {error}") from None
            raise UsageError(f"--import {name}: {error}; run from the folder that holds it or add that folder to "
                             "PYTHONPATH (python -m benchmarks.variance is run from the project root)") from None
        except Exception as error:  # the module's own code failed: show its message, not a traceback
            raise UsageError(f"--import {name} failed: {type(error).__name__}: {error}") from None


def add_executor_options(parser: argparse.ArgumentParser) -> None:
    """Where the units run (benchmarks.executors): --executor, --workers, --threads, --ray-address."""
    parser.add_argument("--executor", choices=["local", "ray"], default="local",
                        help="local: this process, or a pool of --workers processes (default); ray: a Ray instance "
                             "(local, or the cluster at --ray-address)")
    parser.add_argument("--workers", type=int, default=None, metavar="N",
                        help="worker processes (local pool) or Ray tasks at once, each unit on --threads torch "
                             "threads. Default: 1 (this process) for local, cores // --threads for ray. Time-grade "
                             "figures: use 1")
    parser.add_argument("--threads", type=int_at_least(1, "--threads"), default=1, metavar="T",
                        help="torch threads per unit, wherever it runs (default 1). The rows depend on the seed and "
                             "on T (torch rounds an op split over threads differently), so the same seed and T give "
                             "the same rows in process, on a pool and on Ray; more threads speed up one large unit "
                             "(keep workers x T <= the cores)")
    parser.add_argument("--ray-address", default=None, metavar="ADDR",
                        help="join the Ray cluster at ADDR (host:port of its head, or auto) instead of starting a "
                             "local instance; needs --executor ray and a run folder the nodes share")


def check_same_threads(meta: dict, args, out) -> None:
    """--resume on the torch threads the run was made with (run.json's worker_threads): its rows depend on them,
    so a run continued on others would mix rows of two numerics."""
    saved = meta.get("worker_threads")
    if args.resume and saved is not None and saved != args.threads:
        raise UsageError(f"{out} was run with --threads {saved}, not {args.threads}; its rows depend on the threads, "
                         f"so resume with --threads {saved}, or start another run with another --out")


# What each kind of run (run.json's "kind") is called, and the CLI that writes it.
RUN_KINDS = {"variance": ("a variance sweep", "benchmarks.variance"), "vae": ("a VAE run", "benchmarks.vae"),
             "trajectory": ("a trajectory run", "benchmarks.trajectory")}


def check_run_kind(out, kind: str) -> None:
    """A folder holding a run that another CLI made is refused, naming the CLI that continues it: --resume
    with the wrong CLI appended its rows to the run and rewrote run.json's kind (a VAE run resumed by
    benchmarks.variance), or was refused for a wrong reason ("--samples [1], not 1")."""
    try:
        meta = json.loads((Path(out) / "run.json").read_text())
        saved = meta.get("kind")
    except (OSError, ValueError, AttributeError):  # no run.json, or a damaged one: the CLI's RunFolder says which
        return
    if saved is None or saved == kind:  # a run.json without a kind predates it: the CLI's own checks apply
        return
    from reports.files import resume_command_line

    what, cli = RUN_KINDS.get(saved, ("a run of another kind", None))
    # The run's own last command, which holds its settings: the bare CLI's defaults were refused in turn
    # ("was run with --hidden 32, not 512 256"; found by a new user).
    again = resume_command_line(out, meta, f"python -m {cli} --resume --out {shlex.quote(str(out))}" if cli else "")
    how = f"resume it with {again}, or " if again else ""
    raise UsageError(f"{out} holds {what} (kind {saved!r}), not {RUN_KINDS[kind][0]}; {how}choose another --out")


def check_run_options(args, kind: str) -> None:
    """The run options' contradictions, before anything heavy is imported: an error comes back at once.
    `kind`: the kind of run the CLI writes (RUN_KINDS)."""
    import importlib.util

    from benchmarks.executors import RAY_MISSING, workers_message

    if args.resume and args.out is None:
        raise UsageError("--resume needs --out DIR, the folder of the run to continue")
    if args.out is not None:  # first: any other refusal of another CLI's folder would give the wrong reason
        check_run_kind(args.out, kind)
    from benchmarks.estimator_names import unknown_estimator_messages
    from benchmarks.problem_names import unknown_problem_messages

    imports = getattr(args, "imports", [])
    for message in unknown_estimator_messages(getattr(args, "estimators", None), imports):
        raise UsageError(message)
    problems = getattr(args, "objectives", None) or getattr(args, "problems", None)  # variance / trajectory
    for message in unknown_problem_messages(problems, imports):
        raise UsageError(message)
    if args.executor == "ray" and importlib.util.find_spec("ray") is None:
        raise UsageError(RAY_MISSING)
    if args.ray_address and args.executor != "ray":
        raise UsageError(f"--ray-address {args.ray_address} needs --executor ray")
    if args.workers is not None and args.workers < 1:
        raise UsageError(workers_message(args.workers, args.executor, args.ray_address))
    if args.out is not None:
        # A folder another driver is running is refused now, before an executor starts; the run loop takes
        # the lock itself later (this only spares the wait for a refusal).
        from benchmarks.run_lock import RunLockedError, check_unlocked, unwritable

        why = unwritable(args.out)
        if why:
            raise UsageError(f"--out {args.out}: {why}; choose a folder this user can write")
        try:
            check_unlocked(args.out)
        except RunLockedError as error:
            raise UsageError(str(error)) from None
        if args.resume and not (Path(args.out) / "run.json").is_file():
            # A mistyped folder used to start a new run there without a word.
            why = "no such folder" if not Path(args.out).exists() else "it holds no run.json"
            raise UsageError(f"--resume: {args.out} holds no run to continue ({why}); check the folder's name, "
                             "or leave out --resume to start a run there")


# Imported under interrupts_held by every CLI: the modules whose import an interrupt could leave half done.
HEAVY_MODULES = ("numpy", "torch", "scipy.special", "pandas")


@contextlib.contextmanager
def interrupts_held():
    """Ctrl-C or SIGTERM inside the block is held until it ends, then raised. Ctrl-C while torch imported numpy
    left a half-imported numpy behind, which a library's `except` swallowed: the run then failed with an
    unrelated error (a RecursionError in numpy's __getattr__, exit 1) instead of stopping."""
    caught = []
    try:
        previous = {signum: signal.signal(signum, lambda signum, frame: caught.append(signum))
                    for signum in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: its signals are not ours to hold
        yield
        return
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if signal.SIGTERM in caught:
        raise Terminated
    if caught:
        raise KeyboardInterrupt


def import_heavy_modules() -> None:
    """torch, numpy, scipy and pandas, imported whole even when Ctrl-C comes meanwhile (interrupts_held)."""
    with interrupts_held():
        for name in HEAVY_MODULES:
            importlib.import_module(name)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the driver is, so that it stops the way Ctrl-C does."""


_sigterm_received: list[int] = []  # since the innermost sigterm_as_interrupt began


@contextlib.contextmanager
def sigterm_as_interrupt():
    """SIGTERM (a scheduler's kill, `kill PID`) is handled like Ctrl-C: finished work is kept, and the exit code
    is 143. It is also remembered, because a library may turn the exception into a plain KeyboardInterrupt
    (Ray's ray.wait does: a SIGTERM during a Ray run exited 130)."""
    def interrupt(signum, frame):
        _sigterm_received.append(signum)
        raise Terminated

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    _sigterm_received.clear()
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def exit_code(stop: KeyboardInterrupt) -> int:
    """143 for SIGTERM (128 + the signal's number), 130 for Ctrl-C."""
    return 128 + signal.SIGTERM if isinstance(stop, Terminated) or _sigterm_received else 130


def ignore_signal(signum, frame) -> None:
    """A handler that does nothing: the signal is ignored. Not SIG_IGN, which the processes started meanwhile
    would inherit through exec (a local Ray instance may still be starting when a refused run ends), and with
    it ignore the SIGTERM with which Ray stops them."""


def run_cli(main) -> None:
    """`python -m benchmarks.<cli>`: main's exit code; an interrupt the run loop did not handle (before the run
    began, or a second one while it stopped) is one line and the signal's exit code, not a traceback. SIGTERM
    is an interrupt from the start: before, it killed the driver at once, and a local Ray instance starting on
    its own thread left two of Ray's agents running.

    Outside main, SIGTERM is ignored until the interpreter's own shutdown (after the atexit handlers): once main
    has returned the program is already ending with its code, and a SIGTERM between main's return and the
    atexit handlers (a local Ray instance's stop, which ignores it itself) killed the driver (seen once in CI,
    in a run refused while Ray started), and a driver killed then leaves two of Ray's agents running."""
    with contextlib.suppress(ValueError):  # ValueError: not the main thread, whose signals are not ours
        signal.signal(signal.SIGTERM, ignore_signal)  # what sigterm_as_interrupt restores when main ends
    try:
        with sigterm_as_interrupt():
            code = main()
    except KeyboardInterrupt as stop:
        print("\ninterrupted", file=sys.stderr)
        code = exit_code(stop)
    exit_with(code)


def exit_with(code: int) -> None:
    """End a CLI with `code`, without the interpreter's last garbage collection over torch's and
    matplotlib's objects (1.4 s at exit): frozen objects are skipped by it, while files are closed and
    atexit handlers run as before. Ctrl-C is ignored from here on (until the interpreter's own shutdown): the
    run has ended, and during the atexit handlers it printed a traceback."""
    with contextlib.suppress(ValueError):  # not the main thread
        signal.signal(signal.SIGINT, ignore_signal)
    gc.freeze()
    sys.exit(code)


def unsupported_lines(specs, problems) -> list[str]:
    """For each chosen estimator and each family of the chosen problems it does not support: which
    problems it leaves out, and which estimators would serve them."""
    import estimators

    lines = []
    kinds = {p.family: p.distribution_type for p in problems}
    for family, kind in kinds.items():
        unable = [s.name for s in specs if not s.supports(kind)]
        if not unable:
            continue
        ids = [p.id for p in problems if p.family == family]
        able = [s.name for s in estimators.list_estimators(include_reference=False) if s.supports(kind)]
        lines.append(f"{', '.join(unable)} {'does' if len(unable) == 1 else 'do'} not support the {family} family "
                     f"of {ids[0]}{f' (and {len(ids) - 1} more)' if len(ids) > 1 else ''}; estimators that do: "
                     f"{', '.join(able)}")
    return lines


def unsupported_message(specs, problems) -> str:
    return "; ".join(unsupported_lines(specs, problems))
