"""The synthetic world (tinyr1/world.py, tinyr1/cli/world.py): determinism, disjoint splits,
answers right by construction (checked from the generator's facts AND from the pixels, never from
the text), balanced letters, real mp4 clips read back through load_frames, the CLI.

    .venv/bin/pytest tests/test_world.py -q
"""
from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyr1 import world
from tinyr1.format import parse
from tinyr1.world import COLORS, FAMILIES, SPLITS, WorldConfig, make_sample, plan_split

LETTERS = "ABCD"


# ------------------------------------------------------------------ independent checks from pixels


def colours_in(frame: np.ndarray, min_pixels: int = 12) -> set[str]:
    """Names of the palette colours painted in a frame (pixels near the colour, noise allowed)."""
    f = frame.astype(np.int16)
    found = set()
    for name, rgb in COLORS.items():
        near = np.abs(f - np.array(rgb, np.int16)).max(axis=-1) < 50
        if near.sum() >= min_pixels:
            found.add(name)
    return found


def centroid(frame: np.ndarray, colour: str) -> np.ndarray:
    near = np.abs(frame.astype(np.int16) - np.array(COLORS[colour], np.int16)).max(axis=-1) < 50
    ys, xs = np.nonzero(near)
    return np.array([xs.mean(), ys.mean()])


def direction_from_pixels(frames: np.ndarray, colour: str) -> str:
    dx, dy = centroid(frames[-1], colour) - centroid(frames[0], colour)
    if abs(dx) > abs(dy):
        return "right" if dx > 0 else "left"
    return "down" if dy > 0 else "up"


def order_from_pixels(frames: np.ndarray, query: str) -> str:
    """The colour that shows first (or last) in these frames, in the order given."""
    firsts: dict[str, int] = {}
    for i, frame in enumerate(frames):
        for c in colours_in(frame):
            firsts.setdefault(c, i)
    ranked = sorted(firsts, key=firsts.get)
    return ranked[0] if query == "first" else ranked[-1]


def moving_from_facts(facts: dict) -> list[int]:
    return [i for i, o in enumerate(facts["objects"]) if len(set(o["x"])) > 1 or len(set(o["y"])) > 1]


# ------------------------------------------------------------------ determinism and splits


@pytest.mark.parametrize("family", FAMILIES)
def test_same_seed_same_sample_other_seed_other_sample(family):
    a, b = make_sample(11, family), make_sample(11, family)
    assert np.array_equal(a.frames, b.frames)
    assert (a.question, a.options, a.answer, a.think, a.facts) == (b.question, b.options, b.answer, b.think, b.facts)
    c = make_sample(12, family)
    assert not np.array_equal(a.frames, c.frames)
    assert a.signature != c.signature


def test_fixing_the_letter_changes_only_the_options_order():
    free = make_sample(5, "direction")
    for letter in LETTERS:
        s = make_sample(5, "direction", letter=letter)
        assert s.answer == letter and s.options[LETTERS.index(letter)] == free.answer_text
        assert np.array_equal(s.frames, free.frames) and s.think == free.think


def test_splits_share_no_seed_and_no_clip():
    n = 60
    seeds = {split: {s.seed for s in plan_split(split, n)} for split in SPLITS}
    sigs = {split: set() for split in SPLITS}
    for split in SPLITS:
        for sample in world.iter_split(split, n):
            assert world.content_split(sample.signature) == split  # why they cannot overlap
            sigs[split].add((sample.family, sample.signature))
    for i, a in enumerate(SPLITS):
        for b in SPLITS[i + 1:]:
            assert not seeds[a] & seeds[b], (a, b)
            assert not sigs[a] & sigs[b], (a, b)
            # the content alone (any family) never crosses splits either
            assert not {s for _, s in sigs[a]} & {s for _, s in sigs[b]}, (a, b)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(SPLITS), st.integers(0, 10**7 - 1), st.integers(0, 10**6),
       st.sampled_from(SPLITS), st.integers(0, 10**7 - 1), st.integers(0, 10**6))
