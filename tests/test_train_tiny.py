"""Spec of the tiny policy's training (tinyr1.tiny): the texts it learns from, a smoke run that
ends in a loadable policy, and a resume after an interruption that lands on the very same
weights as an uninterrupted run.

Run: .venv/bin/pytest tests/test_train_tiny.py -q
"""
from __future__ import annotations

import dataclasses
import importlib
import json
import os
import re
import shutil

import numpy as np
import pytest
import torch

from tinyr1.files import read_jsonl
from tinyr1.format import LETTERS, parse, render_options
from tinyr1.tiny import PRESETS, TrainError, train
from tinyr1.tiny import texts
from tinyr1.tiny.train import CHECKPOINT, lr_at
from tinyr1.world import make_sample

SMOKE = PRESETS["smoke"]


# ------------------------------------------------------------------ texts


def test_fused_option_tokens_are_exactly_the_rendered_lines():
    tokens = set(texts.option_tokens())
    rendered = render_options(["left", "3", "magenta", "cross"]).split("\n")
    assert set(rendered) <= tokens
    assert len(tokens) == 4 * len(texts.OPTION_WORDS)


@pytest.mark.parametrize("seed", range(6))
def test_trace_states_the_content_then_its_letter(seed):
    s = make_sample(seed)
    target = texts.completion(s.think, s.answer_text, s.answer)
    parsed = parse(target)
    assert parsed.ok and parsed.answer == s.answer
    assert parsed.think.startswith(s.think)
    assert parsed.think.endswith(f"Answer: {s.answer_text} {s.answer}.")
    assert s.options[LETTERS.index(s.answer)] == s.answer_text


@pytest.mark.parametrize("seed", range(12))
def test_direction_traces_name_full_places_others_unchanged(seed):
    """The taught direction trace states both coordinates of the start and end cells (so the
    axis need not be known before the frames are compared) and keeps the world's conclusion."""
    s = make_sample(seed)
    taught = texts.think_for(s.think, s.facts, s.family)
    if s.family != "direction":
        assert taught == s.think
        return
    obj, size = s.facts["objects"][0], s.facts["size"]
    assert taught.endswith(f"So it moves {s.facts['direction']}.") and s.think.endswith(f"So it moves {s.facts['direction']}.")
    assert f"the {obj['color']} {obj['kind']} is" in taught
    start, end = texts.where(obj, 0, size), texts.where(obj, len(obj["x"]) - 1, size)
    assert f"the {start}." in taught.split(". ")[0] + "."
    assert f"the {end}" in taught.split(". ")[1]


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("family", ["moving_color", "moving_shape"])
def test_places_trace_states_every_shapes_start_and_end_then_the_one_that_changed(seed, family):
    from tinyr1.conclusion import conclusion
    from tinyr1.world import WorldConfig

    s = make_sample(seed, family, WorldConfig(version=3))
    taught = texts.think_for(s.think, s.facts, s.family, moving="places")
    objects, size = s.facts["objects"], s.facts["size"]
    sentences = taught.split(". ")
    assert len(sentences) == len(objects) + 1
    changed = []
    for o in objects:  # each shape once, with the places the generator put it in
        line = next(x for x in sentences if x.startswith(f"The {o['color']} {o['kind']} is"))
        start, end = texts.where(o, 0, size), texts.where(o, len(o["x"]) - 1, size)
        assert f" the {start}, then " in line and line.rstrip(".").endswith(f"the {end}")
        if start != end:
            changed.append(o)
    movers = [o for o in objects if len(set(o["x"])) > 1 or len(set(o["y"])) > 1]
    assert len(changed) == 1 and changed == movers  # the one whose place changed is the one that moves
    assert taught.endswith(f"So the moving shape is {s.answer_text if family == 'moving_color' else 'a ' + s.answer_text}.")
    # The conclusion the consistency metric reads is the answer's option.
    assert conclusion(texts.completion(taught, s.answer_text, s.answer), s.options).letter == s.answer
    assert texts.think_for(s.think, s.facts, s.family) == s.think  # the world's trace stays the default


def test_places_trace_falls_back_when_no_single_shape_changes_third():
    facts = {"size": 64, "objects": [
        {"color": "red", "kind": "square", "size": 14, "x": [2, 8], "y": [2, 2]},   # moves within the left third
        {"color": "blue", "kind": "circle", "size": 14, "x": [40, 40], "y": [40, 40]},
    ]}
    assert texts.think_for("The blue shape stays still. The red shape moves.", facts, "moving_color", "places") \
        == "The blue shape stays still. The red shape moves."
    with pytest.raises(ValueError, match="moving trace"):
        texts.think_for("x", facts, "moving_color", "sideways")
    with pytest.raises(ValueError, match="moving_trace"):
        dataclasses.replace(PRESETS["temporal"], moving_trace="sideways")


