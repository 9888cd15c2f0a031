#!/usr/bin/env bash
# Build the SDXL base 1.0 architecture at FULL size with random weights (UNet 2.57 B parameters), export it to
# OpenVINO IR with optimum-intel and INT8 weight-compress it (optimum-cli export openvino --weight-format int8).
# Same venv, tokenizer and steps as make-sd15-random-int8.sh; the configs are in make_sdxl_random.py, whose
# docstring gives the measured time and peak RSS (~12 min on 2 cores, 19.3 GB peak RSS: it needs a 24 GB machine).
# Its images are noise; its compute and memory cost are the real model's.
#
#   bash scripts/bench-models/make-sdxl-random-int8.sh              # -> .cache/bench-models/sdxl-int8-random
#   bash scripts/bench-models/make-sdxl-random-int8.sh --out DIR --force
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BENCH_MODEL_SCRIPT=make_sdxl_random.py BENCH_MODEL_TAG=make-sdxl-random-int8 exec bash "$HERE/make-sd15-random-int8.sh" "$@"
