"""The dataset: label checks with reasons, the label cache, item layout, rect batches, caches, data yaml."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from faceyolo.cli import main
from faceyolo.data.config import image_files, load_data_config
from faceyolo.data.dataset import FaceDataset
from faceyolo.data.labels import index_labels, label_path, read_label_file
from faceyolo.errors import FaceyoloError

FACE = "0 0.5 0.5 0.4 0.5 0.4 0.4 0.6 0.4 0.5 0.5 0.42 0.6 0.58 0.6"


def write_tiny_dataset(root: Path, count: int = 6, split: str = "train") -> Path:
    """Return root/images/<split> after writing `count` small JPEGs (varied aspect) and their labels."""
    rng = np.random.default_rng(1)
    images = root / "images" / split
    images.mkdir(parents=True, exist_ok=True)
    (root / "labels" / split).mkdir(parents=True, exist_ok=True)
    for k in range(count):
        w, h = (96, 64) if k % 2 else (64, 80)
        image = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        cv2.imwrite(str(images / f"im{k}.jpg"), image)
        second = "0 0.25 0.3 0.2 0.2 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1"
        label_path(images / f"im{k}.jpg").write_text(f"{FACE}\n{second}\n" if k != 3 else "")
    return images


def test_label_path_uses_the_last_images_folder():
    assert label_path(Path("/d/images/x/images/train/a.jpg")) == Path("/d/images/x/labels/train/a.txt")
    assert label_path(Path("flat/a.png")) == Path("flat/a.txt")


def test_missing_landmarks_read_as_minus_one_and_duplicates_are_removed(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text(f"0 0.5 0.5 0.2 0.2 0 0.3 -0.00098 -0.0013 0.5 0.5 -1 -1 0.6 0.6\n{FACE}\n{FACE}\n")
    check = read_label_file(path)
    assert check.problem is None and check.duplicates == 1 and check.labels.shape == (2, 15)
    np.testing.assert_allclose(check.labels[0, 5:9], [-1, 0.3, -1, -1], atol=1e-7)
    np.testing.assert_allclose(check.labels[0, 9:11], [0.5, 0.5])


@pytest.mark.parametrize(
    "line, reason",
    [
        ("0 0.5 0.5 0.2", "malformed label line"),
        ("0 0.5 0.5 0.2 0.2 a b c d e f g h i j", "malformed label line"),
        ("1 0.5 0.5 0.2 0.2 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1", "class out of range"),
        ("0 1.5 0.5 0.2 0.2 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1", "label value out of range"),
        ("0 0.5 0.5 0.0 0.2 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1", "label value out of range"),
        ("0 0.5 0.5 0.2 0.2 -2 -1 -1 -1 -1 -1 -1 -1 -1 -1", "label value out of range"),
    ],
)
def test_bad_label_lines_give_their_reason_and_line_number(tmp_path, line, reason):
    path = tmp_path / "bad.txt"
    path.write_text(f"{FACE}\n{line}\n")
    check = read_label_file(path)
    assert check.problem == reason and check.detail.startswith(f"{path}:2:")


def test_corrupt_jpeg_and_malformed_label_line_are_reported_by_name_and_skipped(tmp_path, caplog):
    images = write_tiny_dataset(tmp_path)
    (images / "im1.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    label_path(images / "im2.jpg").write_text(f"{FACE}\n0 0.5 0.5\n")
    with caplog.at_level(logging.WARNING, logger="faceyolo.data.labels"):
        dataset = FaceDataset(images, img_size=64)
    assert len(dataset) == 4
    assert not any(name.endswith(("im1.jpg", "im2.jpg")) for name in dataset.image_files)
    reasons = {Path(p["image"]).name: p["reason"] for p in dataset.problems}
    assert reasons == {"im1.jpg": "unreadable image", "im2.jpg": "malformed label line"}
    assert "im1.jpg" in caplog.text and "im2.jpg" in caplog.text and "malformed label line" in caplog.text
    assert "2 left out" in dataset.summary


def test_label_cache_is_reused_and_rebuilt_when_a_label_changes(tmp_path):
    images = write_tiny_dataset(tmp_path)
    files = image_files(images)
    first = index_labels(files)
    assert not first.from_cache and first.cache_path == tmp_path / "labels" / "train.cache.npz"
    with np.load(first.cache_path, allow_pickle=False) as cached:  # plain arrays, no pickled objects
        assert cached["labels"].shape == (10, 15)
    assert index_labels(files).from_cache

    label = label_path(files[0])
    label.write_text(FACE + "\n")
    os.utime(label, ns=(1, 1))
    rebuilt = index_labels(files)
    assert not rebuilt.from_cache and len(rebuilt.labels[0]) == 1


def test_two_image_lists_under_one_folder_keep_a_label_cache_each(tmp_path):
    a = image_files(write_tiny_dataset(tmp_path / "a"))
    b = image_files(write_tiny_dataset(tmp_path / "b"))
    both = index_labels(a + b)
    part = index_labels(a[:3] + b[:3])
    assert both.cache_path.name.startswith(f"{tmp_path.name}.") and both.cache_path != part.cache_path
    assert index_labels(a + b).from_cache and index_labels(a[:3] + b[:3]).from_cache
    assert index_labels(a).cache_path == tmp_path / "a" / "labels" / "train.cache.npz"


def test_item_layout_is_chw_rgb_uint8_with_16_column_labels(tmp_path):
    images = write_tiny_dataset(tmp_path, count=2)
    blue = np.zeros((64, 64, 3), np.uint8)
    blue[..., 0] = 255  # BGR blue
    cv2.imwrite(str(images / "im0.png"), blue)
    label_path(images / "im0.png").write_text(FACE + "\n")
    dataset = FaceDataset(images, img_size=64)
    index = dataset.image_files.index(str(images / "im0.png"))
    image, labels, path, shapes = dataset[index]
    assert image.dtype == torch.uint8 and image.shape == (3, 64, 64)
    assert image[2].float().mean() > 250 and image[0].float().mean() < 5  # RGB order: blue is channel 2
    assert labels.shape == (1, 16) and labels.dtype == torch.float32
    np.testing.assert_allclose(labels[0, 1:].numpy(), [float(v) for v in FACE.split()], atol=1e-6)
    assert path == str(images / "im0.png") and shapes[0] == (64, 64)


def test_validation_shapes_map_labels_back_to_original_pixels(tmp_path):
    images = write_tiny_dataset(tmp_path, count=4)
    dataset = FaceDataset(images, img_size=128, rect=True, batch_size=2, stride=32, pad=0.5)
    for k in range(len(dataset)):
        image, labels, _, ((h0, w0), ((ratio_h, ratio_w), (pad_w, pad_h))) = dataset[k]
        h, w = image.shape[1:]
        assert h % 32 == 0 and w % 32 == 0
        original = dataset.labels[k]
        for row, truth in zip(labels.numpy(), original, strict=True):
            cx = (row[2] * w - pad_w) / ratio_w
            cy = (row[3] * h - pad_h) / ratio_h
            np.testing.assert_allclose([cx, cy], [truth[1] * w0, truth[2] * h0], atol=0.6)


def test_rect_batches_share_one_shape_sorted_by_aspect(tmp_path):
    images = write_tiny_dataset(tmp_path, count=6)
    dataset = FaceDataset(images, img_size=96, rect=True, batch_size=3, stride=32)
    aspects = dataset.sizes[:, 1] / dataset.sizes[:, 0]
    assert (np.diff(aspects) >= 0).all()
    shapes = [tuple(dataset[k][0].shape[1:]) for k in range(6)]
    assert shapes[:3] == [(64, 96)] * 3 and shapes[3:] == [(96, 96)] * 3  # h/w 0.67 → (2, 3)·32; 1.25 → 3·32
    images_batch, targets, _, _ = FaceDataset.collate_fn([dataset[k] for k in range(3)])
    assert images_batch.shape == (3, 3, 64, 96)
    assert targets[:, 0].tolist() == sorted(targets[:, 0].tolist()) and set(targets[:, 0].tolist()) <= {
        0,
        1,
        2,
    }


def test_augmented_items_repeat_for_the_same_seed_epoch_and_index(tmp_path):
    images = write_tiny_dataset(tmp_path)
    hyp = {"mosaic": 0.5, "degrees": 5.0}
    a = FaceDataset(images, img_size=64, augment=True, hyp=hyp, seed=3)
    b = FaceDataset(images, img_size=64, augment=True, hyp=hyp, seed=3)
    for k in range(len(a)):
        for epoch in (0, 1):
            x, y = a[(k, epoch)], b[(k, epoch)]
            assert torch.equal(x[0], y[0]) and torch.equal(x[1], y[1])
    assert any(not torch.equal(a[(k, 0)][0], a[(k, 1)][0]) for k in range(len(a)))


def test_augmented_labels_stay_normalised_with_landmarks_inside_boxes(tmp_path):
    images = write_tiny_dataset(tmp_path)
    dataset = FaceDataset(images, img_size=64, augment=True, hyp={"mosaic": 1.0})
    for k in range(len(dataset)):
        for epoch in range(3):
            labels = dataset[(k, epoch)][1].numpy()
            assert ((labels[:, 2:6] >= 0) & (labels[:, 2:6] <= 1)).all()
            points = labels[:, 6:].reshape(-1, 5, 2)
            for row, pts in zip(labels, points, strict=True):
                visible = pts[(pts > 0).all(axis=1)]
                low, high = row[2:4] - row[4:6] / 2, row[2:4] + row[4:6] / 2
                assert ((visible >= low - 1e-4) & (visible <= high + 1e-4)).all()


def test_crop_recipe_gives_square_items_of_the_crop_size(tmp_path):
    images = write_tiny_dataset(tmp_path)
    dataset = FaceDataset(images, img_size=128, augment=True, hyp={"mosaic": 0.0, "crop": 0.5}, stride=32)
    for k in range(len(dataset)):
        image, labels, _, shapes = dataset[(k, 0)]
        assert image.shape == (3, 64, 64) and shapes is None
        assert ((labels[:, 2:6] >= 0) & (labels[:, 2:6] <= 1)).all()


def test_ram_and_disk_image_caches_give_the_same_items(tmp_path):
    images = write_tiny_dataset(tmp_path, count=3)
    plain = FaceDataset(images, img_size=64, augment=True, seed=1)
    cached = {cache: FaceDataset(images, img_size=64, augment=True, seed=1, cache=cache)
              for cache in ("ram", "disk")}
    for dataset in cached.values():
        for k in range(3):
            assert torch.equal(plain[k][0], dataset[k][0])
    assert len(list((tmp_path / "labels").glob("train.images64/*.npy"))) == 3
    # Change a source image (and its mtime): RAM keeps serving the pixels it holds; the disk copy's name
    # follows the file's size and mtime, so the disk cache re-reads the changed image.
    before = {cache: FaceDataset(images, img_size=64, cache=cache) for cache in (None, "ram", "disk")}
    original = before[None][0][0]
    source = Path(before[None].image_files[0])
    mtime = source.stat().st_mtime_ns
    cv2.imwrite(str(source), 255 - cv2.imread(str(source)))
    os.utime(source, ns=(mtime + 10**9, mtime + 10**9))
    changed = before[None][0][0]
    assert not torch.equal(changed, original)
    assert torch.equal(before["ram"][0][0], original)
    assert torch.equal(before["disk"][0][0], changed)


def test_dataset_without_usable_images_is_a_clear_error(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    (images / "a.jpg").write_bytes(b"junk")
    with pytest.raises(FaceyoloError, match="no usable images"):
        FaceDataset(images, img_size=64)


def test_data_yaml_accepts_folders_list_files_and_lists(tmp_path):
    images = write_tiny_dataset(tmp_path, count=4)
    (tmp_path / "some.txt").write_text("./images/train/im0.jpg\n./images/train/im1.jpg\n")
    (tmp_path / "data.yaml").write_text(
        "train: [images/train, some.txt]\nval: some.txt\nnc: 1\nnames: [face]\ndownload: bash get_voc.sh\n"
    )
    config = load_data_config(tmp_path / "data.yaml")
    assert len(image_files(config.train)) == 4 and len(image_files(config.val)) == 2
    assert image_files(config.val)[0] == images / "im0.jpg"
    (tmp_path / "bad.yaml").write_text("train: images/train\nval: nowhere\nnc: 2\nnames: [face]\n")
    with pytest.raises(FaceyoloError, match="bad.yaml: val source nowhere not found"):
        load_data_config(tmp_path / "bad.yaml")


def test_cli_data_show_writes_the_sample_grid_and_label_plot(tmp_path, capsys):
    write_tiny_dataset(tmp_path, count=4)
    (tmp_path / "data.yaml").write_text("train: images/train\nval: images/train\nnc: 1\nnames: [face]\n")
    argv = ["data", "show", "--data", str(tmp_path / "data.yaml"), "--img-size", "64", "--count", "4"]
    assert main([*argv, "--project", str(tmp_path / "runs")]) == 0
    grid = cv2.imread(str(tmp_path / "runs" / "show" / "train_samples.jpg"))
    assert grid is not None and grid.shape == (640, 640, 3)
    assert (tmp_path / "runs" / "show" / "labels.png").stat().st_size > 10_000
    assert "train_samples.jpg" in capsys.readouterr().out
