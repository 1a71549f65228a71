"""Size and times of `cfbuild view` on the CAD IMDb train split (1,707 pairs of whole reviews):
building the page, loading it in Chromium, and one search over every row; with `--screenshot
PATH` a picture of the page (the README's).

Usage: python bench/view_page.py [CAD_DIR] [--screenshot PATH] | --smoke   (--smoke: a toy store)
Needs Playwright and Chromium (apt-get install -y chromium) for the load and search times.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def browser_times(page_path: Path, screenshot: str | None) -> str:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return "load_s=n/a (no playwright)"
    chromium = os.environ.get("CFPAIRS_CHROMIUM") or shutil.which("chromium")
    if not chromium:
        return "load_s=n/a (no chromium)"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        start = time.perf_counter()
        page.goto(page_path.resolve().as_uri(), wait_until="load")
        load = time.perf_counter() - start
        rows = page.locator("[data-pair-id]").count()
        start = time.perf_counter()
        page.fill("input[type=search]", "boring")
        shown = page.locator("#shown").text_content()
        search = time.perf_counter() - start
        if screenshot:
            page.fill("input[type=search]", "")
            page.evaluate("document.getElementById('pairs').scrollIntoView()")
            page.screenshot(path=screenshot)
        browser.close()
    return f"rows={rows} search_boring_shown={shown} search_s={search:.3f} load_s={load:.2f}"


def main(argv: list) -> None:
    smoke = "--smoke" in argv
    screenshot = argv[argv.index("--screenshot") + 1] if "--screenshot" in argv else None
    cad = next((a for a in argv if not a.startswith("--") and a != screenshot), None) or \
        os.environ.get("CFPAIRS_CAD_DIR", "../shared/data/cad")
    run = [sys.executable, "-m", "cli.cfbuild"]
    with tempfile.TemporaryDirectory() as tmp:
        store, page = Path(tmp) / "store.h5", Path(tmp) / "page.html"
        build = ["toy", "--n", "400"] if smoke else ["imdb", "--cad-dir", cad]
        subprocess.run([*run, *build, "--out", str(store)], check=True, capture_output=True)
        start = time.perf_counter()
        subprocess.run([*run, "view", str(store), "--out", str(page)], check=True, capture_output=True)
        built = time.perf_counter() - start
        print(f"store={'toy' if smoke else 'cad-imdb'} split=train page_mb={page.stat().st_size / 1e6:.2f} "
              f"{browser_times(page, screenshot)} seconds={built:.2f}")  # seconds: cfbuild view itself


if __name__ == "__main__":
    main(sys.argv[1:])
