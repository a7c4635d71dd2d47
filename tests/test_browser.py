"""Chapter 00 in JupyterLab, in a real browser: Run All Cells from the Run menu, move the slider, see the figure change.

Headless Chromium (Debian's ``chromium`` package, which ``make install`` installs) driven by playwright. The
notebook runs from a temporary copy, so nothing in the repository changes; the screenshot is left in
build/browser/ to look at.
"""

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium")
SCREENSHOTS = REPO / "build" / "browser"

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium package (make install adds it)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server on 127.0.0.1 with a token, serving a copy of chapter 00: (url, folder)."""
    shutil.copy(REPO / "notebooks" / "00_setup_and_tour.ipynb", tmp_path)
    port, token = free_port(), secrets.token_hex(16)
    log = open(tmp_path / "lab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp_path}", "--allow-root"],
        env={**os.environ, "GENAI_RESULTS_DIR": str(tmp_path / "results")}, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(120):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail(f"JupyterLab did not start in 60 s; its log: {(tmp_path / 'lab.log').read_text()[-2000:]}")
        yield f"http://127.0.0.1:{port}/lab/tree/00_setup_and_tour.ipynb?token={token}", tmp_path
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


def test_chapter_00_runs_in_jupyterlab_and_its_slider_redraws_the_figure(lab):
    from playwright.sync_api import sync_playwright

    url, folder = lab
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
        page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=60_000)
        page.click("li.lm-MenuBar-item:has-text('Run')")
        page.click("li.lm-Menu-item:has-text('Run All Cells')")
        page.get_by_text("Python 3 (ipykernel) | Busy").wait_for(timeout=30_000)
        page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=240_000)
        errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").all_inner_texts()
        assert not [e for e in errors if "Traceback" in e or "Error" in e], errors

        interact = page.locator(".widget-interact").first
        interact.scroll_into_view_if_needed()
        figure = interact.locator("img").first
        figure.wait_for(timeout=30_000)
        before = figure.get_attribute("src")
        interact.locator(".noUi-handle").first.focus()
        page.keyboard.press("End")  # the slider to its maximum: 8 components
        page.wait_for_function("(old) => { const img = document.querySelector('.widget-interact img');"
                               " return img && img.src !== old; }", arg=before, timeout=60_000)
        interact.scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOTS / "chapter00_slider.png"))
        assert interact.locator(".widget-readout").first.inner_text().strip() == "8"
        browser.close()
    assert (SCREENSHOTS / "chapter00_slider.png").stat().st_size > 10_000


SITE = REPO / "build" / "site"


@pytest.mark.skipif(not (SITE / "index.html").exists(), reason="make site builds build/site (make test does)")
def test_the_site_links_every_chapter_and_nothing_on_it_is_broken():
    from urllib.parse import unquote, urlparse

    from playwright.sync_api import sync_playwright

    chapters = sorted(p.stem for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        for name in ["index", "01_gans"]:
            page.goto((SITE / f"{name}.html").as_uri())
            page.wait_for_load_state("load")
            links = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
            local = [urlparse(link) for link in links if link.startswith("file:")]
            broken = sorted({unquote(url.path) for url in local if not Path(unquote(url.path)).exists()})
            assert not broken, f"{name}.html links to missing files: {broken[:5]}"
            missing = page.eval_on_selector_all(
                "img", "els => els.filter(e => !e.src.startsWith('http') && !(e.complete && e.naturalWidth > 0))"
                       ".map(e => e.src)")
            assert not missing, f"{name}.html has images that do not load: {missing[:5]}"
            if name == "index":
                assert {Path(urlparse(link).path).stem for link in links if link.startswith("file:")} >= set(chapters)
        page.screenshot(path=str(SCREENSHOTS / "site_chapter01.png"), full_page=False)
        browser.close()
