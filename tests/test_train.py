"""`faceyolo train` end to end on tiny generated face scenes: loss falls, checkpoints load, resume, DDP."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from faceyolo.cli import main
from faceyolo.engine import checkpoint as ckpt
from faceyolo.engine.train_config import TrainConfig
from faceyolo.engine.trainer import train
from faceyolo.weights import load_model

REPO = Path(__file__).resolve().parents[1]
IMG_SIZE = 320
TRAIN_IMAGES, VAL_IMAGES = 32, 8
# Place plausible landmarks in each box (fractions of w, h), so the landmark loss takes part. Order: left
# eye, right eye, nose, left and right mouth corner.
FAST_LEARNING_HYP = {"warmup_epochs": 0.0, "mosaic": 0.0, "scale": 0.0, "translate": 0.0, "shear": 0.0,
                     "hsv_h": 0.0, "hsv_s": 0.0, "hsv_v": 0.0, "fliplr": 0.0}
LANDMARK_FRACTIONS = np.array([[0.3, 0.38], [0.7, 0.38], [0.5, 0.58], [0.35, 0.78], [0.65, 0.78]])


def _write_split(scenes, out: Path, split: str) -> None:
    """Write (name, image BGR, face boxes (F, 4) xyxy) scenes shrunk to IMG_SIZE, with YOLO-face labels."""
    (out / "images" / split).mkdir(parents=True, exist_ok=True)
    (out / "labels" / split).mkdir(parents=True, exist_ok=True)
    for name, image, boxes in scenes:
        h, w = image.shape[:2]
        scale = IMG_SIZE / max(h, w)
        small = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(out / "images" / split / f"{name}.jpg"), small)
        x1, y1 = np.clip(boxes[:, 0], 0, w - 1), np.clip(boxes[:, 1], 0, h - 1)
        x2, y2 = np.clip(boxes[:, 2], 1, w), np.clip(boxes[:, 3], 1, h)
        lines = []
        for bx1, by1, bx2, by2 in zip(x1, y1, x2, y2, strict=True):
            bw, bh = bx2 - bx1, by2 - by1
            points = np.array([bx1, by1]) + LANDMARK_FRACTIONS * [bw, bh]
            marks = (points / [w, h]).ravel() if min(bw, bh) * scale >= 8 else -np.ones(10)
            values = [(bx1 + bw / 2) / w, (by1 + bh / 2) / h, bw / w, bh / h, *marks]
            lines.append("0 " + " ".join(f"{v:.6f}" for v in values))
        (out / "labels" / split / f"{name}.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Train on one thread: on a busy 2-core machine, two threads per process oversubscribe it badly."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_data(face_scenes, tmp_path_factory) -> Path:
    """Return a data.yaml over 32 train and 8 val face scenes (1-4 portrait faces, 16-120 px) at 320 px."""
    rng = np.random.default_rng(7)
    scenes = []
    for k in range(TRAIN_IMAGES + VAL_IMAGES):
        widths = tuple(int(w) for w in rng.integers(16, 120, rng.integers(1, 5)))
        scenes.append((f"scene_{k:02d}", *face_scenes(widths, seed=1000 + k)))
    out = tmp_path_factory.mktemp("tiny_faces")
    _write_split(scenes[:TRAIN_IMAGES], out, "train")
    _write_split(scenes[TRAIN_IMAGES:], out, "val")
    data_yaml = out / "data.yaml"
    data_yaml.write_text(yaml.safe_dump({"train": "images/train", "val": "images/val", "nc": 1,
                                         "names": ["face"]}))
    return data_yaml


def _config(data_yaml: Path, project: Path, **overrides) -> TrainConfig:
    values = dict(data=str(data_yaml), model="yolov5n-0.5", epochs=2, img_size=IMG_SIZE, batch_size=8,
                  device="cpu", workers=0, project=str(project), name="run")
    values.update(overrides)
    return TrainConfig(**values)


def _rows(run_dir: Path) -> list[dict[str, float]]:
    with (run_dir / "results.csv").open() as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def test_two_epochs_lower_the_loss_and_the_checkpoint_detects_faces(tiny_data, tmp_path):
    from faceyolo.inference.detector import FaceDetector

    # The spec recipe barely moves the weights in 8 steps (1000 warm-up iterations from lr 0, nominal batch
    # 64), so this run steps every batch with Adam and no warm-up, on un-augmented images.
    result = train(_config(tiny_data, tmp_path, epochs=2, optimizer="adam", nominal_batch=8,
                           min_warmup_iters=0, hyp=FAST_LEARNING_HYP))
    rows = _rows(result.run_dir)
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    assert all(r["time/epoch_s"] > 0 for r in rows)  # each epoch's wall time, for budgeting a run
    # The same un-augmented train images each epoch. (The val loss barely moves in 8 steps: eval mode uses
    # BatchNorm running statistics, which momentum 0.03 leaves near their initial values.)
    assert rows[1]["train/total"] < rows[0]["train/total"]
    assert all(np.isfinite(r["val/total"]) for r in rows)
    for name in ("last.safetensors", "best.safetensors", "last.state.safetensors"):
        assert (result.run_dir / "weights" / name).is_file()
    for name in ("results.png", "PR_curve.png", "config.yaml"):
        assert (result.run_dir / name).is_file()
    config = yaml.safe_load((result.run_dir / "config.yaml").read_text())
    assert config["hyp"]["lr0"] == 0.01 and config["img_size"] == IMG_SIZE
    detector = FaceDetector.from_file(result.last, conf=0.001, img_size=IMG_SIZE)
    image = cv2.imread(str(next((tiny_data.parent / "images" / "val").glob("*.jpg"))))
    faces = detector(image)
    assert faces and all(f.landmarks.shape == (5, 2) for f in faces)
    # The detection weights are the EMA of the training state.
    state = ckpt.load_training_state(result.run_dir / "weights" / "last.state.safetensors")
    loaded = load_model(result.last).state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.ema.items())


def test_resume_after_kill_finishes_same_epochs(tiny_data, tmp_path):
    command = [sys.executable, "-m", "faceyolo", "train", "--data", str(tiny_data), "--model", "yolov5n-0.5",
               "--epochs", "3", "--img-size", str(IMG_SIZE), "--batch-size", "8", "--device", "cpu",
               "--workers", "0", "--max-batches", "2", "--project", str(tmp_path), "--name", "killed"]
    state = tmp_path / "killed" / "weights" / "last.state.safetensors"
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 240
        while not state.is_file() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert state.is_file(), "no checkpoint before the deadline"
    finally:  # killed while epoch 2 (or later) runs
        process.send_signal(signal.SIGKILL)
        process.wait()
    killed_at = ckpt.load_training_state(state).epoch
    assert killed_at < 2
    assert main(["train", "--resume", str(tmp_path / "killed")]) == 0
    rows = _rows(tmp_path / "killed")
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    assert ckpt.load_training_state(state).epoch == 2
    # Model, optimizer, EMA, schedule and random state all continued: the same numbers as a run never killed.
    uninterrupted = _rows(train(_config(tiny_data, tmp_path, name="whole", epochs=3, max_batches=2)).run_dir)
    for resumed_row, whole_row in zip(rows, uninterrupted, strict=True):
        assert resumed_row["train/total"] == pytest.approx(whole_row["train/total"], rel=1e-4)


def test_gloo_two_process_run_trains_and_saves_once(tiny_data, tmp_path):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "faceyolo", "train", "--data", str(tiny_data), "--model", "yolov5n-0.5", "--epochs", "1",
               "--img-size", str(IMG_SIZE), "--batch-size", "8", "--device", "cpu", "--workers", "0",
               "--max-batches", "2", "--project", str(tmp_path), "--name", "ddp"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp"]  # rank 1 created no run folder
    assert [int(r["epoch"]) for r in _rows(tmp_path / "ddp")] == [0]
    config = yaml.safe_load((tmp_path / "ddp" / "config.yaml").read_text())
    assert config["world_size"] == 2 and config["batch_size"] == 8
    assert (tmp_path / "ddp" / "weights" / "last.safetensors").is_file()
    # Each process's random generators are saved, so a resumed run continues every rank's sequence.
    rng = ckpt.load_training_state(tmp_path / "ddp" / "weights" / "last.state.safetensors").rng
    assert len(rng) == 2 and not torch.equal(rng[0]["torch"], rng[1]["torch"])


def test_transfer_from_another_variant_reports_skipped_tensors(tiny_data, tmp_path, capsys):
    from faceyolo.models.build import build_model
    from faceyolo.weights import save_weights

    source = save_weights(build_model("yolov5n-0.5"), tmp_path / "n05.safetensors")
    argv = ["train", "--data", str(tiny_data), "--model", "yolov5n", "--weights", str(source),
            "--epochs", "1", "--img-size", str(IMG_SIZE), "--batch-size", "-1", "--device", "cpu",
            "--workers", "0", "--max-batches", "1", "--noautoanchor", "--project", str(tmp_path),
            "--name", "transfer"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "transferred " in out and "skipped" in out and "shape" in out
    # --batch-size -1 on CPU falls back to the default batch.
    assert yaml.safe_load((tmp_path / "transfer" / "config.yaml").read_text())["batch_size"] == 16


def test_auto_batch_on_cpu_picks_the_default_without_probing():
    from faceyolo.engine.autobatch import CPU_DEFAULT_BATCH, auto_batch_size

    batch, report = auto_batch_size(torch.nn.Conv2d(3, 3, 1), 640, torch.device("cpu"))
    assert batch == CPU_DEFAULT_BATCH and "CPU" in report


def test_nan_loss_stops_with_epoch_and_batch(tiny_data, tmp_path, monkeypatch, capsys):
    from faceyolo.engine.loss import FaceLoss

    real_call = FaceLoss.__call__

    def poisoned(self, preds, targets):
        loss, terms = real_call(self, preds, targets)
        return loss * float("nan"), {**terms, "box": torch.tensor(float("nan"))}

    monkeypatch.setattr(FaceLoss, "__call__", poisoned)
    argv = ["train", "--data", str(tiny_data), "--model", "yolov5n-0.5", "--epochs", "1", "--img-size",
            str(IMG_SIZE), "--batch-size", "8", "--device", "cpu", "--workers", "0", "--max-batches", "1",
            "--noautoanchor", "--project", str(tmp_path), "--name", "nan"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "not finite at epoch 1, batch 0" in err and "Traceback" not in err


def test_out_of_memory_halves_the_forward_batch_and_continues(tiny_data, tmp_path, monkeypatch):
    from faceyolo.models.build import FaceModel

    real_forward = FaceModel.forward

    def small_memory(self, x):
        if self.training and x.shape[0] > 4:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real_forward(self, x)

    monkeypatch.setattr(FaceModel, "forward", small_memory)
    lines: list[str] = []
    result = train(_config(tiny_data, tmp_path, name="oom", epochs=1, max_batches=2, autoanchor=False),
                   log=lines.append)
    assert any("out of memory at 8 images per forward: continuing with 4" in line for line in lines)
    assert [int(r["epoch"]) for r in _rows(result.run_dir)] == [0]
    assert ckpt.load_training_state(result.run_dir / "weights" / "last.state.safetensors").extra[
        "micro_batches"] == 2


def test_resume_may_change_the_batch_size(tiny_data, tmp_path, capsys):
    run_dir = train(_config(tiny_data, tmp_path, name="rebatch", epochs=1, max_batches=1,
                            autoanchor=False)).run_dir
    # Pretend the run was stopped after its first of two epochs (as a CUDA out-of-memory stop leaves it).
    state_path = run_dir / "weights" / "last.state.safetensors"
    state = ckpt.load_training_state(state_path)
    state.extra["config"]["epochs"] = 2
    ckpt.save_training_state(state_path, state)
    assert main(["train", "--resume", str(run_dir), "--batch-size", "4"]) == 0
    assert "batch size 4 instead of the run's 8" in capsys.readouterr().out
    assert [int(r["epoch"]) for r in _rows(run_dir)] == [0, 1]
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["batch_size"] == 4


def test_resume_from_a_state_without_its_run_config_exits_with_the_reason(tiny_data, tmp_path, capsys):
    run_dir = train(_config(tiny_data, tmp_path, name="noconf", epochs=1, max_batches=1,
                            autoanchor=False)).run_dir
    state_path = run_dir / "weights" / "last.state.safetensors"
    state = ckpt.load_training_state(state_path)
    del state.extra["config"]
    ckpt.save_training_state(state_path, state)
    capsys.readouterr()
    assert main(["train", "--resume", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert "last.state.safetensors: damaged training state (no run config)" in err
    assert "Traceback" not in err


def test_missing_data_yaml_is_reported_by_name_and_leaves_no_run_folder(tmp_path, capsys):
    argv = ["train", "--data", str(tmp_path / "nope.yaml"), "--model", "yolov5n-0.5", "--device", "cpu",
            "--project", str(tmp_path / "runs")]
    assert main(argv) == 2
    assert "nope.yaml" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()
