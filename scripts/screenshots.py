"""The README's screenshots in headless Chromium (Playwright with the system's Chromium), at a laptop's and a
phone's width: the analysts' report (docs/report_desktop.png, docs/report_phone.png) and the themes explorer.

    .venv/bin/python scripts/screenshots.py [REPORTS_DIR] [DOCS_DIR]   (defaults: reports/, docs/)

Run `evidens run` (or `evidens flag` and `evidens themes`) first; a page not built is skipped, saying so. Each
page's width is printed: wider than the viewport means a horizontal scroll."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(
    0, str(Path(__file__).resolve().parents[1] / "tests")
)  # the browser helper lives with the tests
from scaffolding import browser_page

WIDTHS = {"desktop": (1366, 900), "phone": (390, 844)}
# page name -> (file, where its screenshot starts): the report at its triage table, the explorer at its top
PAGES = {"report": ("report.html", "#triage"), "themes_explorer": ("themes_explorer.html", "")}
WIDEST = "() => document.documentElement.scrollWidth"


def main(reports: Path = Path("reports"), docs: Path = Path("docs")) -> None:
    with browser_page() as page:
        for name, (file, anchor) in PAGES.items():
            if not (reports / file).exists():
                print(f"{reports / file}: not built, skipped", file=sys.stderr)
                continue
            for kind, (width, height) in WIDTHS.items():
                page.set_viewport_size({"width": width, "height": height})
                page.goto((reports / file).resolve().as_uri() + anchor)
                page.wait_for_timeout(1500)
                target = docs / f"{name}_{kind}.png"
                page.screenshot(path=str(target))
                print(f"{target}: viewport {width} px, page {page.evaluate(WIDEST)} px wide")


if __name__ == "__main__":
    main(*(Path(a) for a in sys.argv[1:3]))
