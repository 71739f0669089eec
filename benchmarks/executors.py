"""Where units of work run: in this process, on a local pool of worker processes, or on Ray.

One small interface: `executor.run(units, run_folder, on_progress, on_end)` blocks until every unit
has ended, calling `on_progress(unit_id, steps)` as units advance and `on_end(unit_id, status,
failed)` once per unit, in the driver's thread. A unit's own failure to apply ('left out: ...') or a
stop ('stopped at step ...') is a status; a worker that dies (killed, out of memory) ends its unit
with failed=True and the others go on. A unit's own exception is a 'failed: ...' status (run_unit
keeps the traceback); one that escapes the executor's own code is a bug and stops the run. On Ctrl-C
(KeyboardInterrupt in the driver) the executor stops its workers before the interrupt goes on.

The statistics of a unit do not depend on where it runs: each cell seeds its own random stream, and
every executor runs a unit on the same number of torch threads (`--threads`, default 1). That number is
part of the numerics, not only of the speed: torch splits an op over more than 32,768 elements between its
threads, and the pieces round differently (a vectorised kernel on one, its scalar tail on another), so the
same seed gave statistics differing by up to 2e-9 relatively on 1 and 2 threads (3 of the README's main
command's 226 cells), and VAE training on 784-512-256 drifted apart within 40 steps. Its timing does depend on
where it runs: every row records the executor, how many units ran at once on the machine
(`concurrency`) and the unit's torch threads.
"""
from __future__ import annotations

import atexit
import collections
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings
from pathlib import Path


def run_unit(*args, **kwargs):
    from benchmarks.units import run_unit as run  # imported on use: a pool starts before the driver's imports

    return run(*args, **kwargs)


RAY_MISSING = "--executor ray needs Ray, which is not installed: pip install -e \".[ray]\" (or pip install 'ray[default]')"


class ExecutorError(RuntimeError):
    """An executor that cannot start (Ray missing, a cluster that does not answer)."""


class UnitCrashed(RuntimeError):
    """A unit raised an exception that is not a status: a bug, which stops the run."""


def longest_first(units) -> list:
    """Units by their cost_hint, longest first (where they have one), so that no long unit is left to run
    alone at the end while the other workers idle. Statistics do not depend on the order."""
    return sorted(units, key=lambda unit: -getattr(unit, "cost_hint", 0))


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class Executor:
    """What every executor shares: its name, the units it runs at once on a machine (`concurrency`) and each
    unit's torch threads, stamped into every row (`context`), and `prepare`, which the run loop calls before
    it writes the run folder (Ray starts or joins there; the others need nothing)."""

    name, concurrency, threads = "executor", 1, 1

    def context(self) -> dict:
        return {"executor": self.name, "concurrency": self.concurrency, "torch_threads": self.threads}

    def prepare(self) -> None:
        pass


def warn_if_oversubscribed(workers: int, threads: int = 1) -> None:
    """More threads than cores is allowed (statistics do not change), but their timing is not one unit's."""
    if workers * threads > cpu_count():
        asked = f"--workers {workers} x --threads {threads}" if threads > 1 else f"--workers {workers}"
        print(f"warning: {asked} is more than the {cpu_count()} cores here; units will share cores and their "
              "timing will be slower than alone (statistics are unaffected)", file=sys.stderr)


class InProcess(Executor):
    """Today's behaviour: units one after another in the driver's process, on `threads` torch threads."""

    name = "in-process"

    def __init__(self, threads: int = 1):
        self.concurrency, self.threads = 1, threads
        if threads > cpu_count():
            print(f"warning: --threads {threads} is more than the {cpu_count()} cores here; the timing will be "
                  "slower than with fewer (statistics are unaffected)", file=sys.stderr)

    def run(self, units, run_folder, on_progress, on_end) -> None:
        from benchmarks.metrics import torch_threads  # imports torch: not before the driver's own imports

        with torch_threads(self.threads):
            for unit in units:
                status = run_unit(unit, run_folder, self.context(), lambda n, uid=unit.unit_id: on_progress(uid, n))
                on_end(unit.unit_id, status, False)


