"""`python -m reports RUN_DIR | BENCH.json`: render a report from result files;
`python -m reports compare RUN_A RUN_B`: compare two runs cell by cell."""
from __future__ import annotations

import argparse
import gc
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """The exit code: 0, 1 (compare: a gate failed), 2 (a usage error), 130 (Ctrl-C: one line, not a traceback;
    every file is written whole or not at all, so what is there stays readable)."""
    try:
        return _main(sys.argv[1:] if argv is None else argv)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


def _main(argv: list[str]) -> int:
    # Imported here, not at the top: Ctrl-C while pandas or matplotlib are imported is an interrupt too.
    from reports.load import NotARunError, unwritable
    from reports.renderers import kind_of, render

    if argv[:1] == ["compare"]:
        from reports.compare import main as compare_main

        return compare_main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m reports",
        description="Render the HTML/PNG report of a run folder or of a pytest-benchmark JSON file. "
                    "See also: python -m reports compare RUN_A RUN_B")
    parser.add_argument("source", type=Path,
                        help="the --out folder of a python -m benchmarks.variance, vae or trajectory run, or a --benchmark-json file")
    parser.add_argument("--out", type=Path, help="for a JSON file: where to write (default: <name>-report/)")
    args = parser.parse_args(argv)
    try:
        benchmark = kind_of(args.source) == "benchmark"
        folder = (args.out or args.source.with_name(f"{args.source.stem}-report")) if benchmark else args.source
        why = unwritable(folder)
        if why:  # said now, not as an OSError traceback once the figures are drawn
            print(f"error: cannot write the report into {folder} ({why}); "
                  + ("pass --out DIR, a folder you can write" if benchmark else
                     "copy the run folder to a place you can write and render the copy"), file=sys.stderr)
            return 2
        options = {"out_dir": args.out} if benchmark else {}
        page = render(args.source, **options)
        if benchmark:
            from reports.throughput import load_speed_goals, speed_goal_table_text

            goals = load_speed_goals(args.source)
            if goals:
                print(speed_goal_table_text(goals))
    except (NotARunError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"report: {page.resolve().as_uri()}")
    return 0


def quietly_on_a_closed_pipe(run) -> int:
    """run(), ending quietly when stdout's reader went away (`python -m reports compare A B | head`), as
    Python's documentation advises, instead of a BrokenPipeError traceback."""
    try:
        code = run()
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit's own flush must not fail
        return 1


if __name__ == "__main__":
    code = quietly_on_a_closed_pipe(main)
    # The interpreter's last garbage collection, over torch's and matplotlib's objects, took 1.4 s at exit;
    # frozen objects are skipped by it (files are closed and atexit handlers run as before).
    gc.freeze()
    sys.exit(code)