@pytest.mark.parametrize("seed", range(8))
def test_caption_follows_the_ground_truth(seed):
    """One sentence per sampled frame naming exactly the shapes visible in it, in reading order of
    their cells; the direction family's trace agrees with the first and last frames' places."""
    s = make_sample(seed)
    indices = [0, 5, 10, 15]
    cap = texts.caption(s.facts, indices)
    sentences = re.findall(r"Frame (\d): ([^.]*)\.", cap)
    assert [int(k) for k, _ in sentences] == [1, 2, 3, 4]
    for (_, body), f in zip(sentences, indices):
        visible = [o for o in s.facts["objects"] if o["visible"][f]]
        if not visible:
            assert body == "nothing"
            continue
        named = re.findall(r"a (\w+) (\w+) (?:at|in) the ([a-z ]+?)(?:,|$)", body)
        assert sorted((c, k) for c, k, _ in named) == sorted((o["color"], o["kind"]) for o in visible)
        cells = [_cell(place) for _, _, place in named]
        assert cells == sorted(cells)  # reading order: top row first, left to right
    if s.family == "direction":  # the trace's start and end places are the first and last frames'
        horizontal = s.facts["direction"] in ("left", "right")
        for when, (_, body) in (("start", sentences[0]), ("end", sentences[-1])):
            place = re.search(r"(?:at|in) the ([a-z ]+)$", body).group(1)
            h, v = _axes(place)
            word = h if horizontal else v
            expected = f"in the {word}" if word in ("centre", "middle") else f"at the {word}"
            sentence = [x for x in s.think.split(". ") if f"the {when}" in x][0]
            assert expected in sentence, (place, s.think)


def _cell(place: str) -> tuple[int, int]:
    h, v = _axes(place)
    return ("top", "middle", "bottom").index(v), ("left", "centre", "right").index(h)


def _axes(place: str) -> tuple[str, str]:
    """A caption place -> (horizontal, vertical) thirds: "top" -> ("centre", "top")."""
    words = place.split()
    h = next((w for w in words if w in ("left", "right")), "centre")
    v = next((w for w in words if w in ("top", "bottom")), "middle")
    return h, v


def test_drill_rows_label_only_the_letters():
    from tinyr1.tiny.data import drill_example
    from tinyr1.tokenizer import train_tokenizer

    rng = np.random.default_rng(0)
    corpus = [texts.drill(rng)[0] for _ in range(50)]
    tok = train_tokenizer(corpus, 300, added_tokens=texts.option_tokens())
    text, spans = texts.drill(np.random.default_rng(1))
    assert len(spans) == texts.DRILL_LOOKUPS
    for (a, b) in spans:  # each labelled letter is the option that holds the word just named
        word = text[:a].rsplit("Answer: ", 1)[1].strip()
        assert f"{text[a:b]}. {word}" in text.split("\n")
    ex = drill_example(tok, np.random.default_rng(1))
    labelled = [tok.decode([t]).strip() for t in ex.labels if t != -100]
    assert labelled == [text[a:b] for a, b in spans]
    assert ex.clip is None


def test_first_last_drill_labels_the_conclusion_and_nothing_before_it():
    from tinyr1.tiny.data import order_drill_pool
    from tinyr1.tokenizer import train_tokenizer
    from tinyr1.world import WorldConfig

    config = WorldConfig(version=3)
    samples = [make_sample(s, "order", config) for s in range(30)]
    for s in samples:
        text, [(a, b)] = texts.order_drill(s.question, s.options, s.think, s.answer_text, s.answer)
        query = s.question.rsplit(" ", 1)[1].rstrip("?")  # "first" or "last"
        assert text[a:b] == f" So the {query} colour is {s.answer_text}. Answer: {s.answer_text} {s.answer}."
        assert "<image>" not in text and text.index(s.question) < a  # the question, no video, then the trace
    corpus = [texts.order_drill(s.question, s.options, s.think, s.answer_text, s.answer)[0] for s in samples]
    tok = train_tokenizer(corpus, 300, added_tokens=texts.option_tokens())
    pool = order_drill_pool(tok, 6, config, seed=0)
    assert len(pool) == 6 and all(e.clip is None for e in pool)
    for e in pool:
        labelled = tok.decode([t for t in e.labels if t != -100])
        assert labelled.strip().startswith("So the") and "Answer:" in labelled and "appears" not in labelled
    with pytest.raises(ValueError, match="order trace"):
        texts.order_drill("Which colour appears first?", ["red", "blue"], "I do not know.", "red", "A")


def test_temporal_preset_is_the_cold_start_on_world_3_with_the_first_last_drill():
    t, c = PRESETS["temporal"], PRESETS["coldstart"]
    assert t.world == {"version": 3} and t.order_drill > 0 and c.order_drill == 0
    assert [dataclasses.astuple(s) for s in t.stages] == [dataclasses.astuple(s) for s in c.stages]