def _worker_main(conn, threads: int) -> None:
    """A pool worker: runs the units it is sent, one at a time, and reports back on its pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver handles Ctrl-C and stops the workers
    import torch

    torch.set_num_threads(threads)
    import benchmarks.harness  # noqa: F401  (imported now, while the driver still prepares the units)
    import estimators  # noqa: F401
    while True:
        message = conn.recv()
        if message is None:
            return
        unit, run_folder, context = message
        try:
            status = run_unit(unit, run_folder, context, lambda n: conn.send(("progress", unit.unit_id, n)))
            conn.send(("end", unit.unit_id, status, None))
        except BaseException:  # noqa: BLE001 - sent to the driver, which stops the run
            conn.send(("end", unit.unit_id, None, traceback.format_exc()))


# What every pool worker needs before its first unit: imported once, in the fork server, not once per worker.
# benchmarks.forkserver_quiet first: the fork server then ignores Ctrl-C while it imports the others.
WORKER_MODULES = ["benchmarks.forkserver_quiet", "torch", "benchmarks.harness", "estimators", "benchmarks.units"]


def _worker_context():
    """Where the platform has one, a fork server that has imported WORKER_MODULES and never computes, so
    that its children inherit no running OpenMP thread pool (a process forked after torch ran a parallel
    region can deadlock in OpenMP); elsewhere spawned workers, each importing them itself. Measured on the README's main command with
    --workers 2 on 2 cores: the pool used 48 CPU-s where one thread in process used 42, the difference
    the workers' own imports of torch and the suite (3 CPU-s each)."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(WORKER_MODULES)
        return context
    return multiprocessing.get_context("spawn")


class LocalPool(Executor):
    """N worker processes on this machine (from a fork server that has imported torch and the suite, or
    spawned), each unit on `threads` torch threads. A worker that dies is replaced; its unit ends as failed."""

    name = "local-pool"

    def __init__(self, workers: int, threads: int = 1):
        self.workers = workers
        self.concurrency = workers
        self.threads = threads
        self.context_ = _worker_context()
        self.started: list = []

    def start(self) -> None:
        """Start the fork server now, which imports torch and the suite while the driver does the same (it
        does not wait for it); with spawned workers, start them now, to the same end. `run` starts the
        workers that are not running yet."""
        if self.context_.get_start_method() == "forkserver":
            import multiprocessing.forkserver

            multiprocessing.forkserver.ensure_running()
        elif not self.started:
            self.started = [self._start() for _ in range(self.workers)]

    def _start(self):
        parent, child = self.context_.Pipe()
        process = self.context_.Process(target=_worker_main, args=(child, self.threads), daemon=True)
        process.start()
        child.close()
        return process, parent

    def run(self, units, run_folder, on_progress, on_end) -> None:
        pending = collections.deque(longest_first(units))
        self.start()
        workers, self.started = self.started or [self._start() for _ in range(self.workers)], []
        retired = []  # workers that died or were told to stop: joined at the end
        busy: dict[int, str] = {}  # worker index -> unit id

        def replace(index: int) -> None:
            retired.append(workers[index])
            workers[index] = self._start()

        def assign(index: int) -> None:
            while pending and index not in busy:
                unit = pending[0]
                try:
                    workers[index][1].send((unit, str(run_folder), self.context()))
                except OSError:  # it died between units: the unit goes to a fresh worker, not lost
                    replace(index)
                    continue
                pending.popleft()
                busy[index] = unit.unit_id

        def handle(index: int, message) -> None:
            if message[0] == "progress":
                on_progress(message[1], message[2])
                return
            _, unit_id, status, error = message
            del busy[index]
            if error is not None:
                raise UnitCrashed(f"unit {unit_id} raised an error in a worker:\n{error}")
            on_end(unit_id, status, False)
            assign(index)

        def receive(conn):
            """The worker's next message, or None when its pipe is closed (it died)."""
            try:
                return conn.recv()
            except (EOFError, OSError):
                return None

        try:
            for index in range(len(workers)):
                assign(index)
            while busy:
                watched = {}
                for index in busy:
                    process, conn = workers[index]
                    watched[conn] = ("message", index, process)
                    watched[process.sentinel] = ("died", index, process)
                for ready in multiprocessing.connection.wait(list(watched)):
                    kind, index, process = watched[ready]
                    # Skip an entry of a worker handled earlier in this batch (it ended, or it died and was
                    # replaced: its index now holds a new process that must not be taken for dead).
                    if index not in busy or workers[index][0] is not process:
                        continue
                    conn = workers[index][1]
                    if kind == "message":
                        message = receive(conn)
                        if message is not None:
                            handle(index, message)
                            continue
                    while index in busy and conn.poll():  # what it said before it died
                        message = receive(conn)
                        if message is None:
                            break
                        handle(index, message)
                    if index in busy and workers[index][0] is process:
                        process.join(timeout=5)
                        unit_id = busy.pop(index)
                        on_end(unit_id, f"its worker process died (exit code {process.exitcode}); its finished "
                                        "rows and checkpoints are kept, --resume runs it again", True)
                        replace(index)
                        assign(index)
        finally:
            stopping = bool(busy)  # interrupted or a bug: no unit is worth waiting for
            for process, conn in workers:
                if process.is_alive() and not stopping:
                    try:
                        conn.send(None)
                    except (OSError, ValueError):
                        pass
            for process, conn in workers + retired:
                if stopping:
                    process.kill()
                    process.join(timeout=10)
                # After a normal end each worker exits on its own once told to (a second of interpreter
                # teardown with torch loaded): not waited for, so the driver goes on to write and render;
                # multiprocessing joins its children when the driver exits.
                conn.close()


