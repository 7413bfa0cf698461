"""``make test-report``: render a report in a real browser (Debian's chromium, headless, driven by
Playwright) and fail when the page asks the network for anything, logs a console error, or shows a
chart that is missing or empty; keep a screenshot.

    python tests/browser/check_report.py REPORT.html SCREENSHOT.png
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

EXPECTED_CHARTS = ("MB", "load_ms", "e2e_p50", "e2e_p99", "invoke_p50", "peak_MB", "mAP", "ap",
                   "images_per_class", "cooccurrence")
PREFIXED = ("valmap-", "pr-")  # one per run, one per class


def check(report: Path, screenshot: Path) -> list[str]:
    browser_path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser_path:
        return ["chromium is not installed (apt-get install chromium)"]
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.on("request", lambda r: None if r.url.startswith(("file:", "data:", "about:"))
                else problems.append(f"network request: {r.url}"))
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.goto(report.resolve().as_uri(), wait_until="load")
        charts = page.eval_on_selector_all(
            "svg", """svgs => svgs.map(s => ({label: s.getAttribute('aria-label'),
                width: s.getBoundingClientRect().width, height: s.getBoundingClientRect().height,
                marks: [...s.querySelectorAll('[data-chart]')].map(m => m.getAttribute('data-chart'))}))""")
        keys = {key for chart in charts for key in chart["marks"]}
        for chart in charts:
            if chart["width"] < 50 or chart["height"] < 30:
                problems.append(f"chart {chart['label']!r} is not drawn ({chart['width']}x{chart['height']} px)")
            if not chart["marks"]:
                problems.append(f"chart {chart['label']!r} is empty")
        problems += [f"chart {key!r} is missing" for key in EXPECTED_CHARTS if key not in keys]
        problems += [f"no {prefix}* chart" for prefix in PREFIXED if not any(k.startswith(prefix) for k in keys)]
        page.set_viewport_size({"width": 420, "height": 900})  # a narrow window: nothing wider than the page
        overflow = page.evaluate("document.documentElement.scrollWidth")
        if overflow > 440:
            problems.append(f"in a 420 px window the page is {overflow} px wide")
        page.set_viewport_size({"width": 1100, "height": 900})
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=True)
        print(f"{report}: {len(charts)} charts, {len(keys)} kinds of mark; screenshot {screenshot}")
        browser.close()
    return problems


if __name__ == "__main__":
    found = check(Path(sys.argv[1]), Path(sys.argv[2]))
    for problem in found:
        print(f"FAILED: {problem}")
    print(f"{0 if found else 1} passed, {1 if found else 0} failed")
    sys.exit(1 if found else 0)
