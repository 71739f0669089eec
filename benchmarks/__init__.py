"""gradbench's measuring side: tasks (gradient problems), the harness, metrics, the CLIs.

`benchmarks.measure(estimator, problem, ...)` is the public entry: the tidy row of bias, variance and
cost for any problem that follows benchmarks.tasks.protocol.
"""
__all__ = ["measure"]


def __getattr__(name: str):
    # Imported on first use, so that `python -m benchmarks.variance --bad-option` answers before torch loads.
    if name == "measure":
        from benchmarks.measurement import measure

        return measure
    raise AttributeError(f"module 'benchmarks' has no attribute {name!r}")