PROGRESS_EVERY_S = 0.5  # a Ray training unit sends its progress to the driver at most this often


class _ProgressTally:
    """A Ray actor (no CPU of its own) holding the steps the training units have reported, by unit, until the
    driver takes them."""

    def __init__(self):
        self.steps = collections.Counter()

    def add(self, unit_id: str, steps: int) -> None:
        self.steps[unit_id] += steps

    def take(self) -> dict[str, int]:
        taken, self.steps = self.steps, collections.Counter()
        return dict(taken)


class _RayProgress:
    """A Ray task's on_progress: steps gathered and sent to the driver's tally at most every PROGRESS_EVERY_S
    (a training run advances every step; an actor call per step would cost more than the step). Sent without
    waiting for the reply: a task blocked in ray.get lends its CPU back to Ray, which starts the next pending
    unit on it, and with ray.util.queue's blocking put three training units ran at once on a 2-CPU local
    instance (seen per process; the rows said 2). `total` counts every step, sent or not."""

    def __init__(self, tally, unit_id: str):
        self.tally, self.unit_id, self.pending, self.total, self.sent_at = tally, unit_id, 0, 0, time.monotonic()

    def __call__(self, steps: int) -> None:
        self.pending += steps
        self.total += steps
        if time.monotonic() - self.sent_at >= PROGRESS_EVERY_S:
            self.tally.add.remote(self.unit_id, self.pending)
            self.pending, self.sent_at = 0, time.monotonic()


