"""Shared test fixtures: where ../shared lies (skipping cleanly when it is absent), and the synthetic inputs
that let most tests run without it: face scenes made from a public-domain portrait, the packaged default
weights re-saved as an official-style `.pt`, and a small WIDER FACE val tree (images, bbx_gt, .mat files)."""

from __future__ import annotations

import copy
import os
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
# FACEYOLO_SHARED points elsewhere: a missing folder runs the suite as a clone without ../shared would.
SHARED = Path(os.environ.get("FACEYOLO_SHARED") or REPO.parent / "shared")
EVENTS = ("0--Parade", "12--Group", "7--Cheering")
# Face widths (px) per synthetic val image, three images per event; 0-based indices of faces flagged invalid.
SCENE_FACES = ((110,), (70, 40), (36, 24, 14), (90, 60), (50, 30, 18, 12), (80,), (120, 20), (44, 44, 26),
               (64, 16, 10))
INVALID = {4: (3,), 8: (2,)}
SETTING_MIN_WIDTH = {"easy": 50, "medium": 25, "hard": 0}  # which faces each synthetic setting keeps


@pytest.fixture(scope="session")
def shared() -> Path:
    """Return the ../shared folder beside the checkout, or skip the test when it is absent."""
    if not (SHARED / "README.md").is_file():
        pytest.skip(f"needs ../shared (not found at {SHARED})")
    return SHARED


@pytest.fixture(scope="session")
def official_pt(shared: Path) -> Path:
    """Return the official yolov5n-0.5.pt test reference (GPL: tests only)."""
    path = shared / "weights" / "yolov5n-0.5.pt"
    if not path.is_file():
        pytest.skip(f"needs {path}")
    return path


# --- faces without ../shared ---


@pytest.fixture(scope="session")
def face_photo() -> Path:
    """Return the public-domain portrait `faceyolo demo` uses (matplotlib sample data): one face."""
    from faceyolo.demo import demo_photo

    return demo_photo()


@pytest.fixture(scope="session")
def default_model():
    """Return the packaged default yolov5n-0.5 (trained by faceyolo): real weights that find faces."""
    from faceyolo.inference.detector import DEFAULT_SAFETENSORS
    from faceyolo.weights import load_model

    return load_model(DEFAULT_SAFETENSORS)


@pytest.fixture(scope="session")
def photo_face_box(face_photo: Path, default_model) -> np.ndarray:
    """Return the portrait's face box (4,) xyxy as the default model finds it."""
    from faceyolo.inference.detector import FaceDetector

    (face,) = FaceDetector.from_model(default_model, conf=0.5)(str(face_photo))
    return face.box.astype(np.float64)


