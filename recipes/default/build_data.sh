#!/usr/bin/env bash
# Rebuild the default model's training set on a fresh machine (see README, "The default model").
# Needs: `make install`, and the two WIDER snapshots extracted by ../shared/data/extra/get.sh into EXTRA.
# Usage: recipes/default/build_data.sh [EXTRA=~/extra] [OUT=~/datasets]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
shared="${FACEYOLO_SHARED:-$repo/../shared}"
extra="${1:-$HOME/extra}"
out="${2:-$HOME/datasets}"
faceyolo="$repo/.venv/bin/faceyolo"
gt="$shared/data/widerface/wider_face_split/wider_face_val_bbx_gt.txt"

"$faceyolo" convert widerface --images "$shared/data/widerface/train_pool/images" --annotations "$gt" \
    --out "$out/pool" --split train --no-progress
"$faceyolo" convert widerface --images "$extra/wider-val-extra/WIDER_val/images" --annotations "$gt" \
    --out "$out/valextra" --split train --no-progress
"$faceyolo" convert yolo --images "$extra/wider-train-999/datasets/widerface/images/train" \
    --out "$out/train999" --split train --no-progress
for part in pool valextra train999; do
    "$faceyolo" annotate --data "$out/$part/labels/train" --teacher retinaface 2> /dev/null
done
"$repo/.venv/bin/python" "$here/split_holdout.py" --images "$out/valextra/images/train" \
    --out "$out"
find "$out/pool/images/train" "$out/train999/images/train" -name '*.jpg' | sort > "$out/wider_train.txt"
cat "$out/valextra_train.txt" >> "$out/wider_train.txt"
cat > "$out/wider.yaml" <<YAML
train: $out/wider_train.txt
val: $out/holdout.txt
nc: 1
names: [face]
YAML
echo "$(wc -l < "$out/wider_train.txt") training images; data: $out/wider.yaml; holdout: $out/holdout_wider"
