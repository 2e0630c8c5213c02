"""recipes/default: the WIDER holdout split (split_holdout.py), the Caltech split and grids (caltech.py), the
device packs (pack_device.py)."""

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

SCRIPT = Path(__file__).resolve().parents[1] / "recipes" / "default" / "split_holdout.py"


def test_holdout_is_disjoint_capped_per_event_and_linked_for_wider_eval(tmp_path):
    images = tmp_path / "images" / "train"
    sizes = {"0--Parade": 9, "1--Handshaking": 4, "2--Demonstration": 1}
    for event, count in sizes.items():
        (images / event).mkdir(parents=True)
        for k in range(count):
            (images / event / f"{event.split('--')[0]}_{k}.jpg").write_bytes(b"jpg")
    out = tmp_path / "lists"
    run = [sys.executable, str(SCRIPT), "--images", str(images), "--out", str(out)]
    subprocess.run(run, check=True, capture_output=True)
    train = set((out / "valextra_train.txt").read_text().split())
    holdout = (out / "holdout.txt").read_text().split()
    assert not train & set(holdout) and len(train) + len(holdout) == sum(sizes.values())
    per_event = {event: sum(Path(p).parent.name == event for p in holdout) for event in sizes}
    assert 2 <= per_event["0--Parade"] <= 3 and per_event["1--Handshaking"] == 2
    assert per_event["2--Demonstration"] == 0  # an event with one image keeps it for training
    linked = sorted(str(p.resolve()) for p in (out / "holdout_wider").glob("*/*.jpg"))
    assert linked == sorted(str(Path(p).resolve()) for p in holdout)
    subprocess.run(run, check=True, capture_output=True)  # seeded: the same split again
    assert (out / "holdout.txt").read_text().split() == holdout


CALTECH = SCRIPT.with_name("caltech.py")


def _caltech(tmp_path: Path, args: list[str]) -> None:
    subprocess.run([sys.executable, str(CALTECH), *args, "--out", str(tmp_path / "out")], check=True)


def test_caltech_grids_keep_covered_photos_and_map_each_face_into_its_quarter(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    marks = []
    for k in range(7):
        image = np.full((100, 200, 3), 30 * k, np.uint8)
        image[40:60, 90:110] = 255  # the face: box (90, 40)-(110, 60) of a 200 x 100 photo
        cv2.imwrite(str(photos / f"pic{k:05d}.jpg"), image)
        marks.append(f"pic{k:05d}.jpg 95 45 105 45 100 50 100 55\n")
    points = tmp_path / "points.txt"
    points.write_text("".join(marks) + "pic00006.jpg 10 10 20 10 15 15 15 18\n")  # a face no box covers
    _caltech(tmp_path, ["split", "--photos", str(photos), "--holdout", "1"])
    train = sorted((tmp_path / "out/caltech/images/train").glob("*.jpg"))
    held = list((tmp_path / "out/caltech_holdout/images/test").glob("*.jpg"))
    assert len(train) == 6 and len(held) == 1 and held[0].name not in {p.name for p in train}
    line = "0 0.5 0.5 0.1 0.2 0.475 0.45 0.525 0.45 0.5 0.5 0.48 0.55 0.52 0.55\n"
    for photo in train:
        label = tmp_path / "out/caltech/labels/train" / f"{photo.stem}.txt"
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text(line)
    _caltech(tmp_path, ["grids", "--points", str(points)])
    grids = (tmp_path / "out/caltech_grids.txt").read_text().split()
    covered = sum(p.name != "pic00006.jpg" for p in train)
    assert len(grids) == covered // 4
    rows = np.loadtxt(Path(grids[0].replace("/images/", "/labels/")).with_suffix(".txt"), ndmin=2)
    assert rows.shape == (4, 15)
    # each 200 x 100 photo fills its 320 x 320 quarter's width (x1.6), centred: the face at quarter (160, 160)
    centres = sorted(map(tuple, (rows[:, 1:3] * 640).round(1)))
    assert centres == [(160.0, 160.0), (160.0, 480.0), (480.0, 160.0), (480.0, 480.0)]
    np.testing.assert_allclose(rows[:, 3:5] * 640, [[32, 32]] * 4, atol=0.1)
    image = cv2.imread(grids[0])
    assert image.shape == (640, 640, 3) and image[160, 160].min() > 200 and image[10, 10].max() < 130


def test_device_packs_split_by_size_shrink_to_640_and_keep_labels(tmp_path):
    images = tmp_path / "data" / "images"
    labels = tmp_path / "data" / "labels"
    images.mkdir(parents=True)
    labels.mkdir()
    rng = np.random.default_rng(0)
    for k in range(5):  # noise does not compress: each copy is ~100 KB, so a 0.25 MiB pack holds two
        cv2.imwrite(str(images / f"img{k}.jpg"), rng.integers(0, 255, (600, 1280, 3), np.uint8))
        (labels / f"img{k}.txt").write_text(f"0 0.5 0.5 0.{k + 1} 0.1" + " -1" * 10 + "\n")
    (tmp_path / "train.txt").write_text("".join(f"{images}/img{k}.jpg\n" for k in range(4)))
    (tmp_path / "data.yaml").write_text(f"train: train.txt\nval: {images}/img4.jpg\nnc: 1\nnames: [face]\n")
    out = tmp_path / "packs"
    subprocess.run([sys.executable, str(SCRIPT.with_name("pack_device.py")), str(tmp_path / "data.yaml"),
                    "--out", str(out), "--pack-mib", "0.25"], check=True, capture_output=True)
    packs = sorted(p.name for p in out.glob("pack*"))
    train = sorted(out.glob("pack*/images/train/*.jpg"))
    assert len(packs) >= 2 and sorted(p.name for p in train) == [f"img{k}.jpg" for k in range(4)]
    assert all(sum(f.stat().st_size for f in (out / p).rglob("*.*")) <= 0.25 * 2**20 for p in packs)
    assert [p.name for p in (out / "val/images/val").iterdir()] == ["img4.jpg"]
    assert cv2.imread(str(train[0])).shape == (300, 640, 3)
    label = Path(str(train[2]).replace("/images/", "/labels/")).with_suffix(".txt")
    assert label.read_text() == (labels / "img2.txt").read_text()
