#!/usr/bin/env bash
# Fine-tune the shipped default (or START) on the rebuilt training set (build_data.sh), in the background, resumable.
# Usage: recipes/default/train.sh [DATA=~/datasets/wider_events.yaml] [EPOCHS=8] [RUNS=~/train/runs]
#            [START=the default] [HYP=recipes/default/hyp.yaml] [IMG=640]
#        .venv/bin/faceyolo train --resume RUNS/<name>      continues a stopped run where it stopped
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
data="${1:-$HOME/datasets/wider_events.yaml}"
epochs="${2:-8}"
runs="${3:-$HOME/train/runs}"
start="${4:-$repo/src/faceyolo/assets/default.safetensors}"
hyp="${5:-$here/hyp.yaml}"
img="${6:-640}"
exec nice -n 5 "$repo/.venv/bin/faceyolo" train --data "$data" \
    --model "$start" --noautoanchor --min-warmup-iters 0 \
    --hyp "$hyp" --epochs "$epochs" --img-size "$img" --batch-size 32 --cache ram \
    --workers 2 --device cpu --project "$runs" --name "ft$img"