def test_sample_seeds_are_injective(split_a, i_a, base_a, split_b, i_b, base_b):
    same = (split_a, i_a, base_a) == (split_b, i_b, base_b)
    assert (world.sample_seed(split_a, i_a, base_a) == world.sample_seed(split_b, i_b, base_b)) == same


def test_content_shares_roughly_match_split_shares():
    import hashlib

    got = Counter(world.content_split(hashlib.sha1(str(i).encode()).hexdigest()) for i in range(4000))
    for split, share in world.SPLIT_SHARES.items():
        assert abs(got[split] / 4000 - share) < 0.03, got


# ------------------------------------------------------------------ answers right by construction


@pytest.fixture(scope="module")
def samples():
    """200 test-split samples over every family (40 each)."""
    return list(world.iter_split("test", 200, families=FAMILIES))


def test_every_answer_is_right_from_facts_and_pixels(samples):
    size = WorldConfig().size
    for s in samples:
        f, objs = s.facts, s.facts["objects"]
        assert s.options[LETTERS.index(s.answer)] == s.answer_text
        if s.family == "direction":
            t = objs[f["target"]]
            dx, dy = t["x"][-1] - t["x"][0], t["y"][-1] - t["y"][0]
            assert (dx == 0) != (dy == 0)  # moves along one axis only
            expected = ("right" if dx > 0 else "left") if dx else ("down" if dy > 0 else "up")
            assert s.answer_text == expected == f["direction"]
            assert abs(dx + dy) >= 0.45 * size  # default motion crosses most of the frame
            assert f"{t['color']} {t['kind']}" in s.question
            assert moving_from_facts(f) == [f["target"]]
            assert direction_from_pixels(s.frames, t["color"]) == expected
        elif s.family in ("moving_color", "moving_shape"):
            (mover,) = moving_from_facts(f)
            key = "color" if s.family == "moving_color" else "kind"
            assert s.answer_text == objs[mover][key]
            if s.family == "moving_color":
                # a still shape's colour is among the options: presence alone cannot answer
                assert any(o["color"] in s.options for i, o in enumerate(objs) if i != mover)
                moved = [c for c in colours_in(s.frames[0])
                         if np.abs(centroid(s.frames[0], c) - centroid(s.frames[-1], c)).max() > 5]
                assert moved == [s.answer_text]
        elif s.family == "count":
            shown = [o for o in objs if any(o["visible"])]
            assert int(s.answer_text) == len(shown) == f["count"]
            assert len(colours_in(s.frames[0])) == len(shown)  # distinct colours, all visible
        elif s.family == "order":
            first_seen = [o["visible"].index(True) for o in objs]
            pick = min if f["query"] == "first" else max
            assert s.answer_text == objs[first_seen.index(pick(first_seen))]["color"]
            assert order_from_pixels(s.frames, f["query"]) == s.answer_text
        else:  # pragma: no cover
            raise AssertionError(s.family)


def test_order_answer_depends_on_frame_order(samples):
    """Each shape shows for the same number of frames and never together, so the reversed clip is
    a permutation of the same frames whose correct answer is another colour: a model blind to
    frame order must be wrong on one of the two."""
    orders = [s for s in samples if s.family == "order"]
    assert {s.facts["query"] for s in orders} == {"first", "last"}
    for s in orders:
        objs = s.facts["objects"]
        shown_frames = [sum(o["visible"]) for o in objs]
        assert max(shown_frames) - min(shown_frames) <= 1
        assert all(sum(o["visible"][t] for o in objs) == 1 for t in range(len(s.frames)))
        reversed_answer = order_from_pixels(s.frames[::-1], s.facts["query"])
        assert reversed_answer != s.answer_text
        assert reversed_answer in s.options  # the wrong reading is a tempting option


