"""Where the kernel's process filesystem is mounted: /proc, or GRADBENCH_PROC where a container or a test
mounts it elsewhere. Every reader of it (the CPU's name, the peak memory, the wait for a CPU) goes through
`PROC`, and each falls back (None, NaN, the lifetime peak) where the files are not there."""
from __future__ import annotations

import os
from pathlib import Path

PROC = Path(os.environ.get("GRADBENCH_PROC", "/proc"))
