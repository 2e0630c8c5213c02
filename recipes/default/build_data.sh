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
# wider_events.yaml: the images of all 61 events (pool + val-extra); wider.yaml adds the 998 crowd images
# of wider-train-999 (3 events, 36,683 faces: 60 % of all faces, most under 16 px).
find "$out/pool/images/train" -name '*.jpg' | sort | cat - "$out/valextra_train.txt" > "$out/wider_events.txt"
find "$out/train999/images/train" -name '*.jpg' | sort | cat "$out/wider_events.txt" - > "$out/wider_train.txt"
data_yaml() {  # data_yaml LIST YAML
    printf 'train: %s\nval: %s\nnc: 1\nnames: [face]\n' "$1" "$out/holdout.txt" > "$2"
}
data_yaml "$out/wider_events.txt" "$out/wider_events.yaml"
data_yaml "$out/wider_train.txt" "$out/wider.yaml"
echo "$(wc -l < "$out/wider_events.txt") images of all events ($out/wider_events.yaml)," \
    "$(wc -l < "$out/wider_train.txt") with the crowds ($out/wider.yaml); holdout: $out/holdout_wider"
