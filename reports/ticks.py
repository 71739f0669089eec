"""Tick labels and minor ticks of the report's figures, and saving a figure with them.

Two costs of drawing a figure of many small log-axis panels buy nothing a reader sees (measured on
the README's main command's 20 figures, drawn serially):

- matplotlib writes a log axis's labels as mathtext ('$\\mathdefault{10^{-3}}$'), and parsing one
  label with pyparsing takes about 15 ms. `PlainLogFormatter` writes the same label as plain text with
  Unicode superscripts ('10⁻³', '2×10⁻³'), which DejaVu Sans (matplotlib's default font) carries: the
  20 figures took 15.4 s instead of 17.8 s.
- Each minor tick is a few artists; a log axis spanning many decades holds hundreds of them.
  `tidy_ticks` drops minor ticks on axes spanning more than two decades and keeps them at 2 and 5
  elsewhere (on an axis spanning less than two decades they carry the only labels); an axis spanning
  less than one decade gets a few round ticks instead (`within_a_decade`).
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as ticker  # noqa: E402
import numpy as np  # noqa: E402

MAX_DECADES_WITH_MINOR_TICKS = 2.0
_MATHTEXT = re.compile(r"^\$\\mathdefault\{(.*)\}\$$")
_EXPONENT = re.compile(r"\^\{(-?\d+)\}")
_SUPERSCRIPTS = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def plain_label(mathtext: str) -> str:
    """'$\\mathdefault{2\\times10^{-3}}$' -> '2×10⁻³'; any other text unchanged."""
    match = _MATHTEXT.match(mathtext)
    if not match:
        return mathtext
    body = match.group(1).replace(r"\times", "×")
    return _EXPONENT.sub(lambda m: m.group(1).translate(_SUPERSCRIPTS), body)


class PlainLogFormatter(ticker.LogFormatterSciNotation):
    """matplotlib's log-axis labels (the same choice of which ticks to label), as plain text."""

    def __call__(self, x, pos=None):
        return plain_label(super().__call__(x, pos))

    @classmethod
    def like(cls, formatter: ticker.LogFormatter) -> PlainLogFormatter:
        return cls(base=formatter._base, labelOnlyBase=formatter.labelOnlyBase,
                   minor_thresholds=formatter.minor_thresholds, linthresh=formatter._linthresh)


def decades(limits) -> float:
    """How many decades an axis's limits span (0 where they include 0 or less)."""
    low, high = sorted(limits)
    return float(np.log10(high / low)) if low > 0 else 0.0


def within_a_decade(limits, most: int = 4) -> list[float] | None:
    """Ticks at 1, 2, 3, 4, 5, 6 and 8 times a power of ten inside the limits, where the axis spans less
    than a decade and 2 to `most` of them fit; else None. On such an axis matplotlib has no decade to label
    and falls back to linear minor ticks (3.5, 4, 5.5, 6 x 10^-8), whose labels overlapped on a narrow panel."""
    low, high = sorted(limits)
    if low <= 0 or decades(limits) >= 1:
        return None
    first = math.floor(math.log10(low))
    candidates = [float(f"{m}e{k}") for k in (first, first + 1) for m in (1, 2, 3, 4, 5, 6, 8)]
    ticks = [tick for tick in candidates if low <= tick <= high]
    return ticks if 2 <= len(ticks) <= most else None


def tidy_axis(axis, limits) -> None:
    """Plain labels and thinned minor ticks on one log axis; a linear axis is left as it is."""
    if axis.get_scale() != "log":
        return
    for formatter, setter in ((axis.get_major_formatter(), axis.set_major_formatter),
                              (axis.get_minor_formatter(), axis.set_minor_formatter)):
        if isinstance(formatter, ticker.LogFormatterMathtext) and not isinstance(formatter, PlainLogFormatter):
            setter(PlainLogFormatter.like(formatter))
    if not isinstance(axis.get_minor_locator(), ticker.LogLocator):
        return  # minor ticks already off (ax.minorticks_off) or placed by hand
    within = within_a_decade(limits)
    if within is not None:
        axis.set_major_locator(ticker.FixedLocator(within))
        axis.set_minor_locator(ticker.NullLocator())
    elif decades(limits) > MAX_DECADES_WITH_MINOR_TICKS:
        axis.set_minor_locator(ticker.NullLocator())
    else:
        axis.set_minor_locator(ticker.LogLocator(subs=(2.0, 5.0)))


def tidy_ticks(fig) -> None:
    """`tidy_axis` on both axes of every panel of `fig`, at their final limits."""
    for ax in fig.axes:
        tidy_axis(ax.xaxis, ax.get_xlim())
        tidy_axis(ax.yaxis, ax.get_ylim())


def save_figure(fig, path: str | Path, dpi: int) -> None:
    """Tidy the ticks, write the PNG and free the figure."""
    tidy_ticks(fig)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