def _on_this_node(context: dict) -> dict:
    """On a cluster, the units that can run at once on this task's node (its CPUs / the task's threads),
    which is what `concurrency` means for the row's timing; --workers says nothing about a node."""
    import ray

    node = ray.get_runtime_context().get_node_id()
    cpus = next((n["Resources"].get("CPU", 0) for n in ray.nodes() if n["NodeID"] == node), 0)
    return {**context, "concurrency": max(1, int(cpus // max(1, context["torch_threads"])))} if cpus else context


def _ray_warm_up() -> None:
    import benchmarks.units  # noqa: F401
    import estimators  # noqa: F401


def _warm_up_ray_workers(count: int, threads: int) -> None:
    """Have `count` workers import torch and the suite now, not on their first unit (not waited for: the first
    units queue behind these tasks)."""
    import ray

    warm_up = ray.remote(_ray_warm_up)
    for _ in range(count):
        warm_up.options(num_cpus=threads).remote()


def ray_logs() -> Path:
    """Where a local Ray instance keeps its latest session's logs (Ray's temp dir: $RAY_TMPDIR or the system's)."""
    return Path(os.environ.get("RAY_TMPDIR") or tempfile.gettempdir()) / "ray" / "session_latest" / "logs"


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else ""


def _ray_run_unit(unit, run_folder: str, context: dict, tally=None) -> str | tuple[str, int]:
    """The unit's status; with a progress tally, also the steps it ran (the last of them may reach the tally
    after the task's end, or not at all: the driver counts them from here)."""
    import torch

    torch.set_num_threads(context["torch_threads"])
    if context.pop("cluster", False):
        context = _on_this_node(context)
    if tally is None:
        return run_unit(unit, run_folder, context)
    progress = _RayProgress(tally, unit.unit_id)
    return run_unit(unit, run_folder, context, progress), progress.total


# An HTTP/2 client preface and an empty SETTINGS frame: a Ray cluster's GCS (a gRPC server) answers with a
# SETTINGS frame of its own; a web server or anything else does not.
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
SETTINGS_FRAME = 4


def check_reachable(address: str, timeout_s: float = 3.0) -> None:
    """Fail within seconds when a cluster address does not answer, or answers but is not a Ray head's GCS
    (ray.init would retry for a minute or more, then end in a traceback)."""
    if address in ("auto", "local") or ":" not in address:  # nothing to dial: let Ray find it
        return
    host_port = address.removeprefix("ray://")
    host, _, port = host_port.rpartition(":")
    hint = "start the cluster's head (ray start --head) or check the address, which `ray start --head` prints"
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s) as connection:
            connection.settimeout(timeout_s)
            connection.sendall(HTTP2_PREFACE)
            reply = connection.recv(9)
    except TimeoutError:
        reply = b""
    except (OSError, ValueError) as error:
        raise ExecutorError(f"--ray-address {address}: nothing answers there ({error}); {hint}") from None
    if address.startswith("ray://"):
        return  # Ray Client's server speaks gRPC too, but through its own proxy: leave the rest to Ray
    if len(reply) < 4 or reply[3] != SETTINGS_FRAME:
        raise ExecutorError(f"--ray-address {address}: something answers there, but not a Ray cluster's head "
                            f"(no gRPC reply within {timeout_s:g} s); {hint}")


def use_token_if_available() -> None:
    """Send the cluster's token where one is at hand and the user chose no RAY_AUTH_MODE. A cluster Ray starts
    uses token authentication by default, and a driver that joins it by address sends no token unless
    RAY_AUTH_MODE=token: ray.init(address=ADDR) then fails with 'Failed to connect' (address='auto' switches
    the mode on by itself). This is Ray's own switch for that (a token in RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH
    or ~/.ray/auth_token); a driver in token mode also joins a cluster without authentication (Ray 2.60)."""
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:  # a Ray without token authentication
        return
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


class _NotMainThread(logging.Filter):
    """Drops Ray's note that ray.init on another thread sets no SIGTERM handler: the run loop's own handler is
    the one wanted (it keeps finished work and prints the resume command)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "SIGTERM handler is not set" not in record.getMessage()


def _kill_autoscaler_monitor() -> None:
    """Kill the local instance's autoscaler monitor, which a fixed local instance does not use, just before
    ray.shutdown. Ray stops its processes one after another with SIGTERM and then waits up to a second for each;
    it stops the GCS before the monitor, whose SIGTERM handler then tries to report its end to that GCS and
    hangs until the SIGKILL a second later: 1.0 of ray.shutdown's 1.4 s (measured, Ray 2.60). ray.init has no
    option to leave the monitor out (`ray start --no-monitor` has), so its process is found where Ray keeps
    it; a Ray that keeps it elsewhere is shut down as before."""
    try:
        import ray._private.worker

        monitors = ray._private.worker._global_node.all_processes.get("monitor", [])
    except (ImportError, AttributeError):
        return
    for monitor in monitors:
        try:
            monitor.process.kill()
            monitor.process.wait(timeout=5)
        except (AttributeError, OSError, subprocess.TimeoutExpired):
            pass


STOP_AT_EXIT_S = 60.0  # how long the driver waits at exit for its local Ray instance to shut down


class LocalRayInstance:
    """A local Ray instance started, and stopped, on a thread of its own.

    Starting takes 2-3 s, mostly waiting for Ray's processes to come up; on this thread the driver meanwhile
    imports torch and builds its units (measured: Ray ready with the driver's imports 4.3-4.6 s after the
    start instead of 6.3-6.5 s). Once started, the thread has each worker import torch and the suite
    (`_ray_warm_up`), then waits until `stop`. It lives as long as the instance because Ray starts its
    processes with PR_SET_PDEATHSIG, which on Linux fires when the *thread* that started them ends: a thread
    that only called ray.init took Ray's processes with it (tried)."""

    def __init__(self, num_cpus: int, warm_up: int, threads: int):
        self.num_cpus, self.warm_up, self.threads = num_cpus, warm_up, threads
        self.started, self.released = threading.Event(), threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._live, name="local-ray", daemon=True)
        self.thread.start()
        # Ray's own atexit handler (registered when it was imported) would shut it down from the main thread
        # while this thread may be doing the same; this handler, registered later, runs first.
        atexit.register(self._stop_at_exit)

    def _live(self) -> None:
        import ray

        worker_log = logging.getLogger("ray._private.worker")
        if not any(isinstance(each, _NotMainThread) for each in worker_log.filters):
            worker_log.addFilter(_NotMainThread())
        try:
            # worker_niceness 0: Ray runs its workers at nice 15 by default, and beside any busy process they
            # then got a few percent of a core (a VAE grid took over 5x the pool's time with two busy
            # processes beside it); the pool's workers run at the driver's niceness, and so do these.
            # Without an address, "local": a new instance, as the README says. (None would join a cluster
            # `ray start` left on this machine, or fail on the address file a killed one leaves behind.)
            ray.init(address="local", num_cpus=self.num_cpus, include_dashboard=False, log_to_driver=False,
                     configure_logging=False, _system_config={"worker_niceness": 0})
        except BaseException as error:  # noqa: BLE001 - given to the driver by wait_started
            self.error = error
            self.started.set()
            return
        try:
            _warm_up_ray_workers(self.warm_up, self.threads)
        except BaseException as error:  # noqa: BLE001 - the same; Ray is up, and is shut down below
            self.error = error
        finally:
            self.started.set()
        self.released.wait()
        _kill_autoscaler_monitor()
        ray.shutdown()

    def wait_started(self) -> None:
        """Block until Ray has started; its failure raised here, in the driver's thread."""
        self.started.wait()
        if self.error is not None:
            raise self.error

    def stop(self, timeout: float | None = None) -> None:
        """Shut Ray down (on its thread, which started it) and wait until it has, or `timeout` seconds."""
        self.released.set()
        self.thread.join(timeout)

    def _stop_at_exit(self) -> None:
        """`stop`, with Ctrl-C and SIGTERM ignored meanwhile: the CLI's own handlers are gone by then, so a SIGTERM
        killed the driver and left two of Ray's agents running, and Ctrl-C printed a traceback (found in review,
        in a run refused while Ray was still starting, which then finishes starting before it stops)."""
        from benchmarks.cli_common import ignore_signal

        try:
            previous = {signum: signal.signal(signum, ignore_signal) for signum in (signal.SIGINT, signal.SIGTERM)}
        except ValueError:  # not the main thread
            previous = {}
        try:
            # Bounded: SIGTERM is ignored here, so a shutdown that never returned kept the driver alive until
            # SIGKILL. Ray's processes end with this one (PR_SET_PDEATHSIG, see the class docstring).
            self.stop(timeout=STOP_AT_EXIT_S)
            if self.thread.is_alive():
                print(f"note: the local Ray instance had not stopped after {STOP_AT_EXIT_S:g} s; its processes end "
                      "with this one", file=sys.stderr)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


_local_instance: LocalRayInstance | None = None  # this process's, so that a new one waits for the last to stop


class RayExecutor(Executor):
    """Each unit a Ray task: on a local instance started here (num_cpus = --workers x --threads) or on a cluster
    (`--ray-address`). A CUDA unit asks for one GPU. The run folder must be on a filesystem the
    cluster's nodes share: units write their rows and checkpoints there."""

    name = "ray"

    def __init__(self, workers: int, address: str | None = None, threads: int = 1):
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ExecutorError(RAY_MISSING) from None
        if address:
            check_reachable(address)  # before anything is written into the run folder
        else:
            warn_if_oversubscribed(workers, threads)  # a local instance; a cluster's cores are not this machine's
        self.workers, self.address = workers, address
        self.threads = threads  # each task asks Ray for this many CPUs
        self.concurrency = workers
        self.started_here = False
        self.local: LocalRayInstance | None = None  # the local instance this executor started
        self.warmed_callers = False  # a Ray the caller started: its workers were sent the warm-up tasks

    def start(self) -> None:
        """For a local instance: start it now, on its own thread, while the driver imports torch and builds its
        units (it does not wait for it). A run the driver then refuses (a locked folder, a bad option) stops it
        at exit."""
        global _local_instance
        if self.address or (self.local is not None and not self.local.released.is_set()):
            return
        self.local = None  # none yet, or one stopped since (by another executor's start, or an interrupted run)
        import ray

        if _local_instance is not None:  # an earlier run's in this process, stopping or left by a refused run
            _local_instance.stop()
            _local_instance = None
        if ray.is_initialized():  # one the caller started: used, and left running; its workers warmed up once
            if not self.warmed_callers:
                _warm_up_ray_workers(self.workers, self.threads)
                self.warmed_callers = True
            return
        # workers x threads CPUs: each task asks for `threads`, so that `workers` of them run at once.
        self.local = _local_instance = LocalRayInstance(self.workers * self.threads, self.workers, self.threads)

    def prepare(self) -> None:
        """Start the local instance (or wait for the one `start` began) or join the cluster. The run loop calls
        this before it writes the run folder: a failure is an ExecutorError (exit 2), and the corrected command
        finds the folder free."""
        import ray

        if not self.address:
            self.start()
            if self.local is None:
                return
            try:
                self.local.wait_started()
            except Exception as error:  # noqa: BLE001 - Ray raises RuntimeError, ValueError, ...
                self.local = None
                raise ExecutorError(f"a local Ray instance: Ray could not start ({type(error).__name__}: "
                                    f"{first_line(error)}); Ray's own logs are in {ray_logs()}") from None
            self.started_here = True
            return
        if ray.is_initialized():
            return
        # ray.init installs its own SIGTERM handler (sys.exit); the run loop's, which keeps finished work and
        # prints the resume command, must stay in charge.
        sigterm = signal.getsignal(signal.SIGTERM)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                use_token_if_available()
                ray.init(address=self.address, include_dashboard=False, log_to_driver=False,
                         configure_logging=False)
        except Exception as error:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, ValueError, ...
            raise ExecutorError(f"--ray-address {self.address}: Ray could not start or connect "
                                f"({type(error).__name__}: {first_line(error)}); {self._connect_hint()}") from None
        finally:
            signal.signal(signal.SIGTERM, sigterm)
        self.started_here = True
        # Each task asks for `threads` CPUs: on a cluster without a node that has them, Ray would hold every
        # task pending, and the run would wait without a word.
        largest = max((node.get("Resources", {}).get("CPU", 0) for node in ray.nodes() if node.get("Alive")),
                      default=0)
        if largest < self.threads:
            self.stop()
            raise ExecutorError(f"--threads {self.threads}: no node of the cluster at {self.address} has that many "
                                f"CPUs (the largest has {largest:g}); use --threads {max(1, int(largest))} or less")

    def stop(self) -> None:
        """Shut down the instance this executor started or left the cluster it joined (nothing otherwise)."""
        if not self.started_here:
            return
        self.started_here = False
        if self.local is not None:
            self.local.stop()
            self.local = None
        else:
            import ray

            ray.shutdown()

    def _connect_hint(self) -> str:
        if self.address in ("auto", "local"):
            return "with --ray-address auto, start the cluster first (ray start --head)"
        if os.environ.get("RAY_AUTH_MODE", "").lower() == "token":
            # check_reachable found a gRPC server there, so what fails is most likely the token
            source = ("RAY_AUTH_TOKEN" if os.environ.get("RAY_AUTH_TOKEN") else
                      os.environ.get("RAY_AUTH_TOKEN_PATH") or str(Path.home() / ".ray" / "auth_token"))
            return (f"the head answers, so check the token: this driver sent the one in {source}, and the "
                    "cluster refuses any but its own (ray get-auth-token on the head prints it)")
        return ("a cluster with token authentication (Ray's default) needs its token here: RAY_AUTH_TOKEN=..., "
                "or the head node's ~/.ray/auth_token (ray get-auth-token on the head prints it)")

    def run(self, units, run_folder, on_progress, on_end) -> None:
        import ray

        self.prepare()
        remote = ray.remote(_ray_run_unit)
        folder = str(Path(run_folder).resolve())
        # Training runs report their steps as they go (to a tally actor); a variance cell is one step, counted
        # when it ends, which spares the actor.
        tally = None
        context = {**self.context(), "cluster": bool(self.address)}
        futures = {}
        counted, ended = collections.Counter(), set()

        def drain() -> None:
            nonlocal tally
            if tally is None:
                return
            try:
                reported = ray.get(tally.take.remote())
            except ray.exceptions.RayActorError:  # the tally died (out of memory, ...): counted at each end
                tally = None
                return
            for unit_id, steps in reported.items():
                if unit_id not in ended:  # steps sent just before a unit's end are counted at its end
                    counted[unit_id] += steps
                    on_progress(unit_id, steps)

        try:
            if any(unit.steps > 1 for unit in units):
                tally = ray.remote(_ProgressTally).options(num_cpus=0).remote()
                # Up before the units start (seconds on busy cores, beside the workers' warm-up): reports sent
                # meanwhile would reach the bar all at once.
                ray.get(tally.take.remote())
            for unit in longest_first(units):  # submitted in that order, and Ray starts them in it
                gpus = 1 if getattr(unit, "device", "cpu") == "cuda" else 0
                ref = remote.options(num_cpus=self.threads, num_gpus=gpus, max_retries=0).remote(
                    unit, folder, context, tally)
                futures[ref] = unit
            while futures:
                done, _ = ray.wait(list(futures), num_returns=1, timeout=None if tally is None else PROGRESS_EVERY_S)
                drain()
                for ref in done:
                    unit = futures.pop(ref)
                    ended.add(unit.unit_id)
                    try:
                        status = ray.get(ref)
                    except ray.exceptions.RayTaskError as error:  # the unit's own exception: a bug
                        raise UnitCrashed(f"unit {unit.unit_id} raised an error on Ray:\n{error}") from None
                    except (ray.exceptions.WorkerCrashedError, ray.exceptions.RayError) as error:
                        on_end(unit.unit_id, f"its Ray worker died ({type(error).__name__}); its finished rows and "
                                             "checkpoints are kept, --resume runs it again", True)
                        continue
                    if isinstance(status, tuple):  # a unit that reported its progress: the steps it ran
                        status, ran = status
                        if ran != counted[unit.unit_id]:  # negative where a resumed run took steps back
                            on_progress(unit.unit_id, ran - counted[unit.unit_id])
                    else:
                        on_progress(unit.unit_id, unit.steps)
                    on_end(unit.unit_id, status, False)
        finally:
            # Units still pending (an interrupt, a bug): shutting down the instance started here, or leaving the
            # cluster joined here, ends them (Ray ends a driver's tasks with its job). They are not cancelled
            # first: ray.cancel(force=True) racing a task's own end crashed Ray's driver (a failed internal
            # check in task_manager.cc: exit 1, no resume command, two agents left running; 2 of 6 Ctrl-Cs
            # during a sweep). Only a Ray the caller started, which stays up, is asked to cancel them.
            if not self.started_here:
                for ref in futures:
                    ray.cancel(ref)
            self.stop()


def workers_message(workers: int, name: str, ray_address: str | None) -> str:
    """Why --workers N < 1 is refused, in the terms of the executor asked for."""
    return f"--workers must be 1 or more, got {workers}; " + (
        "it is the number of units at once on the local Ray instance" if name == "ray" and not ray_address
        else "--workers 1 runs in this process")


def make_executor(name: str, workers: int | None, ray_address: str | None, threads: int = 1):
    """The executor the options ask for, each unit on `threads` torch threads; a UsageError-worthy
    ExecutorError for a contradiction."""
    if ray_address and name != "ray":
        raise ExecutorError("--ray-address needs --executor ray")
    if workers is not None and workers < 1:
        raise ExecutorError(workers_message(workers, name, ray_address))
    if threads < 1:
        raise ExecutorError(f"--threads must be 1 or more, got {threads}")
    if name == "ray":
        ray = RayExecutor(workers or max(1, cpu_count() // threads), ray_address, threads)
        ray.start()
        return ray
    if workers and workers > 1:
        warn_if_oversubscribed(workers, threads)
        pool = LocalPool(workers, threads)
        pool.start()
        return pool
    return InProcess(threads)
