"""Tick labels and minor ticks of the report's figures, and saving a figure with them.

Two costs of drawing a figure of many small log-axis panels buy nothing a reader sees (measured on
the README's main command's 20 figures, drawn serially):

- matplotlib writes a log axis's labels as mathtext ('$\\mathdefault{10^{-3}}$'), and parsing one
  label with pyparsing takes about 15 ms. `PlainLogFormatter` writes the same label as plain text with
  Unicode superscripts ('10⁻³', '2×10⁻³'), which DejaVu Sans (matplotlib's default font) carries: the
  20 figures took 15.4 s instead of 17.8 s.
- Each minor tick is a few artists; a log axis spanning many decades holds hundreds of them.
  `tidy_ticks` drops minor ticks on axes spanning more than two decades and keeps them at 2 and 5
  elsewhere (on an axis spanning less than two decades they carry the only labels); an axis that holds
  fewer than two powers of ten gets 2 or 3 round ticks instead (`few_round_ticks`).
"""
from __future__ import annotations

import io
import math
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as ticker  # noqa: E402
import numpy as np  # noqa: E402

from reports.files import atomic_write  # noqa: E402

MAX_DECADES_WITH_MINOR_TICKS = 2.0
# Font sizes (points) of the sweep's panels (drawn at reports.html.FIGURE_DPI): 7-point tick labels at 80 dpi had
# superscripts about 5 pixels tall, and a new user could not tell 10^-2 from 10^-3 without zooming.
TICK_SIZE = 8.5
LABEL_SIZE = 9
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


# Round ticks for a short log axis, coarsest first: the first set that puts 2 ticks inside wins.
ROUND_MANTISSAS = ((1,), (1, 2, 5), (1, 2, 3, 4, 5, 6, 8))


def few_round_ticks(limits) -> list[float] | None:
    """2 or 3 round ticks inside the limits of a log axis that holds fewer than two powers of ten (it spans
    under two decades); None for other axes, whose powers of ten matplotlib labels itself.

    The coarsest of 1, {1, 2, 5}, {1, ..., 8} times a power of ten that puts 2 ticks inside; on a narrower
    axis, multiples of 1, 2 or 5 times a smaller power (1.5, 2 x 10^-6), as a linear axis would have.
    On such an axis matplotlib falls back to linear minor ticks (3.5, 4, 5.5, 6 x 10^-8), whose labels
    overlapped on a narrow panel, or labels a single tick."""
    low, high = sorted(limits)
    if low <= 0 or decades(limits) >= 2:
        return None
    first = math.floor(math.log10(low))
    for mantissas in ROUND_MANTISSAS:
        ticks = [tick for k in range(first, first + 3) for m in mantissas
                 if low <= (tick := float(f"{m}e{k}")) <= high]
        if len(ticks) >= 2:
            if mantissas == (1,):
                return None  # two powers of ten inside: matplotlib's own labels
            break
    else:
        located = ticker.MaxNLocator(nbins=2, steps=[1, 2, 5, 10], min_n_ticks=2).tick_values(low, high)
        ticks = [float(f"{tick:.12g}") for tick in located if low <= tick <= high]
    if len(ticks) < 2:
        return None
    ticks = _spread(ticks, decades(limits) / 4)
    if len({round_label(tick) for tick in ticks}) < len(ticks):  # an axis narrower than the labels' 6 digits
        return ticks[:1]  # (a constant figure): one label, not the same label thrice
    return ticks


def _spread(ticks: list[float], apart: float) -> list[float]:
    """The ticks (ascending) less those within `apart` decades of the last one kept, at most 3 of them."""
    kept = [ticks[0]]
    for tick in ticks[1:]:
        if math.log10(tick / kept[-1]) >= apart:
            kept.append(tick)
    return kept[:3] if len(kept) >= 2 else [ticks[0], ticks[-1]]


def round_label(value: float, pos=None) -> str:
    """'1.5×10⁻⁶', '2×10⁻⁶', '10⁻⁶': a tick of `few_round_ticks` in the plain labels' style."""
    exponent = math.floor(math.log10(value) + 1e-9)
    mantissa = float(f"{value / 10 ** exponent:.10g}")  # 1.5, not 1.5000000000000002
    power = f"10{str(exponent).translate(_SUPERSCRIPTS)}"
    return power if mantissa == 1 else f"{mantissa:.6g}×{power}"


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
    if isinstance(axis.get_major_locator(), ticker.FixedLocator):
        # Ticks placed by hand (the measured S or tau values of a swept axis) stay where they are, alone: a
        # labelled minor tick between them (2×10¹ between 8 and 64) would read as one more measured value.
        axis.set_minor_locator(ticker.NullLocator())
        return
    few = few_round_ticks(limits)
    if few is not None:
        axis.set_major_locator(ticker.FixedLocator(few))
        axis.set_major_formatter(ticker.FuncFormatter(round_label))
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
    """Tidy the ticks, write the PNG and free the figure. Written whole or not at all (atomic_write): Ctrl-C
    while savefig wrote into the file left half an image behind."""
    try:
        tidy_ticks(fig)
        image = io.BytesIO()
        fig.savefig(image, dpi=dpi, format=Path(path).suffix.lstrip(".") or "png")
        atomic_write(Path(path), image.getvalue())
    finally:  # freed even when drawing fails or is interrupted: pyplot would keep it (and its memory) for good
        plt.close(fig)
