"""`faceyolo eval widerface` and `faceyolo val` end to end."""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from pathlib import Path

import cv2
import pytest

from faceyolo.cli import main
from faceyolo.eval.widerface import SETTINGS, load_ground_truth
from faceyolo.inference.detector import resolve_weights


@pytest.fixture(scope="module")
def gt_dir(shared: Path) -> Path:
    return shared / "data" / "widerface" / "ground_truth"


@pytest.fixture(scope="module")
def val_images(synthetic_wider) -> int:
    """Return how many images the synthetic val ground truth lists."""
    return len(synthetic_wider.faces)


@pytest.fixture(scope="module")
def sample_predictions(shared: Path, tmp_path_factory) -> Path:
    """Return the original pipeline's 305 val-sample prediction files, extracted once."""
    dest = tmp_path_factory.mktemp("val_sample")
    with tarfile.open(shared / "reference" / "yolov5n-0.5" / "val_sample_predictions.tar.xz") as tar:
        tar.extractall(dest, filter="data")
    return dest / "val_sample_predictions"


def _copy_events(source: Path, events: list[str], dest: Path) -> Path:
    for event in events:
        shutil.copytree(source / event, dest / event)
    return dest


@pytest.mark.slow
def test_official_weights_on_val_sample_reproduce_reference_aps(
    shared, official_pt, gt_dir, sample_predictions, tmp_path, capsys
):
    reference = json.loads((shared / "reference" / "yolov5n-0.5" / "val_sample_APs.json").read_text())
    images = shared / "data" / "widerface" / "val_sample" / "images"
    out = tmp_path / "aps.json"
    rc = main(["eval", "widerface", "--weights", str(official_pt), "--images", str(images), "--gt-dir",
               str(gt_dir), "--json", str(out), "--project", str(tmp_path), "--quiet"])
    assert rc == 0
    aps = json.loads(out.read_text())
    assert aps["images"] == 305
    for setting in SETTINGS:
        assert aps[setting] == pytest.approx(reference[setting], abs=1e-3)
    ours = tmp_path / "widerface" / "predictions"
    originals = sorted(sample_predictions.rglob("*.txt"))
    same = sum((ours / p.relative_to(sample_predictions)).read_bytes() == p.read_bytes() for p in originals)
    assert same >= 0.9 * len(originals)  # 300 of 305 here: a few scores differ in the 3rd decimal
    assert "scored 305 of 3226" in capsys.readouterr().out


def test_prediction_folder_subset_is_scored_and_saved(
    synthetic_wider, synthetic_predictions, val_images, tmp_path, capsys
):
    folder = _copy_events(synthetic_predictions, ["0--Parade", "12--Group"], tmp_path / "preds")
    scored = len(list(folder.rglob("*.txt")))
    out = tmp_path / "aps.json"
    args = ["eval", "widerface", "--predictions", str(folder), "--gt-dir", str(synthetic_wider.gt_dir),
            "--project", str(tmp_path / "runs"), "--json", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert f"scored {scored} of {val_images}" in printed
    assert f"{val_images - scored} val images without a prediction file" in printed
    aps = json.loads(out.read_text())
    assert set(aps) == {"easy", "medium", "hard", "images"} and aps["images"] == scored
    assert all(0 < aps[s] <= 1 for s in SETTINGS)
    run = tmp_path / "runs" / "widerface"
    assert (run / "pr_curves.png").read_bytes().startswith(b"\x89PNG")
    assert sorted((run / "missing.txt").read_text().split()) == sorted(
        item for item in synthetic_wider.image_list if item.split("/")[0] == "7--Cheering")
    assert main(args) == 0 and (tmp_path / "runs" / "widerface2" / "results.json").is_file()


def test_malformed_prediction_file_is_named_and_the_rest_scored(
    synthetic_wider, synthetic_predictions, val_images, tmp_path, capsys
):
    folder = _copy_events(synthetic_predictions, ["0--Parade"], tmp_path / "preds")
    files = sorted((folder / "0--Parade").glob("*.txt"))
    files[0].write_text(files[0].read_text().replace("\n", "\nnot a count\n", 1))
    rc = main(["eval", "widerface", "--predictions", str(folder), "--gt-dir", str(synthetic_wider.gt_dir),
               "--project", str(tmp_path)])
    printed = capsys.readouterr().out
    assert rc == 0
    assert "1 malformed prediction files" in printed and str(files[0]) in printed
    assert f"scored {len(files) - 1} of {val_images}" in printed


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--predictions", "p", "--weights", "w.pt"], "not both"),
        (["--weights", "w.pt"], "--weights needs --images"),
        ([], "the default model needs --images"),
    ],
)
def test_eval_widerface_usage_errors_exit_2(synthetic_wider, tmp_path, capsys, extra, message):
    gt_dir = str(synthetic_wider.gt_dir)
    rc = main(["eval", "widerface", "--gt-dir", gt_dir, "--project", str(tmp_path), *extra])
    assert rc == 2 and message in capsys.readouterr().err


