"""Errors an estimator raises for arguments it cannot work with."""
from __future__ import annotations


class NotApplicableError(ValueError):
    """The estimator cannot be applied here (too few samples, support too large to enumerate, ...).

    The harness records such a cell as skipped with this message; any other exception is a bug
    and stops the run.
    """


def check_num_samples(num_samples: int, minimum: int = 1, who: str = "this estimator") -> None:
    if not isinstance(num_samples, int) or num_samples < minimum:
        raise NotApplicableError(
            f"{who} needs num_samples >= {minimum}, got {num_samples!r}"
            + (" (a leave-one-out baseline averages the other samples)" if minimum == 2 else "")
        )

