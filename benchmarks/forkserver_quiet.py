"""Imported first by the local pool's fork server (benchmarks.executors.WORKER_MODULES), and only there.

The fork server imports torch and the suite before Python's forkserver code sets Ctrl-C aside (it ignores
SIGINT only once its imports are done). Ctrl-C at a terminal reaches the whole process group, so during those
seconds the fork server died with a 20-line KeyboardInterrupt traceback beside the driver's one-line
"interrupted" (found by a tester). The driver handles Ctrl-C and stops the workers; the fork server ignores it
from its first import on, as its workers do (benchmarks.executors._worker_main).
"""
import signal

signal.signal(signal.SIGINT, signal.SIG_IGN)
