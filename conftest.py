"""Root conftest: loads the speed-goal plugin (`--speed-goals`, the `speed_goal` fixture, the goal table).

It is loaded here rather than from tests/benchmarks/conftest.py because pytest only knows a
command-line option added by a conftest that it reads at start-up: the root's always, a sub-folder's
only when pytest is pointed at it.
"""
pytest_plugins = ["tests.benchmarks.speed_goals_plugin"]
