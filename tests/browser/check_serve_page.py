"""``make test-report``: the page of ``mledge edge serve`` in a real browser (Debian's chromium,
headless, driven by Playwright). Fails when it logs a console error, asks anything of the network
but the service, or does not show the photos posted to it; keeps a screenshot.

    python tests/browser/check_serve_page.py BUNDLE SCREENSHOT.png
"""

from __future__ import annotations

import http.client
import io
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.edge.service import start_service  # noqa: E402

PHOTOS = 3


def post_photos(port: int) -> None:
    for k in range(PHOTOS):
        buf = io.BytesIO()
        Image.fromarray(np.random.default_rng(k).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", f"/predict?name=photo-{k}.jpg", body=buf.getvalue())
        assert conn.getresponse().status == 200


def check(bundle: str, screenshot: Path) -> list[str]:
    browser_path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser_path:
        return ["chromium is not installed (apt-get install chromium)"]
    problems: list[str] = []
    proc, port = start_service([sys.executable], bundle)
    base = f"http://127.0.0.1:{port}/"
    try:
        post_photos(port)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1000, "height": 700})
            page.on("request", lambda r: None if r.url.startswith((base, "data:", "about:"))
                    else problems.append(f"network request: {r.url}"))
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.goto(base, wait_until="load")
            page.wait_for_function(f"document.querySelectorAll('#latest tbody tr').length >= {PHOTOS}", timeout=10_000)
            sources = page.eval_on_selector_all("#latest tbody tr td:nth-child(2)",
                                                "tds => tds.map(t => t.textContent)")
            if sorted(sources) != [f"photo-{k}.jpg" for k in range(PHOTOS)]:
                problems.append(f"the page shows {sources}, not the {PHOTOS} photos posted")
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
            print(f"{base}: {len(sources)} predictions shown; screenshot {screenshot}")
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return problems


if __name__ == "__main__":
    found = check(sys.argv[1], Path(sys.argv[2]))
    for problem in found:
        print(f"FAILED: {problem}")
    print(f"{0 if found else 1} passed, {1 if found else 0} failed")
    sys.exit(1 if found else 0)
