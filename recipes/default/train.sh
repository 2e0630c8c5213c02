#!/usr/bin/env bash
# Fine-tune the shipped default (or START) on the rebuilt training set (build_data.sh), in the background, resumable.
# Usage: recipes/default/train.sh [DATA=~/datasets/wider.yaml] [EPOCHS=6] [RUNS=~/train/runs] [START=the default]
#        .venv/bin/faceyolo train --resume RUNS/<name>      continues a stopped run where it stopped
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
data="${1:-$HOME/datasets/wider.yaml}"
epochs="${2:-6}"
runs="${3:-$HOME/train/runs}"
start="${4:-$repo/src/faceyolo/assets/default.safetensors}"
exec nice -n 5 "$repo/.venv/bin/faceyolo" train --data "$data" \
    --model "$start" --noautoanchor --min-warmup-iters 0 \
    --hyp "$here/hyp.yaml" --epochs "$epochs" --img-size 640 --batch-size 32 --cache ram \
    --workers 2 --device cpu --project "$runs" --name ft640