def test_first_last_drill_rows_join_the_video_stages_drill_batches(tmp_path):
    tt = importlib.import_module("tinyr1.tiny.train")  # the module (the package exports the function train)

    cfg = dataclasses.replace(PRESETS["smoke"], world={"version": 3}, order_drill=3, order_drill_pool=5)
    clips = tt.build_clips("train", cfg.train_clips, tmp_path / "data", tt.world_config(cfg), seed=cfg.seed,
                           num_frames=cfg.num_frames, progress=False)
    assert all(r.extra["facts"]["objects"] for r in clips.rows)
    batches = tt.Batches(cfg, clips, tt.build_tokenizer(cfg, clips), 4)
    names = [s.name for s in cfg.stages]
    drill, coldstart = names.index("drill"), names.index("coldstart")
    assert batches.get(drill, 0)["drill"]["input_ids"].shape[0] == cfg.stages[drill].drill_batch  # bare drill alone
    assert batches.get(coldstart, 0)["drill"]["input_ids"].shape[0] == cfg.stages[coldstart].drill_batch + 3
    assert (train(cfg, tmp_path / "run", progress=False) / "config.json").exists()  # and it trains


def test_learning_rate_warms_up_then_decays():
    stage = SMOKE.stages[0].__class__("s", steps=100, lr=1.0, warmup=10, min_lr_ratio=0.1)
    lrs = [lr_at(stage, k) for k in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))
    assert lrs[-1] == pytest.approx(0.1, abs=1e-3)


def test_config_round_trips_and_rejects_nonsense():
    assert type(SMOKE).from_dict(json.loads(json.dumps(SMOKE.to_dict()))) == SMOKE
    with pytest.raises(ValueError, match="unknown stages"):
        SMOKE.with_steps(polish=3)
    with pytest.raises(ValueError, match="patch_size"):
        dataclasses.replace(SMOKE, patch_size=5)


# ------------------------------------------------------------------ runs


def _weights(folder):
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    path = train(SMOKE, out, progress=False, log=lambda _: None)
    return out, path


