"""The public app's guard (tinyr1/app/guard.py), gradio-free: request limits, upload totals, the
disk check and Markdown that a visitor's text cannot break.

    .venv/bin/pytest tests/test_app_guard.py -q
"""
from __future__ import annotations

import pytest

from tinyr1.app.guard import (
    LimitError,
    UploadLedger,
    check_completion,
    check_disk,
    check_reason,
    md_text,
    relative_paths,
    safe_code,
)


@pytest.mark.parametrize("question, options, frames, tokens, env", [
    ("x" * 1_000_000, None, 0, 256, "TINYR1_MAX_QUESTION_CHARS"),
    ("ok?", ["a" * 501, "b"], 0, 256, "TINYR1_MAX_OPTION_CHARS"),
    ("ok?", ["a"], 0, 256, None),  # one option is no choice: the fixed rule
    ("ok?", [str(i) for i in range(11)], 0, 256, None),
    ("ok?", None, 65, 256, "TINYR1_MAX_FRAMES"),
    ("ok?", None, 0, 1_000_000, "TINYR1_MAX_NEW_TOKENS"),
])
def test_a_reason_request_over_a_limit_names_it(question, options, frames, tokens, env):
    with pytest.raises(LimitError) as err:
        check_reason(question, options, num_frames=frames, max_new_tokens=tokens)
    assert err.value.env == env and (env is None or env in str(err.value))


def test_a_request_within_the_limits_passes():
    check_reason("Which way?", ["left", "right"], num_frames=16, max_new_tokens=1024)
    check_completion("<think>a</think><answer>B</answer>", ["left", "right"])


def test_a_huge_completion_is_refused(monkeypatch):
    with pytest.raises(LimitError, match="TINYR1_MAX_COMPLETION_CHARS"):
        check_completion("<think>" * 200_000, None)
    monkeypatch.setenv("TINYR1_MAX_COMPLETION_CHARS", "2000000")  # a launcher raises it
    check_completion("<think>" * 200_000, None)


def test_uploads_are_bounded_per_request_and_per_session(tmp_path, monkeypatch):
    files = []
    for i in range(3):
        files.append(tmp_path / f"f{i}.bin")
        files[-1].write_bytes(b"\0" * 1000)
    monkeypatch.setenv("TINYR1_MAX_UPLOAD_BYTES", "1500")
    monkeypatch.setenv("TINYR1_MAX_SESSION_UPLOAD_BYTES", "2500")
    ledger = UploadLedger()
    with pytest.raises(LimitError, match="this request's uploads"):
        ledger.charge("a", files[:2])  # 2000 bytes in one request
    assert ledger.charge("a", files[:1]) == 1000 and ledger.charge("a", files[:1]) == 0  # charged once
    assert ledger.charge("a", files[1:2]) == 1000
    with pytest.raises(LimitError, match="TINYR1_MAX_SESSION_UPLOAD_BYTES"):
        ledger.charge("a", files[2:])
    assert ledger.charge("b", files[2:]) == 1000 and ledger.total("a") == 2000


def test_the_disk_check_refuses_below_the_threshold(tmp_path):
    check_disk(tmp_path, 0)
    with pytest.raises(LimitError, match="TINYR1_MIN_FREE_DISK_MB"):
        check_disk(tmp_path / "runs", float(1 << 40))


@pytest.mark.parametrize("text", ["`", "a`b", "``<img src=x onerror=alert(1)>", "ends with `", "x ```` y"])
def test_a_code_span_holds_any_text(text):
    from markdown_it import MarkdownIt

    html = MarkdownIt().renderInline(f"format fails: {safe_code(text)} · after")
    assert "<img" not in html and "· after" in html
    assert html.count("<code>") == 1 and html.endswith(" · after")


def test_escaped_text_renders_literally():
    from markdown_it import MarkdownIt

    text = "# head\n`<script>x</script>` *b* [l](http://e) TINYR1_MAX_FRAMES"
    html = MarkdownIt().render(md_text(text))
    assert "<script>" not in html and "<h1>" not in html and "<em>" not in html and "<a " not in html
    assert "TINYR1_MAX_FRAMES" in html


def test_server_paths_become_relative(tmp_path):
    root = tmp_path / "app"
    assert relative_paths(f"no file at {root}/runs/x/app.json", root) == "no file at runs/x/app.json"
    assert str(tmp_path) not in relative_paths(f"{root} and {root.resolve()}/a", root)
