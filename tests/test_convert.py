"""WIDER FACE conversion: annotation parsing, filtering with reasons, labels, data.yaml, image headers."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceyolo.cli import main
from faceyolo.data.config import image_files, load_data_config
from faceyolo.data.convert import ConvertOptions, convert_widerface
from faceyolo.data.imageinfo import check_image, image_size
from faceyolo.data.widerface import read_annotations
from faceyolo.errors import FaceyoloError


def _write_image(path: Path, width: int, height: int, ext: str = ".jpg") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path.with_suffix(ext)), image)
    return path.with_suffix(ext)


def _label_rows(path: Path) -> np.ndarray:
    return np.loadtxt(path, ndmin=2).reshape(-1, 15)


def _independent_wider_counts(annotation: Path, images: Path, min_size: float):
    """Count skipped images and dropped faces straight from the bbx_gt file (PIL for sizes)."""
    from PIL import Image

    lines = annotation.read_text().splitlines()
    skipped, dropped, kept_images, kept_faces = Counter(), Counter(), 0, 0
    k = 0
    while k < len(lines):
        name, count = lines[k].strip(), int(lines[k + 1])
        faces = [list(map(int, s.split())) for s in lines[k + 2 : k + 2 + count]]
        k += 2 + max(count, 1)
        if not (images / name).is_file():
            skipped["missing image file"] += 1
            dropped["image skipped"] += count
            continue
        width, height = Image.open(images / name).size
        reasons = []
        for x, y, w, h, *_, invalid, _occlusion, _pose in faces:
            cw, ch = min(x + w, width) - max(x, 0), min(y + h, height) - max(y, 0)
            if w <= 0 or h <= 0:
                reasons.append("zero/negative size")
            elif invalid:
                reasons.append("invalid flag")
            elif cw <= 0 or ch <= 0:
                reasons.append("box outside the image")
            elif cw < min_size or ch < min_size:
                reasons.append("too small")
            else:
                reasons.append("")
        if faces and all(reasons):
            skipped["no faces left after filtering"] += 1
        else:
            kept_images += 1
            kept_faces += reasons.count("")
        dropped.update(r for r in reasons if r)
    return skipped, dropped, kept_images, kept_faces


@pytest.fixture(params=["synthetic", "shared"])
def wider_annotation(request, synthetic_wider, tmp_path) -> tuple[Path, Path]:
    """Return (bbx_gt file, images folder): the synthetic tree with one face of each bad kind and a missing
    image added, then the real val annotations over the shared train pool (most of its images absent)."""
    if request.param == "shared":
        wider = request.getfixturevalue("shared") / "data" / "widerface"
        return wider / "wider_face_split" / "wider_face_val_bbx_gt.txt", wider / "train_pool" / "images"
    lines = synthetic_wider.bbx_gt.read_text().splitlines()
    extra = ["5 5 0 8 0 0 0 0 0 0", "2000 10 20 20 0 0 0 0 0 0", "1 1 6 6 0 0 0 0 0 0"]
    lines[1:2] = [str(int(lines[1]) + len(extra)), *extra]
    lines += ["0--Parade/0_Parade_Parade_0_absent.jpg", "1", "10 10 30 30 0 0 0 0 0 0"]
    annotation = tmp_path / "wider_face_val_bbx_gt.txt"  # "val" in the name: the val split
    annotation.write_text("\n".join(lines) + "\n")
    return annotation, synthetic_wider.images


def test_wider_bbx_gt_counts_per_reason_match_the_annotation_file(wider_annotation, tmp_path):
    pytest.importorskip("PIL")
    annotation, images = wider_annotation
    options = ConvertOptions(min_size=10)
    report = convert_widerface(images, annotation, tmp_path / "out", options, progress=False)

    skipped, dropped, kept_images, kept_faces = _independent_wider_counts(annotation, images, min_size=10)
    assert +report.skipped_images == skipped
    assert +report.dropped_faces == dropped
    assert report.images_written == kept_images
    assert report.faces_kept == kept_faces
    assert report.faces_kept + sum(report.dropped_faces.values()) == report.faces_total
    assert skipped["missing image file"] > 0
    assert len(set(dropped) - {"image skipped"}) >= 2  # the reasons are exercised

    labels = sorted((tmp_path / "out" / "labels" / "val").rglob("*.txt"))
    assert len(labels) == kept_images
    assert sum(len(_label_rows(p)) for p in labels) == kept_faces
    saved = json.loads((tmp_path / "out" / "convert_val_report.json").read_text())
    assert saved["dropped_faces"] == dict(report.dropped_faces)
    assert len(saved["skipped"]) == sum(skipped.values())


def test_converted_images_are_the_original_bytes(synthetic_wider, tmp_path):
    first = synthetic_wider.image_list[0] + ".jpg"
    annotation = tmp_path / "one.txt"
    annotation.write_text(f"{first}\n1\n10 10 20 20 0 0 0 0 0 0\n")
    report = convert_widerface(synthetic_wider.images, annotation, tmp_path / "out", progress=False)
    out_image = tmp_path / "out" / "images" / "train" / first
    assert report.images_written == 1
    assert out_image.read_bytes() == (synthetic_wider.images / first).read_bytes()


def test_retinaface_val_and_bbx_gt_give_the_same_labels(synthetic_wider, tmp_path):
    keep_all = ConvertOptions(drop_invalid=False, keep_empty=True, split="val")
    a = convert_widerface(synthetic_wider.images, synthetic_wider.bbx_gt, tmp_path / "a", keep_all,
                          progress=False)
    b = convert_widerface(synthetic_wider.images, synthetic_wider.root / "retinaface" / "val" / "label.txt",
                          tmp_path / "b", keep_all, progress=False)
    assert a.form == "bbx_gt" and b.form == "retinaface"
    assert a.images_written == b.images_written == len(synthetic_wider.faces)
    labels = sorted((tmp_path / "a" / "labels").rglob("*.txt"))
    assert len(labels) == len(synthetic_wider.faces)
    for label in labels:
        twin = tmp_path / "b" / label.relative_to(tmp_path / "a")
        assert label.read_text() == twin.read_text()


def test_retinaface_train_labels_keep_landmarks_and_drop_degenerate_faces(tmp_path):
    images = tmp_path / "images"
    _write_image(images / "0--A" / "a.jpg", 200, 100)
    label_txt = tmp_path / "train" / "label.txt"
    label_txt.parent.mkdir()
    label_txt.write_text(
        "# 0--A/a.jpg\n"
        "20 10 40 50 30.0 25.0 0.0 50.0 25.0 0.0 40.0 35.0 0.0 32.0 45.0 0.0 48.0 45.0 0.0 0.9\n"
        "100 20 30 30 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1\n"
        "60 60 0 10 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1\n"
        "70 70 10 -5 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1\n"
        "300 10 20 20 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1\n"
        "180 80 40 40 190.0 90.0 1.0 210.0 90.0 1.0 200.0 95.0 1.0 192.0 99.0 1.0 205.0 99.0 1.0 0.5\n"
        "1 2 three 4\n"
        "# 0--A/missing.jpg\n"
        "1 1 5 5\n"
    )
    report = convert_widerface(images, label_txt, tmp_path / "out", progress=False)
    assert report.form == "retinaface" and report.split == "train"
    assert report.skipped_images == Counter({"missing image file": 1})
    assert +report.dropped_faces == Counter(
        {
            "zero/negative size": 2,
            "box outside the image": 1,
            "malformed annotation line": 1,
            "image skipped": 1,
        }
    )
    assert report.changed_faces["box clipped to the image"] == 1
    assert report.changed_faces["landmark outside the image (set missing)"] == 2

    rows = _label_rows(tmp_path / "out" / "labels" / "train" / "0--A" / "a.txt")
    assert rows.shape == (3, 15)
    expected_first = [
        0,
        40 / 200,
        35 / 100,
        40 / 200,
        50 / 100,
        30 / 200,
        25 / 100,
        50 / 200,
        25 / 100,
        40 / 200,
        35 / 100,
        32 / 200,
        45 / 100,
        48 / 200,
        45 / 100,
    ]
    np.testing.assert_allclose(rows[0], expected_first, atol=1e-6)
    np.testing.assert_array_equal(rows[1, 5:], -1)
    # the last face is clipped at the corner (180..200, 80..100); its right-hand landmarks leave the image
    np.testing.assert_allclose(rows[2, 1:5], [190 / 200, 90 / 100, 20 / 200, 20 / 100], atol=1e-6)
    np.testing.assert_allclose(rows[2, 5:7], [190 / 200, 90 / 100], atol=1e-6)
    np.testing.assert_array_equal(rows[2, 7:9], -1)
    np.testing.assert_allclose(rows[2, 9:13], [200 / 200, 95 / 100, 192 / 200, 99 / 100], atol=1e-6)
    np.testing.assert_array_equal(rows[2, 13:15], -1)


def test_bbx_gt_image_without_faces_skips_its_dummy_line(tmp_path):
    annotation = tmp_path / "wider_face_train_bbx_gt.txt"
    annotation.write_text(
        "0--A/a.jpg\n0\n0 0 0 0 0 0 0 0 0 0\n0--A/b.jpg\n2\n1 2 3 4 0 0 0 0 0 0\n5 6 7 8 2 1 1 1 2 1\n"
    )
    form, records = read_annotations(annotation)
    assert form == "bbx_gt"
    assert [r.path for r in records] == ["0--A/a.jpg", "0--A/b.jpg"]
    assert [r.num_faces for r in records] == [0, 2]
    np.testing.assert_array_equal(records[1].boxes_xywh, [[1, 2, 3, 4], [5, 6, 7, 8]])
    np.testing.assert_array_equal(records[1].invalid, [False, True])
    np.testing.assert_array_equal(records[1].lines, [6, 7])


def test_broken_bbx_gt_structure_names_file_and_line(tmp_path):
    annotation = tmp_path / "wider_face_val_bbx_gt.txt"  # "val" in the name: the val split
    annotation.write_text("0--A/a.jpg\n1\n1 2 3 4 0 0 0 0 0 0\n0--A/b.jpg\nmany\n")
    with pytest.raises(FaceyoloError, match=r"bbx_gt.txt:5: expected the face count"):
        read_annotations(annotation)


def test_unreadable_image_is_skipped_by_reason_and_the_rest_converts(tmp_path):
    images = tmp_path / "images"
    _write_image(images / "e" / "good.jpg", 64, 48)
    (images / "e" / "bad.jpg").write_bytes(b"not a jpeg at all")
    good = _write_image(images / "e" / "cut.jpg", 64, 48)
    (images / "e" / "cut.jpg").write_bytes(good.read_bytes()[:-200])
    annotation = tmp_path / "val_bbx_gt.txt"
    annotation.write_text("".join(f"e/{n}.jpg\n1\n5 5 20 20 0 0 0 0 0 0\n" for n in ("good", "bad", "cut")))
    report = convert_widerface(images, annotation, tmp_path / "out", progress=False)
    assert report.images_written == 1
    assert report.skipped_images == Counter({"unreadable image": 1, "truncated JPEG": 1})
    text = (tmp_path / "out" / "convert_val_report.txt").read_text()
    assert "unreadable image" in text and "truncated JPEG" in text


def test_test_split_without_annotations_becomes_an_image_list(tmp_path):
    images = tmp_path / "WIDER_test" / "images"
    for name in ("1--B/x.jpg", "0--A/y.jpg", "0--A/z.png"):
        _write_image(images / name, 32, 32, Path(name).suffix)
    report = convert_widerface(images, None, tmp_path / "out", progress=False)
    assert report.split == "test" and report.images_written == 3
    listed = (tmp_path / "out" / "test.txt").read_text().split()
    assert listed == ["./images/test/0--A/y.jpg", "./images/test/0--A/z.png", "./images/test/1--B/x.jpg"]
    assert not (tmp_path / "out" / "labels").exists()
    data_yaml = (tmp_path / "out" / "data.yaml").read_text()
    assert "test: test.txt" in data_yaml and "train:" not in data_yaml


def test_data_yaml_of_train_and_val_loads_with_all_images(tmp_path):
    images = tmp_path / "src"
    _write_image(images / "e" / "a.jpg", 40, 30)
    _write_image(images / "e" / "b.jpg", 40, 30)
    for split, name in (("train", "a"), ("val", "b")):
        annotation = tmp_path / f"wider_face_{split}_bbx_gt.txt"
        annotation.write_text(f"e/{name}.jpg\n1\n5 5 20 20 0 0 0 0 0 0\n")
        convert_widerface(images, annotation, tmp_path / "out", progress=False)
    config = load_data_config(tmp_path / "out" / "data.yaml")
    assert [p.name for p in image_files(config.train)] == ["a.jpg"]
    assert [p.name for p in image_files(config.val)] == ["b.jpg"]
    assert config.nc == 1 and config.names == ["face"]


def test_cli_convert_prints_the_reason_table(tmp_path, capsys):
    images = tmp_path / "images"
    _write_image(images / "e" / "a.jpg", 40, 30)
    annotation = tmp_path / "wider_face_val_bbx_gt.txt"
    annotation.write_text(
        "e/a.jpg\n2\n5 5 20 20 0 0 0 0 0 0\n5 5 2 2 0 0 0 0 0 0\ne/gone.jpg\n0\n0 0 0 0 0 0 0 0 0 0\n"
    )
    argv = [
        "convert",
        "widerface",
        "--images",
        str(images),
        "--annotations",
        str(annotation),
        "--out",
        str(tmp_path / "out"),
        "--min-size",
        "3",
        "--no-progress",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "skipped: missing image file" in out and "dropped: too small" in out


def test_missing_images_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FaceyoloError, match="images folder not found"):
        convert_widerface(tmp_path / "nowhere", None, tmp_path / "out", progress=False)


def test_image_size_from_headers_matches_decoded_size(tmp_path):
    for ext in (".jpg", ".png", ".bmp", ".tif"):
        path = _write_image(tmp_path / f"im{ext}", 37, 23, ext)
        decoded = cv2.imread(str(path))
        assert image_size(path) == (decoded.shape[1], decoded.shape[0]) == (37, 23), ext


def test_image_size_applies_exif_rotation_like_imread(tmp_path):
    image_module = pytest.importorskip("PIL.Image")
    exif = image_module.Exif()
    exif[0x0112] = 6  # rotate 90°: cv2.imread swaps width and height
    path = tmp_path / "rotated.jpg"
    image_module.fromarray(np.zeros((20, 50, 3), np.uint8)).save(path, exif=exif)
    decoded = cv2.imread(str(path))
    assert image_size(path) == (decoded.shape[1], decoded.shape[0]) == (20, 50)


def test_check_image_names_empty_and_tiny_files(tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    tiny = _write_image(tmp_path / "tiny.png", 9, 30, ".png")
    assert check_image(empty).problem == "unreadable image" and str(empty) in check_image(empty).detail
    assert check_image(tiny).problem == "image smaller than 10 px"
    assert check_image(tmp_path / "none.jpg").problem == "missing image file"


def _yolo_dataset(root: Path) -> Path:
    """A 4-image YOLO box dataset: a face + a non-face class, a pose line, an empty file, no label file."""
    images, labels = root / "train" / "images", root / "train" / "labels"
    labels.mkdir(parents=True)
    _write_image(images / "a", 200, 100)
    _write_image(images / "b", 100, 100, ".png")
    _write_image(images / "c", 50, 50)
    _write_image(images / "nolabel", 50, 50)
    (labels / "a.txt").write_text("0 0.5 0.5 0.2 0.4\n1 0.1 0.1 0.1 0.1\n0 0.5 0.5 0 0.1\nbad line\n")
    pose = " ".join(["0 0.5 0.5 0.4 0.4"] + ["0.4 0.45 2"] * 4 + ["0.9 0.9 0"])
    (labels / "b.txt").write_text(pose + "\n")
    (labels / "c.txt").write_text("")
    (labels / "ghost.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    return images


def test_convert_yolo_reports_every_reason_and_scales_to_pixels(tmp_path: Path) -> None:
    from faceyolo.data.yolo import convert_yolo

    images = _yolo_dataset(tmp_path / "in")
    report = convert_yolo(images, tmp_path / "out", ConvertOptions(link="copy"), progress=False)
    assert report.skipped_images == Counter({"no label file": 1, "missing image file": 1})
    assert report.dropped_faces["class is not a face class"] == 1
    assert report.dropped_faces["zero/negative size"] == 1
    assert report.dropped_faces["malformed annotation line"] == 1
    assert report.images_written == 3 and report.faces_kept == 2
    a = _label_rows(tmp_path / "out" / "labels" / "train" / "a.txt")
    np.testing.assert_allclose(a[0, :5], [0, 0.5, 0.5, 0.2, 0.4], atol=1e-5)
    assert (a[0, 5:] == -1).all()
    b = _label_rows(tmp_path / "out" / "labels" / "train" / "b.txt")
    np.testing.assert_allclose(b[0, 5:13], [0.4, 0.45] * 4, atol=1e-5)
    assert (b[0, 13:] == -1).all()  # visibility 0 → missing
    assert (tmp_path / "out" / "labels" / "train" / "c.txt").read_text() == ""
    assert (tmp_path / "out" / "images" / "train" / "b.png").is_file()


def test_convert_yolo_cli_keeps_unlabelled_images_on_request(tmp_path: Path, capsys) -> None:
    images = _yolo_dataset(tmp_path / "in")
    args = ["convert", "yolo", "--images", str(images), "--out", str(tmp_path / "out"), "--keep-unlabelled"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "convert yolo" in out and "no label file" not in out
    assert (tmp_path / "out" / "labels" / "train" / "nolabel.txt").read_text() == ""
