"""gradbench's measuring side: tasks (gradient problems), the harness, metrics, the CLIs.

`benchmarks.measure(estimator, problem, ...)` is the public entry: the tidy row of bias, variance and
cost for any problem that follows benchmarks.tasks.protocol. `benchmarks.rerun(row)` measures a variance
sweep's row again.
"""
__all__ = ["measure", "rerun"]


def __getattr__(name: str):
    # Imported on first use, so that `python -m benchmarks.variance --bad-option` answers before torch loads.
    if name in __all__:
        from benchmarks import measurement

        return getattr(measurement, name)
    raise AttributeError(f"module 'benchmarks' has no attribute {name!r}")
