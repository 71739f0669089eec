"""The run folder's lock: one driver at a time on a folder.

A lock file (RUN/.lock) with the owner's pid, host and start time, created exclusively. Kept apart from
benchmarks.results (which imports pandas) so that a CLI can refuse a folder another driver is running
right after parsing its arguments, before it imports torch or starts an executor.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from pathlib import Path

from reports.files import write_refusal

LOCK = ".lock"
TAKEOVER = ".lock.takeover"  # held (flock) by the one driver that is taking over a stale lock
LOCK_FILES = (LOCK, TAKEOVER)  # a folder holding only these holds no run (a stale lock's leftovers)


class RunLockedError(RuntimeError):
    """Another driver holds the run folder."""


def alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, TypeError, ValueError):
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def holder(folder: Path) -> dict | None:
    """The lock file's owner ({pid, host, since}) while a live driver holds `folder`; None when there is no
    lock or it is stale (its driver, on this host, is gone; or it is unreadable and over 10 s old)."""
    path = Path(folder) / LOCK
    try:
        text, age = path.read_text(), time.time() - path.stat().st_mtime
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        owner = json.loads(text)
    except json.JSONDecodeError:
        owner = {}
    if (not owner and age > 10) or (owner.get("host") == socket.gethostname() and not alive(owner.get("pid"))):
        return None
    return owner


def check_unlocked(folder: Path) -> None:
    """RunLockedError naming the driver that holds `folder`, if one does."""
    owner = holder(folder)
    if owner is not None:
        raise RunLockedError(
            f"{folder} is being run by another driver (pid {owner.get('pid', '?')} on "
            f"{owner.get('host', '?')}, since {owner.get('since', '?')}); wait for it, stop it, or choose "
            f"another --out (if that driver is gone, delete {Path(folder) / LOCK})")


def unwritable(folder) -> str | None:
    """Why a run could not write `folder` (None: it can), as a usage error says it."""
    refusal = write_refusal(folder)
    if refusal is None:
        return None
    existing, why = refusal
    return f"{existing} is a file, not a folder" if why == "a file, not a folder" else \
        f"cannot create a folder in {existing} ({why})"


@contextlib.contextmanager
def _takeover_guard(folder: Path):
    """An exclusive flock on RUN/.lock.takeover inside the block. A lock counts as stale only when its driver was
    on this host, so the drivers that can race to take one over share this host, and its flock."""
    with open(Path(folder) / TAKEOVER, "a") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(guard, fcntl.LOCK_UN)


@contextlib.contextmanager
def hold(folder: Path):
    """Keep a second driver off `folder` inside the block; a lock left by a driver that is gone (same host,
    no such process) is taken over."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK
    me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}

    def create() -> bool:
        try:
            with open(path, "x") as stream:
                json.dump(me, stream)
            return True
        except FileExistsError:
            return False

    for _ in range(2):
        if create():
            break
        # A stale lock is taken over by one driver at a time: two that both found it stale once took turns to
        # delete it and create their own, and the second deleted the first one's fresh lock (both then ran).
        with _takeover_guard(folder):
            if holder(folder) is None:
                path.unlink(missing_ok=True)  # its driver is gone (or died writing it): a stale lock
                if create():
                    break
                continue  # another driver created one meanwhile: look at it again
            check_unlocked(folder)
    else:  # the lock changed hands under us twice: never run without it
        raise RunLockedError(f"{folder}: its lock file {path} keeps changing owner; is another driver "
                             "starting on it? Wait for it, or choose another --out")
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
