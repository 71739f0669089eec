"""`python -m reports RUN_DIR`: re-render a run's report from its result files."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from reports.html import render_report
from reports.load import NotARunError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reports", description="Render the HTML/PNG report of a run.")
    parser.add_argument("run_dir", type=Path, help="the --out folder of a python -m benchmarks.variance run")
    args = parser.parse_args(argv)
    try:
        page = render_report(args.run_dir)
    except NotARunError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"report: {page.resolve().as_uri()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
