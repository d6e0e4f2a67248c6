"""Stop in a real browser, on the app as shipped (``build_app`` on the repository root, its default
policy, the shipped clip): a long generation (16 frames, temperature 1.5, 896 new tokens: the tiny
policy's context of 1024 positions holds no more beside the prompt) is
stopped about a second in and must reach the stopped state (the partial text and its reward)
within seconds; the next Reason clears it.

    .venv/bin/pytest tests/test_app_browser_stop.py -q

Playwright drives Debian's chromium as in tests/test_app_browser.py; skipped only when chromium is
absent and CI is not set.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time

import pytest

from app_support import ROOT, find_chromium, free_port, no_downloaded_models

pytestmark = [pytest.mark.browser, pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")]

CHROMIUM = find_chromium()
if CHROMIUM is None and not os.environ.get("CI"):
    pytest.skip("chromium is not installed (apt-get install chromium); CI installs it", allow_module_level=True)

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
CLIP = ROOT / "assets" / "examples" / "bbb_clip.mp4"
#: How long the stopped state may take to show after Stop: the run ends at its next token; this
#: leaves room for a CPU shared with other work, far below the minute-long hang it guards against.
STOPPED_WITHIN_MS = 5_000


@pytest.fixture(scope="module")
def shipped_app():
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from tinyr1.app import build_app, launch_kwargs

    with no_downloaded_models():
        demo = build_app(ROOT)
    port = free_port()
    demo.launch(prevent_thread_lock=True, server_port=port, quiet=True, **launch_kwargs(ROOT))
    yield f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="module")
def page(shipped_app):
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="tinyr1-chromium-")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=FLAGS, headless=True, viewport={"width": 1400, "height": 1000})
        page = context.pages[0] if context.pages else context.new_page()
        page.set_default_timeout(30_000)
        page.goto(shipped_app)
        page.locator("#reason-run").wait_for()
        yield page
        context.close()
    shutil.rmtree(profile, ignore_errors=True)


def _set(page, elem_id: str, value: float) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.blur()


def test_stop_ends_a_long_generation_in_a_stopped_state_and_the_next_run_clears_it(page):
    from playwright.sync_api import expect

    assert CLIP.is_file()
    page.locator("#reason-video input[type=file]").set_input_files(str(CLIP))
    expect(page.locator("#reason-video video")).to_have_count(1)
    page.get_by_text("Generation settings").click()
    _set(page, "reason-frames-n", 16)
    _set(page, "reason-temperature", 1.5)
    _set(page, "reason-max-new", 896)
    status, table = page.locator("#reason-status"), page.locator("#reason-table")

    page.locator("#reason-run").click()
    expect(status).to_contain_text("Generating…", timeout=60_000)
    expect(page.locator("#reason-think textarea")).not_to_have_value("", timeout=30_000)
    time.sleep(1.0)
    page.locator("#reason-stop").click()
    expect(status).to_contain_text("Stopped", timeout=STOPPED_WITHIN_MS)
    expect(status).to_contain_text("partial text")
    assert page.locator("#reason-think textarea").input_value().strip(), "the partial text stays"
    expect(table).to_contain_text("total")
    expect(table).not_to_contain_text("still generating")  # the reward of the text as stopped
    # Nothing streams after the stopped state: it stays.
    time.sleep(1.0)
    expect(status).to_contain_text("Stopped", timeout=1)

    page.locator("#reason-run").click()  # a new run clears the last one's status and table
    expect(status).not_to_contain_text("Stopped", timeout=10_000)
    expect(status).to_contain_text("Generating…", timeout=60_000)
    page.locator("#reason-stop").click()
    expect(status).to_contain_text("Stopped", timeout=STOPPED_WITHIN_MS)
