"""`python -m reports RUN_DIR | BENCH.json`: render a report from result files;
`python -m reports compare RUN_A RUN_B`: compare two runs cell by cell."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from reports.html import render_report
from reports.load import NotARunError, load_run


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["compare"]:
        from reports.compare import main as compare_main

        return compare_main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m reports",
        description="Render the HTML/PNG report of a run folder or of a pytest-benchmark JSON file. "
                    "See also: python -m reports compare RUN_A RUN_B")
    parser.add_argument("source", type=Path,
                        help="the --out folder of a python -m benchmarks.variance run, or a --benchmark-json file")
    parser.add_argument("--out", type=Path, help="for a JSON file: where to write (default: <name>-report/)")
    args = parser.parse_args(argv)
    try:
        if args.source.suffix == ".json" and args.source.is_file():
            from reports.throughput import load_speed_goals, render_benchmark_json, speed_goal_table_text

            page = render_benchmark_json(args.source, args.out)
            goals = load_speed_goals(args.source)
            if goals:
                print(speed_goal_table_text(goals))
        elif load_run(args.source)[1].get("kind") == "vae":
            from reports.vae import render_vae_report

            page = render_vae_report(args.source)
        elif load_run(args.source)[1].get("kind") == "trajectory":
            from reports.trajectory import render_trajectory_report

            page = render_trajectory_report(args.source)
        else:
            page = render_report(args.source)
    except (NotARunError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"report: {page.resolve().as_uri()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