def test_without_weights_or_predictions_the_default_model_is_scored(synthetic_wider, tmp_path, capsys):
    images, faces = synthetic_wider.images, synthetic_wider.faces
    common = ["eval", "widerface", "--images", str(images), "--gt-dir", str(synthetic_wider.gt_dir),
              "--img-size", "128", "--device", "cpu", "--project", str(tmp_path / "runs"), "--quiet"]
    assert main(common) == 0
    assert f"scored {len(faces)} of {len(faces)}" in capsys.readouterr().out
    assert main([*common, "--weights", str(resolve_weights(None))]) == 0
    default, named = tmp_path / "runs" / "widerface", tmp_path / "runs" / "widerface2"
    assert json.loads((default / "results.json").read_text())["detection"]["weights"] == "default"
    files = sorted(p.relative_to(default) for p in (default / "predictions").rglob("*.txt"))
    assert len(files) == len(faces)
    assert all((default / f).read_bytes() == (named / f).read_bytes() for f in files)


def test_missing_ground_truth_is_reported(tmp_path, capsys):
    rc = main(["eval", "widerface", "--predictions", str(tmp_path), "--gt-dir", str(tmp_path / "nope")])
    assert rc == 2 and "wider_face_val.mat: ground-truth file not found" in capsys.readouterr().err


def _few_face_dataset(images: Path, gt_dir: Path, root: Path, count: int = 3) -> Path:
    """Return a data yaml over `count` val images (images/<event>/<name>.jpg) with 1–4 faces; labels from
    the .mat."""
    gt = load_ground_truth(gt_dir)
    faces_of = dict(zip(gt.keys, gt.boxes_xywh, strict=True))
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    chosen = 0
    for rel in sorted(str(p.relative_to(images)) for p in images.rglob("*.jpg")):
        event, name = rel.split("/")
        faces = faces_of[(event, Path(name).stem)]
        if not 1 <= len(faces) <= 4:
            continue
        source = images / rel
        os.symlink(source, root / "images" / name)
        h, w = cv2.imread(str(source)).shape[:2]
        lines = [f"0 {(x + bw / 2) / w} {(y + bh / 2) / h} {bw / w} {bh / h}" + " -1" * 10
                 for x, y, bw, bh in faces]
        (root / "labels" / f"{Path(name).stem}.txt").write_text("\n".join(lines) + "\n")
        chosen += 1
        if chosen == count:
            break
    (root / "data.yaml").write_text("train: images\nval: images\nnc: 1\nnames: [face]\n")
    return root / "data.yaml"


def test_val_scores_official_format_weights_on_a_tiny_dataset(
    synthetic_wider, official_style_pt, tmp_path, capsys
):
    data = _few_face_dataset(synthetic_wider.images, synthetic_wider.gt_dir, tmp_path / "data")
    rc = main(["val", "--weights", str(official_style_pt), "--data", str(data), "--img-size", "320",
               "--batch-size", "2", "--plots", "--project", str(tmp_path / "runs"), "--quiet"])
    assert rc == 0
    assert "3 images" in capsys.readouterr().out
    run = tmp_path / "runs" / "exp"
    results = json.loads((run / "results.json").read_text())
    assert 0.3 < results["metrics/mAP50"] <= 1 and 0 < results["metrics/mAP50-95"] < results["metrics/mAP50"]
    assert (run / "PR_curve.png").is_file() and (run / "F1_curve.png").is_file()


def test_missing_files_of_a_nearly_complete_folder_are_named(
    synthetic_wider, synthetic_predictions, val_images, tmp_path, capsys
):
    preds = shutil.copytree(synthetic_predictions, tmp_path / "preds")
    gone = sorted((preds / "7--Cheering").glob("*.txt"))[:2]
    for path in gone:
        path.unlink()
    assert main(["eval", "widerface", "--predictions", str(preds), "--gt-dir", str(synthetic_wider.gt_dir),
                 "--project", str(tmp_path / "runs")]) == 0
    printed = capsys.readouterr().out
    assert f"scored {val_images - 2} of {val_images}" in printed
    assert "2 val images without a prediction file:" in printed
    assert all(f"7--Cheering/{path.stem}" in printed for path in gone)
