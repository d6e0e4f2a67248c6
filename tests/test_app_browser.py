"""The app in a real browser: Playwright driving Debian's chromium (docs/DESIGN.md, "CPU facts") uploads a clip,
sees the streamed think text, the answer and the reward chart, then edits a completion in the
Reward lab and sees the breakdown follow, then runs 2 GRPO steps and sees the live plots, the
latest group and the evaluation, and hands the tuned policy to Reason. Screenshots of the three
tabs are saved.

    .venv/bin/pytest tests/test_app_browser.py -q                        # screenshots to a temp dir
    TINYR1_SCREENSHOTS=docs/screenshots .venv/bin/pytest tests/test_app_browser.py -q   # refresh docs

Skipped only when chromium is absent and CI is not set (in CI, ./run.sh test installs chromium and
these tests must run). The server is the real app on the real tiny policy (tests/app_support.py).
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from app_support import ROOT, find_chromium, launched_app

pytestmark = [pytest.mark.browser, pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")]

CHROMIUM = find_chromium()
if CHROMIUM is None and not os.environ.get("CI"):
    pytest.skip("chromium is not installed (apt-get install chromium); CI installs it", allow_module_level=True)

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def shots() -> Path:
    folder = Path(os.environ.get("TINYR1_SCREENSHOTS") or tempfile.mkdtemp(prefix="tinyr1-shots-"))
    if not folder.is_absolute():
        folder = ROOT / folder
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser():
    """One Playwright session for the module (its sync API allows one at a time): a function that
    opens a fresh chromium profile on a URL and gives back its page."""
    from playwright.sync_api import sync_playwright

    assert CHROMIUM, "chromium must be installed in CI (./run.sh test installs it)"
    profiles, contexts = [], []
    with sync_playwright() as p:
        def open_page(url: str):
            # A fresh profile (--user-data-dir; Playwright takes it as launch_persistent_context's argument).
            profile = tempfile.mkdtemp(prefix="tinyr1-chromium-")
            profiles.append(profile)
            context = p.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, args=FLAGS, headless=True, viewport={"width": 1400, "height": 1000}
            )
            contexts.append(context)
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(url)
            page.locator("#reason-run").wait_for()
            return page

        yield open_page
        for context in contexts:
            context.close()
    for profile in profiles:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def page(browser):
    return browser(launched_app().url)


@pytest.fixture(scope="module")
def shipped_page(browser):
    """The app as shipped: this repository's root (its assets/examples, its policies), served on a
    free port; the registry sees no downloaded checkpoint, so it opens on the embedded tiny-temporal-grpo
    as on a CPU machine."""
    from app_support import free_port
    from tinyr1 import registry
    from tinyr1.app import build_app, launch_kwargs

    with pytest.MonkeyPatch.context() as mp:  # no downloaded checkpoint seen, default folders shown
        local = registry.local_path
        mp.setattr(registry, "local_path", lambda spec: local(spec) if spec.kind == "tiny" else None)
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.delenv("TINYR1_MODELS", raising=False)
        demo = build_app(ROOT)
    port = free_port()
    demo.launch(prevent_thread_lock=True, server_port=port, quiet=True, **launch_kwargs(ROOT))
    try:
        yield browser(f"http://127.0.0.1:{port}/")
    finally:
        demo.close()


def test_shipped_examples_each_give_a_well_formed_answer(shipped_page, shots):
    """Click each world example of the app as shipped, press Reason: the default policy answers
    in a valid format (and right: the examples were picked so). The real clip is labelled real."""
    from playwright.sync_api import expect

    from tinyr1.app.reason import load_examples

    page = shipped_page
    examples = load_examples(ROOT)
    table = page.locator("#reason-examples")
    expect(table).to_contain_text("real clip (untrained): Big Buck Bunny")
    for example in (e for e in examples if e.kind == "world"):
        table.get_by_text(example.label, exact=True).click()
        expect(page.locator("#reason-question textarea")).to_have_value(example.row[1])
        expect(page.locator("#reason-truth textarea, #reason-truth input").first).to_have_value(example.row[-1])
        page.locator("#reason-run").click()
        status = page.locator("#reason-status")
        expect(status).to_contain_text("Done", timeout=60_000)
        expect(status).to_contain_text("format ok")
        expect(status).to_contain_text("answer right")
        expect(page.locator("#reason-answer textarea")).to_have_value(example.row[-1])
    expect(page.locator("#tinyr1-banner")).to_contain_text("hf download")  # how to get the real policy
    page.screenshot(path=str(shots / "reason.png"), full_page=True)


def test_frame_captions_fit_a_phone(shipped_page, shots):
    """16 frames on a 390 px wide viewport: every caption shows whole (no cut text)."""
    from playwright.sync_api import expect

    page = shipped_page
    page.set_viewport_size({"width": 390, "height": 900})
    try:
        page.locator("#reason-frames").scroll_into_view_if_needed()
        page.get_by_text("Generation settings").click()
        box = page.locator("#reason-frames-n input[type=number]").first
        box.fill("16")
        box.press("Tab")
        page.locator("#reason-examples").get_by_text("world clip · direction", exact=True).click()
        page.locator("#reason-run").click()
        # The page is shared with the example tests, so "Done" may still be an earlier run's: wait
        # for what only this run shows (its frame count), as long as a run may take under load.
        expect(page.locator("#tinyr1-banner")).to_contain_text("16 frames this run", timeout=60_000)
        expect(page.locator("#reason-status")).to_contain_text("Done", timeout=60_000)
        captions = page.locator("#reason-frames .caption-label, #reason-frames figcaption, #reason-frames .caption")
        expect(captions).to_have_count(16, timeout=30_000)
        for i in range(16):
            cut = captions.nth(i).evaluate("e => e.scrollWidth > e.clientWidth + 1")
            assert not cut, f"caption {i + 1} is cut off: {captions.nth(i).inner_text()!r}"
        page.locator("#reason-frames").screenshot(path=str(shots / "reason_phone_frames.png"))
    finally:
        page.set_viewport_size({"width": 1400, "height": 1000})


def test_reason_tab_streams_an_answer_with_its_reward(page, shots):
    from playwright.sync_api import expect

    app = launched_app()
    video, question, *options, answer = next(r for r in _examples(app.root) if r[2])
    page.locator("#reason-video input[type=file]").set_input_files(video)
    expect(page.locator("#reason-video video")).to_have_count(1)  # the upload shows as a player
    page.locator("#reason-question textarea").fill(question)
    for letter, text in zip("abcd", options):
        page.locator(f"#reason-option-{letter} textarea, #reason-option-{letter} input").first.fill(text)
    page.locator("#reason-truth textarea, #reason-truth input").first.fill(answer)
    page.locator("#reason-run").click()

    expect(page.locator("#reason-status")).to_contain_text("Done", timeout=60_000)
    think = page.locator("#reason-think textarea").input_value()
    assert think.strip(), "the think panel shows the streamed text"
    expect(page.locator("#reason-frames img")).not_to_have_count(0)  # the frames it saw
    expect(page.locator("#reason-frames")).to_contain_text(re.compile(r"#1 · \d+\.\d\d s"))  # with their timestamps
    expect(page.locator("#reason-chart canvas, #reason-chart svg").first).to_be_visible()  # the chart
    expect(page.locator("#reason-table")).to_contain_text("total")  # and the table
    expect(page.locator("#tinyr1-banner")).to_contain_text("Policy")


def test_reward_lab_follows_edits(page, shots):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Reward lab").click()
    status = page.locator("#lab-status")
    expect(status).to_contain_text("Total reward")
    box = page.locator("#lab-completion textarea")
    box.fill("<think>the square goes right</think> B")  # a broken format
    expect(status).to_contain_text("format fails: missing <answer>")
    expect(status).to_contain_text("-2.000")
    box.fill("<think>The red square starts on the left and ends on the right, so it moves right.</think><answer>B</answer>")
    expect(status).to_contain_text(re.compile(r"Total reward \+1\.5\d\d"))
    expect(page.locator("#lab-landscape canvas, #lab-landscape svg").first).to_be_visible()
    page.screenshot(path=str(shots / "reward_lab.png"), full_page=True)


def _examples(root: Path):
    from tinyr1.app.reason import find_examples

    return find_examples(root)


def test_grpo_tab_trains_with_live_plots_and_hands_the_policy_to_reason(page, shots):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="GRPO").click()
    page.locator("#grpo-preset").get_by_label("tiny").check()
    expect(page.locator("#grpo-max-new input")).to_have_value("96")  # the preset filled in its values
    # A 2-step run small enough for a test: 4 world questions, 2 per step, G 4, 4 held-out questions.
    for elem, value in {"grpo-world-n": 4, "grpo-steps": 2, "grpo-prompts": 2, "grpo-g": 4, "grpo-eval-n": 4}.items():
        box = page.locator(f"#{elem} input[type=number], #{elem} input").first
        box.fill(str(value))
        box.press("Tab")
    page.locator("#grpo-start").click()

    status = page.locator("#grpo-status")
    expect(status).to_contain_text("Done", timeout=60_000)
    expect(status).to_contain_text("2 steps")
    for plot in ("reward", "quality", "think"):  # drawn: a line per series, with its legend
        expect(page.locator(f"#grpo-{plot}-plot canvas, #grpo-{plot}-plot svg").first).to_be_visible()
    expect(page.locator("#grpo-reward-plot")).to_contain_text("accuracy")  # a legend entry: lines were drawn
    expect(page.locator("#grpo-group-title")).to_contain_text("Step 2, latest group")
    expect(page.locator("#grpo-group")).to_contain_text("advantage")
    expect(page.locator("#grpo-eval")).to_contain_text("accuracy")
    expect(page.locator("#grpo-run input")).to_have_value(re.compile(r"runs/\d{8}-\d{6}"))
    page.screenshot(path=str(shots / "grpo.png"), full_page=True)

    page.locator("#grpo-use").click()  # the tuned policy, selected in the Reason tab
    expect(page.locator("#reason-policy input")).to_have_value(re.compile(r"runs/\d{8}-\d{6}"))
    expect(page.locator("#tinyr1-banner")).to_contain_text("fine-tuned with GRPO")


def test_grpo_stop_keeps_a_checkpoint_and_says_so(page):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="GRPO").click()
    page.locator("#grpo-eval-before input").uncheck()
    box = page.locator("#grpo-steps input").first
    box.fill("500")  # far more than the test waits for
    box.press("Tab")
    page.locator("#grpo-start").click()
    status = page.locator("#grpo-status")
    expect(status).to_contain_text(re.compile(r"Step ([3-9]|\d\d+)/500"), timeout=30_000)
    page.locator("#grpo-stop").click()
    expect(status).to_contain_text(re.compile(r"Stopped runs/\S+ after step \d+: checkpoint"), timeout=30_000)
    page.wait_for_timeout(1_000)
    expect(status).to_contain_text("Stopped", timeout=1)  # no later step has overwritten it