def test_letters_balanced_and_options_shuffled(samples):
    letters = Counter(s.answer for s in samples)
    for letter in LETTERS:
        assert 0.20 <= letters[letter] / len(samples) <= 0.30, letters
    for s in samples:
        assert len(s.options) == 4 and len(set(s.options)) == 4 and s.answer_text in s.options
    # the same option text lands on several letters (the order is not fixed per family)
    where_left = {s.options.index("left") for s in samples if s.family == "direction"}
    assert len(where_left) >= 3
    # the content of the answer varies too (no constant answer per family)
    for family in FAMILIES:
        assert len({s.answer_text for s in samples if s.family == family}) >= 3, family


def test_families_round_robin_in_equal_numbers():
    counts = Counter(spec.family for spec in plan_split("train", 40))
    assert counts == {f: 10 for f in world.DEFAULT_FAMILIES}


def test_trace_ends_with_the_answer_content_and_completion_scores_right(samples):
    rewards = pytest.importorskip("tinyr1.rewards")
    for s in samples[:40]:
        assert s.think.rstrip(".").endswith(s.answer_text)
        for style in ("letter", "letter_content"):
            text = s.completion(style)
            assert parse(text).ok
            assert rewards.score(text, s.answer, s.options).correct is True
    count = next(s for s in samples if s.family == "count" and s.answer_text != "1")
    assert count.think.count(",") == int(count.answer_text) - 1  # one listed shape per count


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"size": 63}, "even"),  # yuv420p needs even sides
        ({"size": 8}, "even number of pixels from 16"),
        ({"speed": 0.0}, "speed"),
        ({"noise": -1.0}, "noise"),
        ({"shape_size": (0.2, 0.5)}, "1/3"),  # shapes would not fit the 3x3 grid
        ({"distractors": 9}, "distractors"),
    ],
)
def test_bad_config_says_what_to_change(kwargs, words):
    with pytest.raises(ValueError, match=words):
        WorldConfig(**kwargs)


def test_too_many_distractors_for_a_family_is_refused():
    with pytest.raises(ValueError, match="leave 'order' out"):
        make_sample(0, "order", WorldConfig(distractors=3))
    with pytest.raises(ValueError, match="unknown family"):
        make_sample(0, "colour")


@pytest.mark.parametrize("distractors", [1, 2])
def test_harder_settings_stay_right(distractors):
    cfg = WorldConfig(distractors=distractors, speed=0.3, noise=10.0)
    for s in world.iter_split("validation", 20, cfg, families=FAMILIES):
        objs = s.facts["objects"]
        if s.family == "order":
            assert len(objs) == 2 + distractors
            assert order_from_pixels(s.frames, s.facts["query"]) == s.answer_text
        if s.family in ("direction", "moving_color"):
            assert len(moving_from_facts(s.facts)) == 1
            assert len(objs) == (1 if s.family == "direction" else 2) + distractors


# ------------------------------------------------------------------ files: mp4, JSONL, CLI


