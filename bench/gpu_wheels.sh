#!/usr/bin/env bash
# Downloads, here, the Python 3.12 wheels that bench/gpu_learning.sh installs on the lent GPU machine (which
# reaches no registry): bench/gpu-wheels.txt, no dependencies resolved (the list is the closure), into
# var/gpu-wheels (ignored by git; the device run carries it). Prints the folder's size: a run carries 64 MiB at most.
set -euo pipefail
cd "$(dirname "$0")/.."
PIP=${PIP:-.venv/bin/pip}
DEST=var/gpu-wheels
rm -rf "$DEST" && mkdir -p "$DEST"
"$PIP" download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp --abi cp312 \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform any -d "$DEST" -r bench/gpu-wheels.txt
echo "$(ls "$DEST" | wc -l) wheels, $(du -sm "$DEST" | cut -f1) MB in $DEST"
