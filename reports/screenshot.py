"""`python -m reports.screenshot RUN_DIR`: open the run's index.html in headless Chromium, check it (every
image loads, no console errors, the summary table) and save a full-page screenshot (default
RUN_DIR/screenshot.png). Exit 0: the page is fine; 1: it is not (the screenshot is still saved);
2: no page, or no browser here (install it with `apt-get install chromium chromium-driver`)."""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from reports.browser import Browser, BrowserUnavailable
from reports.load import unwritable


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reports.screenshot", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="a run folder holding index.html, or an HTML file")
    parser.add_argument("--out", type=Path, help="where to save the PNG (default: screenshot.png beside the page)")
    parser.add_argument("--width", type=int, default=1400, help="window width in CSS pixels (default 1400)")
    parser.add_argument("--max-height", type=int, help="keep only the top of a long page (CSS pixels)")
    args = parser.parse_args(argv)
    page = args.source / "index.html" if args.source.is_dir() else args.source
    if not page.is_file():
        print(f"error: {args.source} holds no index.html; render it first with python -m reports "
              f"{shlex.quote(str(args.source))}"
              if args.source.is_dir() else f"error: no page at {page}", file=sys.stderr)
        return 2
    if page.suffix.lower() not in (".html", ".htm"):  # a benchmark's JSON, a CSV: Chromium would show it raw
        print(f"error: {page} is not an HTML page; pass a run folder (its index.html) or a page that "
              "python -m reports rendered (for a benchmark JSON: python -m reports FILE.json, then its page)",
              file=sys.stderr)
        return 2
    out = args.out or page.with_name("screenshot.png")
    why = unwritable(out.parent)
    if why:  # before a browser starts
        print(f"error: cannot write the screenshot into {out.parent} ({why}); pass --out FILE.png in a folder you "
              "can write", file=sys.stderr)
        return 2
    try:
        with Browser(width=args.width) as browser:
            check = browser.check(page, out, args.max_height)
    except BrowserUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    width, height = check.size
    print(f"{len(check.images)} images, {len(check.broken_images)} not loaded; {len(check.console_errors)} console "
          f"errors; summary table: {f'{check.summary_rows} rows' if check.has_summary else 'absent'}; "
          f"page {width} x {height} px")
    for problem in check.problems:
        print(f"  {problem}")
    print(f"screenshot: {out}")
    return 0 if check.ok else 1


if __name__ == "__main__":
    sys.exit(main())
