"""tinyr1: run, inspect and retrain small video reasoning models (the TinyLLaVA-Video-R1 recipe).

    tinyr1 --help                      # the command line (tinyr1/cli/)
    python app.py                      # the Gradio app (tinyr1/app/)

Bottom layer: format (output format and prompts), rewards (the paper's reward), video (frame
loading), data (video-QA datasets), archive (safe zip import), limits (public limits), files
(atomic writes, JSONL logs), world (the synthetic video world), tokenizer (the tiny policy's),
models/ (the TinyLLaVA-Video and Qwen2.5-VL model code). Above it: policy/ (load, stream, sample,
log-probs; one backend per family), registry (the policies tinyr1 knows), evaluate, tiny/ (training
the embedded policy); then grpo/ (the GRPO loop) and runs (GRPO runs as events); on top, app/ (the
Gradio app) and cli/. The decisions behind them, and the import layers they keep: docs/DESIGN.md.
"""
__version__ = "0.1.0"