def face_scene(photo_bgr: np.ndarray, face_xyxy: np.ndarray, face_widths: tuple[int, ...], seed: int,
               height: int = 320) -> tuple[np.ndarray, np.ndarray]:
    """Return (image (height, W, 3) BGR uint8, face boxes (F, 4) xyxy float64): copies of the portrait side by
    side on a smooth random background, each scaled so its face is `face_widths[k]` px wide, every other one
    mirrored."""
    rng = np.random.default_rng(seed)
    scales = [w / (face_xyxy[2] - face_xyxy[0]) for w in face_widths]
    sizes = [(round(photo_bgr.shape[1] * s), round(photo_bgr.shape[0] * s)) for s in scales]
    width = max(64, sum(w for w, _ in sizes) + 8 * (len(sizes) + 1))
    width += -width % 32
    coarse = rng.integers(0, 256, (height // 32 + 2, width // 32 + 2, 3), dtype=np.uint8)
    image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    boxes, x = [], 8
    for k, (scale, (w, h)) in enumerate(zip(scales, sizes, strict=True)):
        portrait = cv2.resize(photo_bgr, (w, h), interpolation=cv2.INTER_AREA)
        box = face_xyxy * scale
        if k % 2:
            portrait = portrait[:, ::-1]
            box = np.array([w - box[2], box[1], w - box[0], box[3]])
        top = int(rng.integers(0, max(1, height - h + 1))) if h < height else 0
        visible = portrait[: height - top]
        image[top : top + len(visible), x : x + w] = visible
        boxes.append(box + [x, top, x, top])
        x += w + 8
    return image, np.array(boxes).reshape(-1, 4)


@pytest.fixture(scope="session")
def face_scenes(face_photo: Path, photo_face_box: np.ndarray):
    """Return a function (face_widths, seed, height=320) -> (image BGR, boxes xyxy) of synthetic scenes."""
    photo = cv2.imread(str(face_photo))
    return lambda widths, seed, height=320: face_scene(photo, photo_face_box, widths, seed, height)


@pytest.fixture(scope="session")
def scene_files(face_scenes, tmp_path_factory) -> dict[str, Path]:
    """Return {name: path} of four scenes on disk: "single" (1 face), "pair" (2), "trio" (3), "crowd" (7)."""
    widths = {"single": (140,), "pair": (96, 64), "trio": (48, 30, 20), "crowd": (40, 32, 26, 20, 16, 12, 10)}
    folder = tmp_path_factory.mktemp("scenes")
    paths = {}
    for seed, (name, faces) in enumerate(widths.items()):
        paths[name] = folder / f"{name}.jpg"
        cv2.imwrite(str(paths[name]), face_scenes(faces, seed=100 + seed)[0])
    return paths


# --- an official-style checkpoint without ../shared ---


def save_official_style_checkpoint(model, path: Path, hyp: dict | None = None, epoch: int = 41) -> Path:
    """Return `path` after torch.save-ing `model` the way YOLOv5-Face checkpoints hold it: a pickled fp16
    `models.yolo.Model` whose blocks pickle as `models.common.*`, with yaml, names, nc, stride and hyp."""
    import torch
    from torch import nn

    net = copy.deepcopy(model).half()
    net.detect._grids = {}  # cached grids hold torch.device keys, which no checkpoint carries
    root = type("Model", (nn.Module,), {})()
    root.model, root.yaml, root.names, root.nc = net.model, net.spec, list(net.names), net.nc
    root.stride, root.hyp = net.stride.clone(), hyp
    modules = {name: types.ModuleType(name) for name in ("models", "models.yolo", "models.common")}
    with pytest.MonkeyPatch.context() as patch:
        for name, module in modules.items():
            patch.setitem(sys.modules, name, module)
        for cls in {type(m) for m in root.modules()}:
            if cls.__module__.startswith("torch."):
                continue
            home = "models.yolo" if cls.__name__ in ("Model", "Detect") else "models.common"
            patch.setattr(cls, "__module__", home)
            setattr(modules[home], cls.__name__, cls)
        torch.save({"epoch": epoch, "best_fitness": np.array([0.25]), "model": root, "optimizer": None,
                    "training_results": None}, path)
    return path


@pytest.fixture(scope="session")
def official_style_pt(default_model, tmp_path_factory) -> Path:
    """Return the default weights saved as an official-style YOLOv5-Face `.pt` (stands in for the official
    file wherever a test needs a `.pt` that finds faces, not the official numbers)."""
    path = tmp_path_factory.mktemp("official_style") / "n05-default.pt"
    return save_official_style_checkpoint(default_model, path, hyp={"lr0": 0.004, "box": 0.05})


@pytest.fixture(params=["default-weights-pt", "official-pt"])
def yolov5_face_pt(request) -> Path:
    """Return an official-format `.pt`: the re-saved default weights (anywhere), then the official file."""
    official = request.param == "official-pt"
    return request.getfixturevalue("official_pt" if official else "official_style_pt")


# --- a WIDER FACE val tree without ../shared ---


@dataclass
class SyntheticWider:
    """A small WIDER FACE val tree: `images/<event>/<name>.jpg`, `wider_face_split/wider_face_val_bbx_gt.txt`,
    `retinaface/val/label.txt`, `ground_truth/*.mat`; `faces[(event, name)]` (F, 4) xywh int pixels."""

    root: Path
    faces: dict[tuple[str, str], np.ndarray]
    invalid: dict[tuple[str, str], tuple[int, ...]]

    @property
    def images(self) -> Path:
        return self.root / "images"

    @property
    def gt_dir(self) -> Path:
        return self.root / "ground_truth"

    @property
    def bbx_gt(self) -> Path:
        return self.root / "wider_face_split" / "wider_face_val_bbx_gt.txt"

    @property
    def image_list(self) -> list[str]:
        """Return the "event/name" items in .mat order."""
        return [f"{event}/{name}" for event, name in self.faces]


def _cells(items: list) -> np.ndarray:
    """Return a (n, 1) object array: what savemat writes as a MATLAB cell column."""
    cells = np.empty((len(items), 1), dtype=object)
    for k, item in enumerate(items):
        cells[k, 0] = item
    return cells


def write_wider_tree(root: Path, scenes) -> SyntheticWider:
    """Return the SyntheticWider written under `root` from the `face_scenes` fixture's function."""
    from scipy.io import savemat

    faces, invalid, bbx_lines, retina_lines = {}, {}, [], []
    for k, widths in enumerate(SCENE_FACES):
        event = EVENTS[k // 3]
        number, label = event.split("--")
        name = f"{number}_{label}_{label}_{number}_{k}"  # WIDER's naming: 0_Parade_Parade_0_<id>
        image, boxes = scenes(widths, seed=k)
        (root / "images" / event).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "images" / event / f"{name}.jpg"), image)
        xywh = np.round(np.c_[boxes[:, :2], boxes[:, 2:] - boxes[:, :2]]).astype(np.int64)
        faces[(event, name)], invalid[(event, name)] = xywh, INVALID.get(k, ())
        bbx_lines += [f"{event}/{name}.jpg", str(len(xywh))]
        bbx_lines += [f"{x} {y} {w} {h} 0 0 0 {int(i in INVALID.get(k, ()))} 0 0" for i, (x, y, w, h)
                      in enumerate(xywh)]
        retina_lines += [f"# {event}/{name}.jpg", *(f"{x} {y} {w} {h}" for x, y, w, h in xywh)]
    for path, lines in ((root / "wider_face_split" / "wider_face_val_bbx_gt.txt", bbx_lines),
                        (root / "retinaface" / "val" / "label.txt", retina_lines)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
    per_event = [[key for key in faces if key[0] == event] for event in EVENTS]
    common = {
        "event_list": _cells(list(EVENTS)),
        "file_list": _cells([_cells([name for _, name in keys]) for keys in per_event]),
        "face_bbx_list": _cells([_cells([faces[key].astype(float) for key in keys]) for keys in per_event]),
    }
    (root / "ground_truth").mkdir()
    savemat(root / "ground_truth" / "wider_face_val.mat", common)
    for setting, min_width in SETTING_MIN_WIDTH.items():
        kept = [_cells([np.flatnonzero(faces[key][:, 2] >= min_width)[:, None] + 1 for key in keys])
                for keys in per_event]
        savemat(root / "ground_truth" / f"wider_{setting}_val.mat", {**common, "gt_list": _cells(kept)})
    return SyntheticWider(root, faces, invalid)


@pytest.fixture(scope="session")
def synthetic_wider(face_scenes, tmp_path_factory) -> SyntheticWider:
    """Return a nine-image WIDER FACE val tree in three events, 1-4 portrait faces per image (10-120 px)."""
    return write_wider_tree(tmp_path_factory.mktemp("synthetic_wider"), face_scenes)


MISSED_BELOW = 15  # the synthetic predictions miss every face narrower than this (px)


def wider_predictions(wider: SyntheticWider, seed: int = 0) -> dict[tuple[str, str], np.ndarray]:
    """Return {(event, name): (P, 5) x y w h score} by descending score: each face at least MISSED_BELOW px
    wide found with a few pixels of jitter and a score by size (bigger faces score higher, no two alike),
    plus two low-scored false positives, in the order the original writes them."""
    rng = np.random.default_rng(seed)
    rows = {}
    for key, faces in wider.faces.items():
        faces = faces[faces[:, 2] >= MISSED_BELOW]
        jitter = rng.normal(0, 1, faces.shape) * np.maximum(1, faces[:, 2:3] / 20)
        scores = 0.5 + 0.49 * np.minimum(faces[:, 2], 100) / 100 + rng.uniform(0, 0.004, len(faces))
        found = np.c_[faces + jitter, scores]
        false = np.c_[rng.uniform(0, 200, (2, 2)), rng.uniform(10, 40, (2, 2)), rng.uniform(0.05, 0.3, 2)]
        found = np.concatenate([found, false])
        rows[key] = found[np.argsort(-found[:, 4], kind="stable")]
    return rows


def write_wider_predictions(folder: Path, rows: dict[tuple[str, str], np.ndarray], order=None) -> Path:
    """Return `folder` holding <event>/<name>.txt per image of `rows`; `order(rows)` may permute a file's."""
    for (event, name), boxes in rows.items():
        boxes = boxes if order is None else order(boxes)
        path = folder / event / f"{name}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        body = "".join(f"{x:.1f} {y:.1f} {w:.1f} {h:.1f} {s:.3f}\n" for x, y, w, h, s in boxes)
        path.write_text(f"{name}\n{len(boxes)}\n{body}")
    return folder


@pytest.fixture(scope="session")
def synthetic_predictions(synthetic_wider: SyntheticWider, tmp_path_factory) -> Path:
    """Return a complete WIDER prediction folder (<event>/<name>.txt) for the synthetic val tree."""
    folder = tmp_path_factory.mktemp("synthetic_predictions")
    return write_wider_predictions(folder, wider_predictions(synthetic_wider))
