"""gradbench's measuring side: tasks (gradient problems), the harness, metrics, the CLIs.

`benchmarks.measure(estimator, problem, ...)` is the public entry: the tidy row of bias, variance and
cost for any problem that follows benchmarks.tasks.protocol.
"""
from benchmarks.measurement import measure  # noqa: F401

__all__ = ["measure"]
