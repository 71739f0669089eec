"""Log-axis labels as plain text (reports.ticks): the same ticks labelled as matplotlib would, without mathtext."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as ticker  # noqa: E402

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
    labels.sort(key=lambda item: item[1].x0)
    return [(a, b) for (a, box_a), (b, box_b) in zip(labels, labels[1:]) if box_a.x1 > box_b.x0]


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
    assert [t.get_text() for t in ax.xaxis.get_ticklabels() if t.get_text()] == ["4×10⁻⁸", "5×10⁻⁸", "6×10⁻⁸"]
    assert [t.get_text() for t in ax.yaxis.get_ticklabels() if t.get_text()] == ["5×10¹", "6×10¹"]
    assert not _overlapping_labels(fig, ax.xaxis)
    plt.close(fig)
