"""tinyr1: run, inspect and retrain small video reasoning models (the TinyLLaVA-Video-R1 recipe).

    tinyr1 --help                      # the command line (tinyr1/cli/)
    python app.py                      # the Gradio app (tinyr1/ui.py)

Modules: format (output format and prompts), rewards (the paper's reward), video (frame loading),
data (video-QA datasets), world (the synthetic video world), tokenizer (the tiny policy's),
models/ (the TinyLLaVA-Video architecture), policy, qwen_vl and registry (load, stream, sample),
evaluate, tiny/ (training the embedded policy), grpo/ (the GRPO loop), ui (the app), cli/.
The decisions behind them, and the import layers they keep: docs/DESIGN.md.
"""
__version__ = "0.1.0"
