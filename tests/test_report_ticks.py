"""Log-axis labels as plain text (reports.ticks): the same ticks labelled as matplotlib would, without mathtext."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as ticker  # noqa: E402

import pytest  # noqa: E402

from reports.ticks import PlainLogFormatter, plain_label, save_figure, tidy_ticks  # noqa: E402


def test_mathtext_labels_become_superscripts():
    assert plain_label(r"$\mathdefault{10^{-3}}$") == "10⁻³"
    assert plain_label(r"$\mathdefault{10^{12}}$") == "10¹²"
    assert plain_label(r"$\mathdefault{2\times10^{-3}}$") == "2×10⁻³"
    assert plain_label(r"$\mathdefault{10^{0}}$") == "10⁰"
    assert plain_label("0.1") == "0.1"  # a label set by hand stays as it is


def test_the_plain_formatter_labels_the_ticks_matplotlib_labels():
    values = [1e-5, 2e-5, 5e-5, 1e-4, 3e-4, 1.0, 100.0]
    for only_base in (True, False):
        fig, ax = plt.subplots()
        ax.set_yscale("log")
        ax.set_ylim(1e-5, 1e-3)
        mathtext = ticker.LogFormatterSciNotation(labelOnlyBase=only_base)
        plain = PlainLogFormatter.like(mathtext)
        for formatter in (mathtext, plain):
            formatter.set_axis(ax.yaxis)
            formatter.set_locs(values)
        assert [plain(v) for v in values] == [plain_label(mathtext(v)) for v in values]
        assert any(plain(v) for v in values) and not any("$" in plain(v) for v in values)
        plt.close(fig)


def test_a_saved_figure_has_no_mathtext_and_thinned_minor_ticks(tmp_path):
    fig, (wide, narrow, linear) = plt.subplots(1, 3)
    wide.loglog([1e-6, 1.0], [1e-8, 1e3])     # many decades: no minor ticks
    narrow.semilogy([0, 1], [0.02, 0.9])      # under two decades: minor ticks at 2 and 5
    linear.plot([0, 1], [0, 1])
    tidy_ticks(fig)
    labels = [t.get_text() for ax in (wide, narrow) for axis in (ax.xaxis, ax.yaxis)
              for t in axis.get_ticklabels(which="both")]
    assert labels and not any("$" in text for text in labels)
    assert "10⁻⁶" in [t.get_text() for t in wide.xaxis.get_ticklabels()]
    assert isinstance(wide.yaxis.get_minor_locator(), ticker.NullLocator)
    assert list(narrow.yaxis.get_minor_locator()._subs) == [2.0, 5.0]
    assert isinstance(linear.yaxis.get_major_formatter(), ticker.ScalarFormatter)  # a linear axis is left alone
    save_figure(fig, tmp_path / "figure.png", dpi=50)
    assert (tmp_path / "figure.png").stat().st_size > 0 and not plt.get_fignums()


def _overlapping_labels(fig, axis) -> list[tuple[str, str]]:
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    labels = [(t.get_text(), t.get_window_extent(renderer)) for t in axis.get_ticklabels(which="both")
              if t.get_visible() and t.get_text()]
    along = (lambda box: (box.x0, box.x1)) if axis.axis_name == "x" else (lambda box: (box.y0, box.y1))
    labels.sort(key=lambda item: along(item[1])[0])
    return [(a, b) for (a, box_a), (b, box_b) in zip(labels, labels[1:]) if along(box_a)[1] > along(box_b)[0]]


def _labels(axis) -> list[str]:
    return [t.get_text() for t in axis.get_ticklabels(which="both") if t.get_visible() and t.get_text()]


def test_a_log_axis_within_a_decade_gets_a_few_round_labels_that_do_not_overlap():
    """Seen in the main command's report: seconds per estimate from 3.3e-8 to 6.8e-8 on a narrow panel got
    matplotlib's linear fallback labels 3.5, 4, 5.5, 6 x 10^-8, two pairs of them overlapping."""
    fig, ax = plt.subplots(figsize=(2.8, 2.0))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(3.3e-8, 6.8e-8)
    ax.set_ylim(48, 66)
    ax.tick_params(labelsize=7)
    tidy_ticks(fig)
    assert _labels(ax.xaxis) == ["4×10⁻⁸", "5×10⁻⁸", "6×10⁻⁸"]
    assert _labels(ax.yaxis) == ["5×10¹", "6×10¹"]
    assert not _overlapping_labels(fig, ax.xaxis)
    plt.close(fig)


@pytest.mark.parametrize("limits, expected", [
    # Found by a new user in the main command's and the README's figures: where fewer than 2 or more than 4
    # of the 1-8 x 10^k ticks fit, matplotlib's own labels came back (overlapping) or a single label.
    ((1.15e-6, 2.05e-6), ["1.5×10⁻⁶", "2×10⁻⁶"]),
    ((1.6e-7, 2.3e-7), ["1.6×10⁻⁷", "1.8×10⁻⁷", "2×10⁻⁷"]),
    ((9.6e-6, 1.22e-5), ["10⁻⁵", "1.2×10⁻⁵"]),
    ((0.0136, 0.088), ["2×10⁻²", "5×10⁻²"]),
    ((1.001, 1.002), ["1.001×10⁰", "1.002×10⁰"]),
    # Over a decade, with one power of ten inside: matplotlib labelled it alone.
    ((6e-8, 7e-7), ["10⁻⁷", "2×10⁻⁷", "5×10⁻⁷"]),
    ((0.015, 0.9), ["2×10⁻²", "10⁻¹", "5×10⁻¹"]),
])
def test_every_short_log_axis_gets_two_or_three_distinct_labels_that_do_not_overlap(limits, expected):
    fig, ax = plt.subplots(figsize=(2.8, 2.0))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(*limits)
    ax.set_ylim(*limits)
    ax.tick_params(labelsize=7)
    tidy_ticks(fig)
    for axis in (ax.xaxis, ax.yaxis):
        assert _labels(axis) == expected
        assert not _overlapping_labels(fig, axis), _labels(axis)
    plt.close(fig)


def test_ticks_placed_by_hand_stay_and_a_constant_axis_gets_one_label():
    """Found trying the README: a swept S axis (ticks at the measured 2, 8, 64) got round ticks instead, and
    an MSE that was exactly constant (an axis 1e-9 wide) got '1.59391×10⁻²' three times."""
    fig, (swept, constant) = plt.subplots(1, 2, figsize=(5.6, 2.0))
    swept.set_xscale("log")
    swept.set_xlim(1.7, 75)
    swept.set_xticks([2, 8, 64], ["2", "8", "64"])
    constant.set_yscale("log")
    constant.set_ylim(0.0159391, 0.01593912)
    tidy_ticks(fig)
    assert _labels(swept.xaxis) == ["2", "8", "64"]
    assert _labels(constant.yaxis) == ["1.59391×10⁻²"]
    plt.close(fig)


def test_point_labels_that_would_sit_on_each_other_are_left_out():
    """Found trying the README: the tau labels beside nearly coincident points of an MSE-vs-cost panel
    overlapped ('0.1 / 0.447 / 2' in one blot). The later of two labels closer than LABEL_SPACING of the
    panel's span in both directions is left out; labels apart in either direction stay."""
    from reports.plots import _label_points

    fig, ax = plt.subplots()
    _label_points(ax, [(1e-6, 1e-3, "0.1"), (1.01e-6, 1.01e-3, "0.447"), (1e-5, 1e-3, "2"), (1e-6, 1e-1, "5")])
    assert [text.get_text() for text in ax.texts] == ["0.1", "2", "5"]
    plt.close(fig)
