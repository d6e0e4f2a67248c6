"""The embedded tiny policy's training: texts, data, recipe and the training run.

    from tinyr1.tiny import train, TinyConfig, PRESETS
    train(PRESETS["coldstart"], "runs/tiny")            # or: tinyr1 train-tiny --out runs/tiny

Modules: ``texts`` (captions, traces, the option-lookup drill, fused option tokens), ``data``
(world clips decoded from mp4, tokenized examples), ``config`` (TinyConfig, Stage, PRESETS),
``train`` (the stages, checkpoints, resume). The shipped policy's card:
assets/policies/tiny-coldstart/README.md.
"""
from tinyr1.tiny.config import PRESETS, Stage, TinyConfig
from tinyr1.tiny.train import TrainError, train

__all__ = ["PRESETS", "Stage", "TinyConfig", "TrainError", "train"]
