#!/usr/bin/env bash
# tinyr1's one entry point: sets up its own virtual environment, then runs a job.
#
#   ./run.sh app          set up, then launch the app (TinyLLaVA-Video-R1 nf4 on a CUDA GPU, else the
#                         embedded tiny policy; never forced offline)
#   ./run.sh test         set up, then run the whole test suite (what CI runs, via .ci/run)
#   ./run.sh setup        set up only
#   ./run.sh tinyr1 ...   set up, then run any CLI command (e.g. ./run.sh tinyr1 reward --help)
#
# Setup is idempotent: it installs the CPU build of torch 2.13.0 first (a bare `torch` would pull
# a multi-GB CUDA build: docs/DESIGN.md, "CPU facts"), then the package with its dev extras (the
# test libraries; the app itself needs none of them), and records a stamp so that later runs skip
# pip unless pyproject.toml changed. TINYR1_VENV picks the folder.
set -euo pipefail
cd "$(dirname "$0")"
VENV="${TINYR1_VENV:-.venv}"
PY="${PYTHON:-python3}"

setup() {
  if [ ! -x "$VENV/bin/python" ]; then
    echo "[tinyr1] creating virtual environment in $VENV"
    "$PY" -m venv "$VENV"
  fi
  local stamp="$VENV/.tinyr1-stamp" want
  want=$(cat pyproject.toml | sha256sum | cut -c1-16)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "[tinyr1] installing dependencies (first run: a few minutes)"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check torch==2.13.0
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[dev]"
    echo "$want" > "$stamp"
  fi
}

browser() {
  # The browser tests drive Debian's chromium (Playwright cannot download its own here).
  if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "[tinyr1] installing chromium for the browser tests"
      apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
        || echo "[tinyr1] could not install chromium: browser tests will be skipped"
    else
      echo "[tinyr1] chromium not found and not root: browser tests will be skipped"
    fi
  fi
}

# The tests never touch the network (offline mode is set for them only); the app and the CLI may
# download a registry policy where the hub is reachable (tinyr1.registry probes it first).
export GRADIO_ANALYTICS_ENABLED=False TOKENIZERS_PARALLELISM=false

cmd="${1:-app}"; shift || true
case "$cmd" in
  setup) setup ;;
  test)  setup; browser; HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 exec "$VENV/bin/python" -m pytest -q "$@" ;;
  app)   setup; exec "$VENV/bin/python" app.py "$@" ;;
  tinyr1) setup; exec "$VENV/bin/tinyr1" "$@" ;;
  *) echo "usage: ./run.sh app | test [pytest args] | setup | tinyr1 ARGS" >&2; exit 2 ;;
esac
