"""Argument checks shared by the command-line tools: each bad value gets a message naming the fix."""
from __future__ import annotations

import argparse
import math

import torch


class UsageError(Exception):
    """A user mistake: printed as one line and a non-zero exit, never a traceback."""


def positive_finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"temperature must be finite and > 0, got {text}; e.g. --tau 0.1 1.0")
    return value


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


def resolve_devices(choice: str | None) -> tuple[list[str], str]:
    """Devices to run on, and a note for run.json on what was chosen and why."""
    has_cuda = torch.cuda.is_available()
    if choice == "cuda" and not has_cuda:
        raise UsageError("--device cuda was asked for, but torch sees no CUDA GPU "
                         f"(torch {torch.__version__}, cuda build: {torch.version.cuda or 'none'}); "
                         "use --device cpu, or --device all to use whatever is present")
    if choice in ("cpu", "cuda"):
        return [choice], f"--device {choice}"
    devices = ["cpu", "cuda"] if has_cuda else ["cpu"]
    note = "cpu and cuda" if has_cuda else "cpu only: no CUDA GPU is available"
    return devices, f"--device {choice or 'default'}: {note}"
