"""Open a report page in a real headless Chromium: do its images load, does it log errors, is the
summary table there; and save a full-page screenshot.

Driven through Selenium 4 (the `dev` extra) with the system's Chromium and chromedriver (Debian:
`apt-get install chromium chromium-driver`); Selenium is always handed the driver's path, so it never
downloads one. `GRADBENCH_CHROMIUM` and `GRADBENCH_CHROMEDRIVER` name other binaries. Where either is
missing or the browser does not start, `Browser()` raises `BrowserUnavailable` with the reason.
"""
from __future__ import annotations

import base64
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from reports.files import atomic_write

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
DRIVERS = ("chromedriver",)
ARGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--allow-file-access-from-files", "--hide-scrollbars", "--force-device-scale-factor=1")
# The summary table: a <table id="summary">, or a table inside the element with that id.
SUMMARY_SELECTOR = "table#summary, #summary table"

# Runs in the page once it has loaded: waits for every <img> to finish (loaded or failed), then reports.
_INSPECT = """
const done = arguments[arguments.length - 1];
const selector = arguments[0];
const images = Array.from(document.images);
const settle = img => img.complete ? Promise.resolve() : new Promise(ok => {
  img.addEventListener('load', ok, {once: true}); img.addEventListener('error', ok, {once: true}); });
Promise.all(images.map(settle)).then(() => {
  const summary = document.querySelector(selector);
  done({
    readyState: document.readyState,
    images: images.map(img => [img.getAttribute('src'), img.naturalWidth]),
    summaryRows: summary ? summary.querySelectorAll('tr').length : null,
    width: Math.ceil(document.documentElement.scrollWidth),
    height: Math.ceil(document.documentElement.scrollHeight),
  });
});
"""


class BrowserUnavailable(RuntimeError):
    """No Chromium, chromedriver or Selenium here, or the browser would not start."""


@dataclass
class PageCheck:
    url: str
    images: list[tuple[str, int]]  # (src, naturalWidth) of every <img>, in page order
    console_errors: list[str]  # SEVERE entries of the browser's console log (uncaught errors, failed loads)
    summary_rows: int | None  # rows of the summary table; None where the page has none
    screenshot: Path | None = None
    size: tuple[int, int] = (0, 0)  # the page's full width and height in CSS pixels

    @property
    def broken_images(self) -> list[str]:
        return [src for src, width in self.images if not width]

    @property
    def has_summary(self) -> bool:
        return self.summary_rows is not None

    @property
    def problems(self) -> list[str]:
        return ([f"image did not load: {src}" for src in self.broken_images]
                + [f"console error: {line}" for line in self.console_errors])

    @property
    def ok(self) -> bool:
        """Every image loaded and nothing was logged as an error (the summary is checked apart)."""
        return not self.problems


def find_binaries() -> tuple[str, str]:
    """(browser, chromedriver) paths: from $GRADBENCH_CHROMIUM / $GRADBENCH_CHROMEDRIVER, else the PATH."""
    def find(variable, names, what):
        given = os.environ.get(variable)
        if given:
            if shutil.which(given):
                return shutil.which(given)
            raise BrowserUnavailable(f"${variable} = {given!r} is not an executable")
        for name in names:
            if shutil.which(name):
                return shutil.which(name)
        raise BrowserUnavailable(f"no {what} on the PATH (looked for {', '.join(names)}); install it with "
                                 "`apt-get install chromium chromium-driver` or set ${variable}")

    return find("GRADBENCH_CHROMIUM", BROWSERS, "Chromium"), find("GRADBENCH_CHROMEDRIVER", DRIVERS, "chromedriver")


class Browser:
    """One headless Chromium session; `check(page)` per page. A context manager: quits on exit."""

    def __init__(self, width: int = 1400, height: int = 1000, timeout: float = 30.0):
        try:
            from selenium import webdriver
            from selenium.common.exceptions import WebDriverException
        except ImportError as error:
            raise BrowserUnavailable(f"Selenium is not installed ({error}); pip install -e '.[dev]'") from None
        browser, driver = find_binaries()
        options = webdriver.ChromeOptions()
        options.binary_location = browser
        for arg in ARGS:
            options.add_argument(arg)
        options.add_argument(f"--window-size={width},{height}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        try:
            self.driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver))
        except WebDriverException as error:
            raise BrowserUnavailable(f"{browser} did not start through {driver}: {error.msg or error}") from None
        self.width = width
        self.driver.set_page_load_timeout(timeout)
        self.driver.set_script_timeout(timeout)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.driver.quit()

    def check(self, page: str | Path, screenshot: str | Path | None = None, max_height: int | None = None) -> PageCheck:
        """Load the page (a path or a URL), wait for its images, and report; with `screenshot`, save a PNG of
        the whole page (its first `max_height` CSS pixels where given) there."""
        url = Path(page).resolve().as_uri() if "://" not in str(page) else str(page)
        self.driver.get_log("browser")  # drop what an earlier page logged
        self.driver.get(url)  # returns after the load event: images have loaded or failed
        state = self.driver.execute_async_script(_INSPECT, SUMMARY_SELECTOR)
        errors = [entry["message"] for entry in self.driver.get_log("browser") if entry["level"] == "SEVERE"]
        result = PageCheck(url, [(src, int(width)) for src, width in state["images"]], errors,
                           state["summaryRows"], size=(state["width"], state["height"]))
        if screenshot is not None:
            result.screenshot = self.screenshot(screenshot, state["width"], state["height"], max_height)
        return result

    def screenshot(self, path: str | Path, width: int, height: int, max_height: int | None = None) -> Path:
        """The page beyond the window, through the DevTools protocol (Page.captureScreenshot)."""
        path = Path(path)
        clip = {"x": 0, "y": 0, "width": max(width, self.width),
                "height": min(height, max_height) if max_height else height, "scale": 1}
        shot = self.driver.execute_cdp_cmd("Page.captureScreenshot",
                                           {"format": "png", "captureBeyondViewport": True, "clip": clip})
        atomic_write(path, base64.b64decode(shot["data"]))
        return path
