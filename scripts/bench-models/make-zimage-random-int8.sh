#!/usr/bin/env bash
# Build Z-Image-Turbo at FULL size with random weights (transformer 6.2 B, Qwen3-4B text encoder 4.0 B parameters),
# export it to OpenVINO IR with optimum-intel and INT8 weight-compress it (optimum-cli export openvino
# --weight-format int8). Same venv and steps as make-sd15-random-int8.sh; the configs, and why the two large
# components are exported one at a time, are in make_zimage_random.py. Its images are noise; its compute and memory
# cost are the real model's.
#
# The export of the 6.2 B transformer peaks above this machine's 24 GB of RAM: give it swap first, e.g.
#   fallocate -l 24G /swapfile && chmod 600 /swapfile && mkswap /swapfile && swapon /swapfile
# (and swapoff before benchmarking).
#
#   bash scripts/bench-models/make-zimage-random-int8.sh              # -> .cache/bench-models/zimage-int8-random
#   bash scripts/bench-models/make-zimage-random-int8.sh --out DIR --force
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BENCH_MODEL_SCRIPT=make_zimage_random.py BENCH_MODEL_TAG=make-zimage-random-int8 exec bash "$HERE/make-sd15-random-int8.sh" "$@"
