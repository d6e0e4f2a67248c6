"""tinyr1's Gradio app (also the Hugging Face Space entry point: README front matter app_file).

    python app.py          # http://127.0.0.1:7860, the embedded tiny policy by default
    ./run.sh app           # the same, after setting up the virtual environment

The Blocks live in ``tinyr1/app/``; this file only builds them at module level (``demo``, what
Spaces and ``gradio app.py`` reload mode look for) and launches them with the serving settings
(theme and css go to ``launch`` in Gradio 6; the upload limit; the paths the server may read).
"""
import os
from pathlib import Path

# Offline by default (before gradio and huggingface_hub are imported): no analytics, no telemetry.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from tinyr1.app import build_app, launch_kwargs  # noqa: E402

ROOT = Path(__file__).resolve().parent

demo = build_app(ROOT)

if __name__ == "__main__":
    demo.launch(**launch_kwargs(ROOT))
