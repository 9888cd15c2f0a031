#!/usr/bin/env bash
# Build the SD 1.5 architecture at FULL size with random weights, export it to OpenVINO IR with
# optimum-intel and INT8 weight-compress it the way OpenVINO/stable-diffusion-v1-5-int8-ov is made
# (optimum-cli export openvino --weight-format int8, i.e. nncf.compress_weights INT8_ASYM).
# Its images are noise, but its compute and memory cost are those of the real model.
#
#   bash scripts/bench-models/make-sd15-random-int8.sh              # -> .cache/bench-models/sd15-int8-random
#   bash scripts/bench-models/make-sd15-random-int8.sh --out DIR --force
#
# Reuses the pinned fixture venv (.cache/fixture-venv, made by scripts/fixtures/make-fixtures.sh; it
# is created here the same way when missing). Needs no model hub: every config is embedded in
# make_sd15_random.py, and the CLIP tokenizer is a small BPE vocabulary generated locally (max length 77).
# Cost: ~10 min on 2 cores, ~12 GB RAM peak during the export, ~5 GB temporary disk, 1.1 GB result.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${FIXTURE_VENV:-$ROOT/.cache/fixture-venv}"
REQ="$ROOT/scripts/bench-models/requirements.txt"
PY="${PYTHON:-python3}"
# make-sdxl-random-int8.sh runs this wrapper with BENCH_MODEL_SCRIPT=make_sdxl_random.py
SCRIPT="${BENCH_MODEL_SCRIPT:-make_sd15_random.py}"
TAG="${BENCH_MODEL_TAG:-make-sd15-random-int8}"

die() { echo "$TAG: ERROR: $*" >&2; exit 1; }

if [ ! -x "$VENV/bin/python" ]; then
  echo "$TAG: creating $VENV (pinned, see $REQ)" >&2
  "$PY" -m venv "$VENV" || die "'$PY -m venv' failed (Debian: apt-get install python3-venv)"
fi
# A new venv, or one made by make-fixtures.sh without the export packages, gets the pinned requirements.
"$VENV/bin/python" -c 'import torch, diffusers, transformers, optimum.intel, nncf, openvino_tokenizers' 2>/dev/null || {
  echo "$TAG: installing the pinned requirements into $VENV" >&2
  (cd "$ROOT/scripts/bench-models" && "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$REQ") \
    || die "pip install failed (is PyPI reachable?)"
}

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 DO_NOT_TRACK=1 TOKENIZERS_PARALLELISM=false
exec "$VENV/bin/python" "$ROOT/scripts/bench-models/$SCRIPT" "$@"