def test_smoke_run_writes_a_loadable_policy(full_run):
    from tinyr1.policy import GenerationSettings, load_policy

    out, path = full_run
    assert path == out / "policy"
    policy = load_policy(path)
    assert policy.num_frames == SMOKE.num_frames and policy.metadata["recipe"]["seed"] == SMOKE.seed
    assert set(policy.metadata["validation"]) == {"coldstart"}  # evaluated where traces are trained
    # The fused option lines are single tokens of the saved tokenizer.
    ids = policy.tokenizer("\nA. left\nB. 3", add_special_tokens=False)["input_ids"]
    assert [policy.tokenizer.decode([i]) for i in ids] == ["\n", "A. left", "\n", "B. 3"]
    frames = np.zeros((SMOKE.num_frames, 64, 64, 3), np.uint8)
    policy.generate(frames, "How many shapes are in the video?", ["1", "2", "3", "4"],
                    GenerationSettings(temperature=0, max_new_tokens=4))
    events = [json.loads(line)["event"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert events[0] == "start" and events[-1] == "done" and events.count("eval") == 1


def test_interrupted_run_resumes_to_the_same_weights(full_run, tmp_path):
    out_full, path_full = full_run
    # Same data (the mp4 encoder is not bit-reproducible run to run, so the decoded clips are shared).
    shutil.copytree(out_full / "data", tmp_path / "data")
    # A crash after 3 of 8 steps: the last checkpoint is the one at step 2 (checkpoint_every = 2).
    assert train(SMOKE, tmp_path, progress=False, stop_after=3, log=lambda _: None) is None
    ckpt = tmp_path / CHECKPOINT / "step-000002"
    assert sorted(p.name for p in ckpt.iterdir()) == ["config.json", "manifest.json", "state.pt", "tensors.safetensors"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no half-written folders left
    state = torch.load(ckpt / "state.pt", weights_only=True)  # plain data: no pickled objects
    assert (state["stage"], state["step"]) == (1, 0)  # the vision stage (2 steps) is done
    # What the crash also left: a torn last log line and a checkpoint it never finished.
    with open(tmp_path / "log.jsonl", "ab") as fh:
        fh.write(b'{"event": "step", "stage": "dr')
    (tmp_path / CHECKPOINT / ".tmp-step-000004-99").mkdir()
    said = []
    path = train(SMOKE, tmp_path, resume=True, progress=False, log=said.append)
    assert any("torn last line" in m for m in said) and any(".tmp-step-000004-99" in m for m in said)
    events = [r["event"] for r in read_jsonl(tmp_path / "log.jsonl")]
    assert events.count("start") == 2 and events[-1] == "done"
    a, b = _weights(path_full), _weights(path)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_damaged_newest_checkpoint_resumes_from_the_one_before(full_run, tmp_path):
    out_full, path_full = full_run
    shutil.copytree(out_full / "data", tmp_path / "data")
    assert train(SMOKE, tmp_path, progress=False, stop_after=5, log=lambda _: None) is None
    assert [p.name for p in sorted((tmp_path / CHECKPOINT).glob("step-*"))] == ["step-000002", "step-000004"]
    weights = tmp_path / CHECKPOINT / "step-000004" / "tensors.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 4096] = os.urandom(4096)  # garbage mid-file, same size
    weights.write_bytes(bytes(data))
    said = []
    path = train(SMOKE, tmp_path, resume=True, progress=False, log=said.append)
    assert any("skipping checkpoint step-000004" in m and "checksum" in m for m in said)
    assert any("resuming at stage 'drill' step 0" in m for m in said)
    a, b = _weights(path_full), _weights(path)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_refuses_another_recipe(full_run):
    out, _ = full_run
    with pytest.raises(TrainError, match="different recipe"):
        train(dataclasses.replace(SMOKE, seed=1), out, resume=True, progress=False, log=lambda _: None)


def test_a_run_with_init_starts_from_that_policys_weights_and_tokenizer(full_run, tmp_path):
    from tinyr1.policy import load_policy

    _, start = full_run
    # One trace stage on world 3 with the first/last drill, from the smoke policy (the curriculum
    # preset's shape at smoke size).
    # A learning rate so small that two steps leave the weights where they started.
    stage = dataclasses.replace(SMOKE.stages[-1], name="temporal", steps=2, lr=1e-7, probe_weight=0.0)
    cfg = dataclasses.replace(SMOKE, init=str(start), world={"version": 3}, order_drill=2, order_drill_pool=4,
                              stages=(stage,))
    said = []
    path = train(cfg, tmp_path, progress=False, log=said.append)
    assert any(f"starting from the weights of {start}" in m for m in said)
    assert (tmp_path / "tokenizer" / "tokenizer.json").read_text() == (start / "tokenizer.json").read_text()
    a, b = _weights(start), _weights(path)
    fresh = _weights(train(dataclasses.replace(cfg, init=None), tmp_path / "fresh", progress=False,
                           log=lambda _: None))
    assert a.keys() == b.keys() == fresh.keys()
    assert max(float((b[k] - a[k]).abs().max()) for k in a) < 1e-5  # it started from the policy
    assert max(float((fresh[k] - a[k]).abs().max()) for k in a) > 1e-3  # where a fresh run does not
    assert load_policy(path).metadata["recipe"]["init"] == str(start)


def test_init_that_does_not_fit_is_refused_with_the_reason(full_run, tmp_path):
    _, start = full_run
    with pytest.raises(TrainError, match="do not fit this recipe's model"):
        train(dataclasses.replace(SMOKE, init=str(start), text_width=48), tmp_path / "a", progress=False,
              log=lambda _: None)
    with pytest.raises(TrainError, match="cannot start from"):
        train(dataclasses.replace(SMOKE, init=str(tmp_path / "nowhere")), tmp_path / "b", progress=False,
              log=lambda _: None)


def test_curriculum_preset_continues_the_shipped_cold_start_on_world_3():
    from tinyr1.tiny.train import init_policy_dir, load_init_weights, build_model

    cfg = PRESETS["curriculum"]
    assert cfg.init == "tiny-coldstart" and cfg.world == {"version": 3} and cfg.order_drill > 0
    assert [s.name for s in cfg.stages] == ["temporal"] and cfg.stages[0].probe_weight == 0
    # The shipped policy's weights fit the preset's model: the sizes are the shipped recipe's.
    from transformers import AutoTokenizer

    folder = init_policy_dir(cfg.init)
    load_init_weights(build_model(cfg, AutoTokenizer.from_pretrained(folder)), folder)


def test_cli_smoke_with_pause_and_resume(tmp_path, capsys):
    from tinyr1.cli import main

    out = tmp_path / "run"
    assert main(["train-tiny", "--out", str(out), "--preset", "smoke", "--quiet", "--steps", "coldstart=1",
                 "--max-minutes", "0.00001"]) == 0
    assert list((out / CHECKPOINT).glob("step-*/state.pt")) and not (out / "policy").exists()
    assert main(["train-tiny", "--out", str(out), "--preset", "smoke", "--quiet", "--steps", "coldstart=1",
                 "--resume"]) == 0
    assert capsys.readouterr().out.strip().endswith("policy")
    meta = json.loads((out / "policy" / "policy.json").read_text())
    assert [s["steps"] for s in meta["recipe"]["stages"]] == [2, 2, 2, 1]
    assert main(["train-tiny", "--out", str(out), "--steps", "polish=3"]) == 2