def test_clip_reads_back_through_load_frames_with_its_colours(tmp_path):
    from tinyr1.video import load_frames

    cfg = WorldConfig()
    checked = 0
    for family in ("moving_color", "order", "count"):
        s = make_sample(3, family, cfg)
        path = world.write_mp4(s.frames, tmp_path / f"{family}.mp4", cfg.fps)
        got = load_frames(path, num_frames=cfg.num_video_frames)
        assert got.frames.shape == (cfg.num_video_frames, cfg.size, cfg.size, 3)
        assert got.meta.num_frames == cfg.num_video_frames
        assert abs(got.meta.fps - cfg.fps) < 1e-6
        for t in range(cfg.num_video_frames):
            for o in s.facts["objects"]:
                if not o["visible"][t]:
                    continue
                q = max(1, o["size"] // 8)  # the box's centre patch is inside every shape
                cx, cy = o["x"][t] + o["size"] // 2, o["y"][t] + o["size"] // 2
                patch = got.frames[t, cy - q : cy + q, cx - q : cx + q].reshape(-1, 3).mean(axis=0)
                assert np.abs(patch - np.array(o["rgb"])).max() < 35, (family, t, o["color"], patch)
                checked += 1
        # after compression the same colours are still found in the same frames
        assert [colours_in(f) for f in got.frames] == [colours_in(f) for f in s.frames]
    assert checked > 40


def test_codec_is_h264_when_pyav_can_encode_it():
    import av

    expected = "libx264" if "libx264" in av.codec.codecs_available else "mpeg4"
    assert world.video_codec() == expected


def test_cli_writes_a_loadable_dataset(tmp_path, capsys):
    from tinyr1.cli import main
    from tinyr1.data import load_dataset

    out = tmp_path / "val"
    assert main(["world", "--split", "validation", "--n", "8", "--out", str(out), "--seed", "3", "--size", "32", "--frames", "8"]) == 0
    printed = capsys.readouterr().out
    path = out / "data.jsonl"
    assert str(path) in printed and "count 2" in printed
    rows = load_dataset(path)
    assert len(rows) == 8 and len(list((out / "clips").glob("*.mp4"))) == 8
    again = list(world.iter_split("validation", 8, WorldConfig(size=32, num_video_frames=8), seed=3))
    for row, s in zip(rows, again):
        assert (row.id, row.family, row.question, row.options, row.answer, row.think) == (
            s.id, s.family, s.question, s.options, s.answer, s.think)
        assert row.answer_text() == row.extra["answer_text"] == s.answer_text
        assert row.extra["facts"] == json.loads(json.dumps(s.facts))
        assert row.extra["split"] == "validation" and row.extra["seed"] == s.seed
    meta = json.loads((out / "world.json").read_text())
    assert meta["config"]["size"] == 32 and meta["counts"]["family"] == {f: 2 for f in world.DEFAULT_FAMILIES}


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--n", "0"], "--n must be at least 1"),  # nothing to write
        (["--n", "2", "--size", "33"], "even"),  # odd frame side
        (["--n", "2", "--distractors", "3", "--families", "order"], "at most 2 distractors"),
    ],
)
def test_cli_bad_input_is_a_user_error(tmp_path, argv, words):
    """UserError is what the dispatcher turns into 'tinyr1 world: error: ...' and exit status 2
    (parsed with this subcommand alone, so the test does not pay for importing the others)."""
    import argparse

    from tinyr1.cli import UserError
    from tinyr1.cli import world as world_cli

    parser = argparse.ArgumentParser()
    world_cli.register(parser.add_subparsers())
    args = parser.parse_args(["world", "--split", "test", "--out", str(tmp_path / "x"), *argv])
    with pytest.raises(UserError, match=words):
        args.func(args)
    assert not (tmp_path / "x" / "data.jsonl").exists()


def test_answers_still_visible_in_what_a_tiny_policy_sees(tmp_path):
    """Defaults are meant for a tiny model that sees 4 frames at 32x32: the answer must still be
    readable from those pixels (decoded from the mp4, resized at decode time)."""
    from tinyr1.video import load_frames

    for s in world.iter_split("test", 16, families=FAMILIES):
        path = world.write_mp4(s.frames, tmp_path / f"{s.id}.mp4", s.fps)
        small = load_frames(path, num_frames=4, size=32).frames
        visible = [colours_in(f, min_pixels=4) for f in small]
        objs = s.facts["objects"]
        if s.family == "direction":
            assert direction_from_pixels(small, objs[s.facts["target"]]["color"]) == s.answer_text
        elif s.family == "count":
            assert all(len(v) == int(s.answer_text) for v in visible)
        elif s.family == "order":
            assert set().union(*visible) == {o["color"] for o in objs}  # every shape is sampled
            firsts = {}
            for i, v in enumerate(visible):
                for c in v:
                    firsts.setdefault(c, i)
            ranked = sorted(firsts, key=firsts.get)
            assert (ranked[0] if s.facts["query"] == "first" else ranked[-1]) == s.answer_text
        else:  # the moving shape: the only colour whose centre travels
            moved = [c for c in visible[0] if np.abs(centroid(small[0], c) - centroid(small[-1], c)).max() > 3]
            assert len(moved) == 1 and moved[0] == objs[0]["color"]


# ------------------------------------------------------------------ version 3: no single-frame shortcuts


