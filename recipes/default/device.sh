#!/usr/bin/env bash
# Train the default model on a lent GPU machine (the device tool) from the packs pack_device.py wrote.
# One call carries 64 MiB, so the data goes in two calls, back to back (a warm machine keeps pack0):
#   run(carry=[".devdata/pack0", ".devdata/val"], command="recipes/default/device.sh probe")
#   run(carry=[".devdata/pack1", ".devdata/val"], command="recipes/default/device.sh train 420")
# probe: shows the GPU, times two epochs on the packs that arrived, keeps the pace in .devdata/pace.
# train SECONDS: from the shipped default (START), as many epochs of HYP as fit SECONDS at that pace
#   (probing first when no pace is kept), then copies best/last weights, results and log to $OUT.
# Env: START, HYP, DEVICE (0), BATCH (64), WORKERS (cores - 2), IMG (640), MAX_BATCHES (a CPU dry run).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
mode="${1:?usage: device.sh probe | train SECONDS}"
budget="${2:-420}"
out="${OUT:-runs/device}"
mkdir -p "$out"
find "$PWD/.devdata" -path '*/images/train/*.jpg' | sort > .devdata/train.txt
images=$(wc -l < .devdata/train.txt)
printf 'train: train.txt\nval: val/images/val\nnc: 1\nnames: [face]\n' > .devdata/data.yaml
echo "$images train images in $(ls -d .devdata/pack* | tr '\n' ' ')"

train() {  # train EPOCHS NAME [LIMIT_S]: one run into .devdata/runs/NAME, its log beside it
    local started=$SECONDS
    timeout "${3:-600}" python3 -m faceyolo train --data .devdata/data.yaml \
        --model "${START:-src/faceyolo/assets/default.safetensors}" \
        --hyp "${HYP:-recipes/default/hyp_device.yaml}" --epochs "$1" --img-size "${IMG:-640}" \
        --batch-size "${BATCH:-64}" --workers "${WORKERS:-$(( $(nproc) - 2 ))}" --device "${DEVICE:-0}" \
        --cache ram --noautoanchor --min-warmup-iters 0 ${MAX_BATCHES:+--max-batches "$MAX_BATCHES"} \
        --project .devdata/runs --name "$2" > ".devdata/$2.log" 2>&1 \
        || { tail -30 ".devdata/$2.log"; return 1; }
    echo "$2: $1 epochs in $(( SECONDS - started )) s"
}

probe() {  # time two epochs; keep seconds per epoch-image and the fixed start-up cost
    local started=$SECONDS
    python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(),
          torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
    rm -rf .devdata/runs/probe
    train 2 probe
    python3 - "$images" "$(( SECONDS - started ))" <<'PY' > .devdata/pace
import csv, sys
rows = list(csv.DictReader(open(".devdata/runs/probe/results.csv")))
epoch_s = float(rows[-1]["time/epoch_s"])
overhead = max(float(sys.argv[2]) - sum(float(r["time/epoch_s"]) for r in rows), 0.0)
print(epoch_s / int(sys.argv[1]), overhead)
PY
    echo "pace: $(cut -d' ' -f1 .devdata/pace) s per epoch-image, start-up $(cut -d' ' -f2 .devdata/pace) s"
}

finish() {  # whatever the run left, even when stopped at the call's limit
    local run=.devdata/runs/device
    for f in "$run/weights/best.safetensors" "$run/weights/last.safetensors" "$run/results.csv" \
             "$run/results.png" .devdata/device.log; do
        [ -f "$f" ] && cp "$f" "$out/"
    done
    return 0
}

case "$mode" in
    probe) probe ;;
    train)
        [ -s .devdata/pace ] || probe
        read -r pace overhead < .devdata/pace
        epochs=$(python3 -c "print(max(1, int(($budget - $overhead) / ($pace * $images))))")
        trap finish EXIT
        rm -rf .devdata/runs/device
        train "$epochs" device $(( budget + 60 ))  # stopped past its budget, last epoch's weights stay
        tail -3 .devdata/runs/device/results.csv | cut -c1-200 ;;
    *) echo "unknown mode $mode: probe or train SECONDS" >&2; exit 2 ;;
esac
