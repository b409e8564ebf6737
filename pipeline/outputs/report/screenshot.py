"""Take the README's screenshot of a report in headless Chromium (Playwright with the system's Chromium).

`python -m pipeline.outputs.report.screenshot [REPORT_HTML] [PNG]` (defaults: reports/report.html, docs/report.png).
Needs the `dev` extra (Playwright) and a Chromium on PATH (Debian: `apt-get install chromium`).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.defaults import DEFAULT_REPORTS

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
VIEWPORT = {"width": 1600, "height": 1000}  # a laptop screen at full width


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextmanager
def browser_page() -> Iterator:
    """A Playwright page in headless system Chromium, offline by its flags; closed on exit."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    if executable is None:
        raise RuntimeError("no Chromium on PATH (Debian: apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport=VIEWPORT, accept_downloads=True)
        finally:
            browser.close()


def screenshot(report: Path, png: Path) -> None:
    """The report's first screen: the honest figures, the counts and the top of the triage table."""
    with browser_page() as page:
        page.goto(report.resolve().as_uri())
        page.screenshot(path=str(png), full_page=False)


def main(argv: list[str]) -> None:
    report = Path(argv[0]) if argv else DEFAULT_REPORTS / "report.html"
    png = Path(argv[1]) if len(argv) > 1 else Path("docs") / "report.png"
    screenshot(report, png)
    print(f"wrote {png} from {report}")


if __name__ == "__main__":
    main(sys.argv[1:])
