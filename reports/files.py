"""Files written whole, folders probed before anything is written, and the command that continues a run.

Shared by the measuring side (benchmarks: run folders, checkpoints) and the reports (pages, PNGs,
screenshots). It lives here because the reports import nothing from benchmarks: a report renders in a
process where torch and the measuring code are absent (tests/test_vae_pictures.py checks it).
"""
from __future__ import annotations

import os
import shlex
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# The permissions open() gives a new file: mkstemp's are 0600, and results on a cluster's shared
# filesystem must be readable by the others who may read them, as the page and its PNGs are.
NEW_FILE_MODE = 0o666 & ~_umask()


def atomic_write(path: Path, text: str | bytes) -> None:
    """Write `text` (or bytes: a report's PNG) to `path` whole, or leave the old file as it was."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if hasattr(os, "fchmod"):  # not on Windows before Python 3.13
            os.fchmod(handle, NEW_FILE_MODE)
        with os.fdopen(handle, "wb" if isinstance(text, bytes) else "w") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())  # on disk before the rename: a power cut then left an empty file behind it
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_refusal(folder) -> tuple[Path, str] | None:
    """(the nearest existing folder of `folder`, why nothing can be created in it: "read-only file system",
    "permission denied", "a file, not a folder") or None when something can. Probed by creating and removing a
    temporary folder there, so nothing is left behind: a permission bit says too little (root may write
    anywhere, yet not on a read-only mount or in /proc). The run folders' check and the reports' share it."""
    existing = Path(folder)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return existing, "a file, not a folder"
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".probe-", dir=existing))
    except OSError as error:
        return existing, (error.strerror or str(error)).lower()
    return None


def resume_command(command: list[str], out: Path) -> list[str]:
    """The command line that continues this run: the same, with --out and --resume."""
    args, skip = [], False
    for word in command:
        if skip:
            skip = False
            continue
        if word == "--out":
            skip = True
            continue
        if word.startswith("--out=") or word == "--resume":
            continue
        args.append(word)
    return [*args, "--out", str(out), "--resume"]


def resume_command_line(run_dir: Path, meta: dict, fallback: str = "the same command and --resume") -> str:
    """The run's last command (run.json keeps it) with --out and --resume, as one line to copy, or `fallback` where
    run.json holds none or one that does not parse (an unbalanced quote in an edited file)."""
    commands = meta.get("commands") if isinstance(meta, dict) else None
    try:
        return shlex.join(resume_command(shlex.split(commands[-1]), Path(run_dir)))
    except (TypeError, IndexError, ValueError, AttributeError):
        return fallback
