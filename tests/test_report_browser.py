"""The report pages in a real headless Chromium (reports.browser): every image loads, nothing is logged as an
error, the summary table is there, and a screenshot lands in the run folder. `.ci/run` installs Debian's
chromium and chromium-driver where they are absent; where no browser can be found or started, these tests
skip with the reason."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from reports.browser import Browser, BrowserUnavailable

ROOT = Path(__file__).parents[1]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def browser():
    try:
        session = Browser()
    except BrowserUnavailable as error:
        pytest.skip(f"no headless Chromium here: {error}")
    yield session
    session.close()


def cli(*argv) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", *map(str, argv)], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(process: subprocess.Popen) -> str:
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr[-3000:]
    return stdout


def assert_real_screenshot(path: Path, size: tuple[int, int]) -> None:
    assert path.read_bytes()[:8] == PNG and path.stat().st_size > 50_000
    with Image.open(path) as image:
        assert image.size == size and size[1] > 1000
        assert len(image.convert("RGB").getcolors(1_000_000) or range(1_000_001)) > 100  # not a blank page


def test_variance_report_loads_in_chromium(tmp_path, browser):
    out = tmp_path / "run"
    finish(cli("benchmarks.variance", "--estimators", "reinforce", "gumbel_softmax", "st_gumbel_softmax",
               "--objectives", "tucker-0.45", "tucker-0.45@*", "--tau", 0.3, 1, 3, "--estimates", 300, "--out", out))
    check = browser.check(out / "index.html", out / "screenshot.png")
    assert [src for src, _ in check.images] == ["temperature.png", "tucker-0.45.png", "tucker-0.45_theta_-2.png",
                                                "tucker-0.45_theta_1.png"]
    assert check.broken_images == []
    assert check.console_errors == []
    assert_real_screenshot(out / "screenshot.png", check.size)
    # The summary table at the top of the page: <table id="summary"> (or a table inside the element with
    # id "summary"), with a header and at least one row.
    assert check.has_summary and check.summary_rows >= 2, "no summary table (table#summary or #summary table)"


def test_vae_and_trajectory_reports_load_in_chromium(tmp_path, browser):
    vae = cli("benchmarks.vae", "--latent", "gaussian:4", "--estimators", "pathwise", "reinforce", "--steps", 20,
              "--hidden", 32, "--evals", 2, "--grad-estimates", 50, "--iw-samples", 5, "--out", tmp_path / "vae")
    trajectory = cli("benchmarks.trajectory", "--problems", "tucker-0.45", "--estimators", "exact", "reinforce",
                     "--steps", 40, "--measure-every", 10, "--estimates", 50, "--out", tmp_path / "trajectory")
    vae_images = ["curves.png", "pictures-gaussian-4-reconstructions-step-000020.png",
                  "pictures-gaussian-4-prior-step-000020.png"]
    for process, run, images in ((vae, "vae", vae_images), (trajectory, "trajectory", ["tucker-0.45.png"])):
        finish(process)
        check = browser.check(tmp_path / run / "index.html", tmp_path / run / "screenshot.png")
        assert [src for src, _ in check.images] == images and check.ok, check.problems
        assert (tmp_path / run / "screenshot.png").read_bytes()[:8] == PNG


def test_a_broken_image_and_a_console_error_fail_the_checks(tmp_path, browser):
    page = tmp_path / "index.html"
    page.write_text('<!doctype html><html><head><meta charset="utf-8"><title>broken</title></head><body>'
                    '<img src="missing.png" alt="missing"><script>console.error("boom")</script></body></html>')
    check = browser.check(page)
    assert check.broken_images == ["missing.png"]
    assert any('"boom"' in line for line in check.console_errors)
    assert any("missing.png" in line for line in check.console_errors)  # the failed load is logged too
    assert not check.ok and not check.has_summary
    thrown = tmp_path / "thrown.html"
    thrown.write_text("<!doctype html><title>thrown</title><script>undefinedFunction()</script>")
    assert any("undefinedFunction" in line for line in browser.check(thrown).console_errors)


def test_the_summary_check_finds_the_table_by_its_id(tmp_path, browser):
    rows = "<tr><th>estimator</th></tr><tr><td>reinforce</td></tr>"
    pages = {"section": f'<section id="summary"><h2>Summary</h2><table>{rows}</table></section>',
             "table": f'<table id="summary">{rows}</table>',
             "none": f'<table>{rows}</table><p id="summary">no table here</p>'}
    for name, body in pages.items():
        (tmp_path / f"{name}.html").write_text(f"<!doctype html><title>{name}</title>{body}")
    assert browser.check(tmp_path / "section.html").summary_rows == 2
    assert browser.check(tmp_path / "table.html").summary_rows == 2
    assert not browser.check(tmp_path / "none.html").has_summary


def test_screenshot_cli_saves_the_page_and_says_what_is_wrong(tmp_path, browser):
    good = tmp_path / "good"
    good.mkdir()
    Image.new("RGB", (300, 200), "teal").save(good / "plot.png")
    (good / "index.html").write_text('<!doctype html><title>good</title><h1>good</h1><img src="plot.png" alt="">'
                                     '<div style="height:2500px"></div>')
    done = subprocess.run([sys.executable, "-m", "reports.screenshot", str(good), "--max-height", "1200"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 images, 0 not loaded; 0 console errors" in done.stdout
    with Image.open(good / "screenshot.png") as image:
        assert image.size == (1400, 1200)
    bad = tmp_path / "bad.html"
    bad.write_text('<!doctype html><title>bad</title><img src="missing.png"><script>console.error("boom")</script>')
    done = subprocess.run([sys.executable, "-m", "reports.screenshot", str(bad), "--out", str(tmp_path / "bad.png")],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 1 and "image did not load: missing.png" in done.stdout and '"boom"' in done.stdout
    assert (tmp_path / "bad.png").read_bytes()[:8] == PNG


def test_screenshot_cli_refuses_a_file_that_is_not_a_page(tmp_path):
    """Found by a new user: a benchmark's JSON was screenshot raw (Chromium's JSON viewer) and reported as fine.
    Refused before any browser starts, so this runs without Chromium too."""
    data = tmp_path / "bench.json"
    data.write_text('{"benchmarks": []}')
    done = subprocess.run([sys.executable, "-m", "reports.screenshot", str(data)], capture_output=True, text=True,
                          cwd=ROOT)
    assert done.returncode == 2 and "is not an HTML page" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "screenshot.png").exists()


def test_screenshot_cli_on_a_folder_without_a_page_says_to_render_it_first(tmp_path):
    done = subprocess.run([sys.executable, "-m", "reports.screenshot", str(tmp_path)], capture_output=True, text=True,
                          cwd=ROOT)
    assert done.returncode == 2 and f"{tmp_path} holds no index.html; render it first with python -m reports " \
        f"{tmp_path}" in done.stderr, done.stderr


def test_screenshot_cli_into_a_read_only_folder_is_one_message_before_a_browser_starts(tmp_path, capsys,
                                                                                      monkeypatch):
    from reports.screenshot import main as screenshot_main
    from tests.test_report import read_only_file_system

    (tmp_path / "index.html").write_text("<html></html>")
    read_only_file_system(monkeypatch)
    assert screenshot_main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot write the screenshot into {tmp_path} (read-only file system)"), err
