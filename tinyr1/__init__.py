"""tinyr1: run, inspect and retrain small video reasoning models (the TinyLLaVA-Video-R1 recipe).

Modules: format (output format and prompts), rewards (the paper's reward), video (frame loading),
data (video-QA datasets), models/ (the TinyLLaVA-Video architecture), policy (load, stream,
sample), world (the synthetic video world), grpo (the GRPO loop), runs (GRPO runs: folders and the
train/evaluate sequence), app/ (the Gradio app), cli.
"""
__version__ = "0.1.0"