def _on_a_cell(obj: dict, frame: int, size: int) -> bool:
    """A shape's position class in one frame: its box sits in one grid cell where a still shape
    would be placed (within the placement's jitter of a cell's centre on both axes), else it lies
    between cells."""
    s, cell = obj["size"], size / 3
    slack = max(0, int((cell - s) // 2))
    for v in (obj["x"][frame], obj["y"][frame]):
        centres = [round(i * cell + (cell - s) / 2) for i in range(3)]
        if min(abs(v - c) for c in centres) > slack:
            return False
    return True


@pytest.mark.parametrize("family", ["direction", "moving_color", "moving_shape"])
def test_v3_mover_looks_like_a_still_shape_in_one_frame(family):
    from tinyr1.world import WorldConfig

    for version, mover_on_cells in ((2, None), (3, 1.0)):
        config = WorldConfig(version=version, distractors=1)
        movers = stills = 0
        n = 120
        for seed in range(n):
            facts = make_sample(seed, family, config).facts
            objs, last = facts["objects"], facts["num_frames"] - 1
            assert all(_on_a_cell(o, 0, facts["size"]) for o in objs[1:])  # still shapes: always on a cell
            stills += len(objs) - 1
            movers += _on_a_cell(objs[0], 0, facts["size"])
            if version == 3:
                assert _on_a_cell(objs[0], last, facts["size"])  # and it ends on one
        if mover_on_cells is None:
            assert movers < 0.6 * n  # version 2: the mover is often between cells in frame 0
        else:
            assert movers == n


def test_v3_order_end_frames_are_empty_and_v2_is_unchanged():
    import hashlib

    from tinyr1.world import FAMILIES, WorldConfig

    for seed in range(20):
        facts = make_sample(seed, "order", WorldConfig(version=3)).facts
        assert not any(o["visible"][0] or o["visible"][-1] for o in facts["objects"])
        assert all(any(o["visible"]) for o in facts["objects"])
    # version 2 byte for byte as before version 3 existed (frames and rows of 30 samples)
    h = hashlib.sha256()
    for fam in FAMILIES:
        for seed in range(6):
            s = make_sample(seed, fam, split="test" if seed % 2 else None)
            h.update(s.frames.tobytes())
            h.update(json.dumps(s.row("x.mp4"), sort_keys=True).encode())
    assert h.hexdigest() == "72fce9b2696dcf90cfc73e74126fae192d589d6922473d64df05b3a56e2a4fc3"
    assert "version" not in WorldConfig().to_dict()  # cached v2 splits keep their keys
    assert WorldConfig.from_dict(WorldConfig(version=3).to_dict()).version == 3
    with pytest.raises(ValueError, match="version"):
        WorldConfig(version=4)


def test_world_cli_version_3(tmp_path, capsys):
    from tinyr1.cli import main

    assert main(["world", "--split", "validation", "--n", "4", "--out", str(tmp_path / "w3"), "--version", "3"]) == 0
    meta = json.loads((tmp_path / "w3" / "world.json").read_text())
    assert meta["config"]["version"] == 3
    with pytest.raises(SystemExit):
        main(["world", "--split", "validation", "--n", "4", "--out", str(tmp_path / "w4"), "--version", "4"])


def test_v3_moving_families_place_two_still_shapes_so_one_frame_leaves_a_three_way_guess():
    from tinyr1.world import WorldConfig

    for family in ("moving_color", "moving_shape"):
        for seed in range(10):
            assert len(make_sample(seed, family, WorldConfig(version=3)).facts["objects"]) == 3
            assert len(make_sample(seed, family, WorldConfig(version=2)).facts["objects"]) == 2
        s = make_sample(3, "moving_color", WorldConfig(version=3))
        shown = {o["color"] for o in s.facts["objects"]}
        assert len(shown & set(s.options)) == 3  # every shown colour is an option
    # the extra still takes a colour and a cell, so the distractor cap is one lower in version 3
    with pytest.raises(ValueError, match="at most 3"):
        WorldConfig(version=3, distractors=4).check_family("moving_color")
    WorldConfig(version=2, distractors=4).check_family("moving_color")
