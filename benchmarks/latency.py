"""Print the CPU forward latency of model variants beside the original code's figures.

Usage: python benchmarks/latency.py [--backend torch|onnx] [--int8] [--detect] [--profile]
                                   [--variants yolov5n-0.5 ...]
Method (as reference/README.md §6): batch 1, 1x3xSxS, 2 threads, random-init fused model in eval mode,
3 interleaved rounds of 5 warm-up then 20 timed calls; the figure is the median of the round medians.
The machine may be shared: a loaded round can be ~50% slower, so all round medians are printed.

`--backend onnx` times a static faceyolo ONNX export in ONNX Runtime (same thread count) beside the
original's ONNX export figures of issue 6, and the third-party ONNX export of the official n-0.5 (raw heads,
the original export's graph) in the same rounds. `--int8` adds each variant's static INT8 model, calibrated
on `--calib` images. `--detect` adds the whole FaceDetector call (letterbox, model, decode, NMS, mapping
back) of the official n-0.5 on square crops of a crowd and of zidane.jpg (640x640 network input), for
the comparison with OpenCV's YuNet (~24 ms per detect call at 640x640, 2 threads, on this machine).
`--profile` then prints, for every ONNX model timed, where ONNX Runtime spends its time by operator type
(its profiler, sequential node times, so the sum exceeds the wall time).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_VARIANTS = ["yolov5n-0.5", "yolov5n", "yolov5s"]
# Issue 6: the original's ONNX export on this machine, batch 1, 640x640, 2 threads.
ORIGINAL_ONNX_MS = {"yolov5n-0.5": 26.0, "yolov5n": 91.0, "yolov5s": 148.0}
THIRD_PARTY_ONNX = "weights/yolov5n-0.5.third-party-export.onnx"
RAW = "reference/yolov5n-0.5/raw"


def torch_forward(variant: str, img_size: int, fuse: bool) -> Callable[[], object]:
    """Return a zero-argument call running one eval forward of a random-init `variant` in PyTorch."""
    import torch

    from faceyolo.models.build import build_model
    from faceyolo.models.fuse import fuse_model

    torch.manual_seed(0)
    model = build_model(variant).eval()
    if fuse:
        model = fuse_model(model)
    x = torch.rand(1, 3, img_size, img_size)

    def call() -> object:
        with torch.inference_mode():
            return model(x)

    return call


def onnx_session_call(path: Path, img_size: int) -> Callable[[], object]:
    """Return a zero-argument call running one ONNX Runtime inference of `path` on a random 1x3xSxS input."""
    import numpy as np
    import torch

    from faceyolo.inference.onnx_backend import create_session

    session = create_session(path, threads=torch.get_num_threads())
    feed = {session.get_inputs()[0].name: np.random.default_rng(0).random((1, 3, img_size, img_size),
                                                                           dtype=np.float32)}
    return lambda: session.run(None, feed)


def export_random(variant: str, img_size: int, folder: Path) -> Path:
    """Return the static ONNX export (1x3xSxS, decoded output) of a random-init `variant` in `folder`."""
    import torch

    from faceyolo.export.onnx import export_onnx
    from faceyolo.models.build import build_model

    torch.manual_seed(0)
    return export_onnx(build_model(variant).eval(), folder / f"{variant}.onnx", img_size)


def onnx_forward(variant: str, img_size: int, fuse: bool) -> Callable[[], object]:
    """Return a call running a random-init `variant`'s ONNX export (always fused) in ONNX Runtime."""
    return onnx_session_call(export_random(variant, img_size, WORK), img_size)


# Another backend registers here a function with the same signature as torch_forward.
BACKENDS: dict[str, Callable[[str, int, bool], Callable[[], object]]] = {"torch": torch_forward,
                                                                         "onnx": onnx_forward}
WORK = Path(tempfile.mkdtemp(prefix="faceyolo-latency-"))  # exported models live here during the run


def int8_forward(variant: str, img_size: int, calib: Path, count: int) -> Callable[[], object]:
    """Return a call running a random-init `variant`'s static INT8 ONNX model (calibrated on `calib`)."""
    from faceyolo.export.quantize import quantize_int8

    fp32 = export_random(variant, img_size, WORK)
    int8 = quantize_int8(fp32, WORK / f"{variant}.int8.onnx", calib, count).path
    return onnx_session_call(int8, img_size)


def detect_calls(shared: Path, int8: bool, calib: Path, count: int) -> dict[str, Callable[[], object]]:
    """Return labelled calls of the whole FaceDetector call of the official n-0.5 (torch, ONNX[, INT8])."""
    import cv2

    from faceyolo.export.onnx import export_onnx
    from faceyolo.export.quantize import quantize_int8
    from faceyolo.inference.detector import FaceDetector
    from faceyolo.weights import load_model

    model = load_model(shared / "weights" / "yolov5n-0.5.pt")
    fp32 = export_onnx(model, WORK / "official.onnx", dynamic=True)
    weights = {"torch": None, "onnx": fp32}
    if int8:
        weights["onnx int8"] = quantize_int8(fp32, WORK / "official.int8.onnx", calib, count).path
    # Square crops, so the network input is 640x640 as in YuNet's figure: a crowd and a two-person photo.
    crowd = cv2.imread(str(shared / RAW / "images" / "test.jpg"))[:, 449:1599]  # 1150x1150
    zidane = cv2.imread(str(shared / RAW / "images" / "zidane.jpg"))[:, 280:1000]  # 720x720
    calls = {}
    for label, path in weights.items():
        detector = (FaceDetector.from_model(model, conf=0.5) if path is None
                    else FaceDetector.from_file(path, conf=0.5))
        for name, image in (("crowd 1150² → 640²", crowd), ("zidane 720² → 640²", zidane)):
            faces = len(detector(image))
            calls[f"detect {label}, {name}, conf 0.5, {faces} faces"] = lambda d=detector, im=image: d(im)
    return calls


def print_operator_profile(path: Path, img_size: int, threads: int, runs: int = 10, top: int = 8) -> None:
    """Print ONNX Runtime's per-operator-type time (ms per run) of `path`, the costliest `top` types first."""
    import collections

    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.enable_profiling = threads, True
    options.profile_file_prefix = str(WORK / f"{path.stem}.profile")
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: np.random.default_rng(0).random((1, 3, img_size, img_size),
                                                                           dtype=np.float32)}
    for _ in range(runs):
        session.run(None, feed)
    events = json.loads(Path(session.end_profiling()).read_text())
    ms, count = collections.Counter(), collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            ms[event["args"]["op_name"]] += event["dur"] / 1e3 / runs
            count[event["args"]["op_name"]] += 1
    parts = ", ".join(f"{op} {t:.2f} ({count[op] // runs})" for op, t in ms.most_common(top))
    print(f"  {path.name}: nodes {sum(ms.values()):.1f} ms per run; {parts}")


def round_median_ms(call: Callable[[], object], warmup: int, calls: int) -> float:
    """Return the median wall time in ms of `calls` timed calls after `warmup` untimed ones."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def original_ms(shared: Path, variant: str, fuse: bool, backend: str = "torch") -> float | None:
    """Return the original code's median ms for `variant` at 640 (PyTorch: reference/latency_cpu.json)."""
    if backend == "onnx":
        return ORIGINAL_ONNX_MS.get(variant)
    path = shared / "reference" / "latency_cpu.json"
    if not path.is_file():
        return None
    key = f"{variant}_randominit_{'fused' if fuse else 'unfused'}_forward_1x3x640x640"
    entry = json.loads(path.read_text()).get(key)
    return entry["median_ms"] if entry else None


def main() -> None:
    """Time each variant in interleaved rounds and print a table beside the original's figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=sorted(BACKENDS), default="torch", help="inference backend")
    parser.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS, help="model variants to time")
    parser.add_argument("--img-size", type=int, default=640, help="square input size")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads (torch.set_num_threads)")
    parser.add_argument("--no-fuse", action="store_true", help="time the unfused model")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--warmup", type=int, default=5, help="untimed calls per round")
    parser.add_argument("--calls", type=int, default=20, help="timed calls per round")
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared", help="the shared data folder")
    parser.add_argument("--int8", action="store_true", help="onnx: also time each variant's INT8 model")
    parser.add_argument("--calib", type=Path, default=None,
                        help="INT8 calibration images (default: shared train_pool images, never val_sample)")
    parser.add_argument("--calib-images", type=int, default=32, help="calibration images used for INT8")
    parser.add_argument("--profile", action="store_true",
                        help="onnx: print each model's time per operator type (ms per run, node count)")
    parser.add_argument("--detect", action="store_true",
                        help="also time whole FaceDetector calls of the official n-0.5 (needs --shared)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    fuse = not args.no_fuse
    calib = args.calib or args.shared / "data" / "widerface" / "train_pool" / "images"
    calls = {v: BACKENDS[args.backend](v, args.img_size, fuse) for v in args.variants}
    third_party = args.shared / THIRD_PARTY_ONNX
    if args.backend == "onnx" and args.img_size == 640 and third_party.is_file():
        calls["original export n-0.5 (third-party ONNX)"] = onnx_session_call(third_party, 640)
    if args.backend == "onnx" and args.int8:
        calls.update({f"{v} int8": int8_forward(v, args.img_size, calib, args.calib_images)
                      for v in args.variants})
    if args.detect:
        calls.update(detect_calls(args.shared, args.int8, calib, args.calib_images))
    rounds: dict[str, list[float]] = {label: [] for label in calls}
    for _ in range(args.rounds):
        for label, call in calls.items():
            rounds[label].append(round_median_ms(call, args.warmup, args.calls))

    print(f"backend {args.backend}, {'fused' if fuse else 'unfused'}, 1x3x{args.img_size}x{args.img_size}, "
          f"{args.threads} threads, {args.rounds} rounds x {args.calls} calls")
    width = max(14, *(len(label) for label in rounds))
    print(f"{'variant':<{width}} {'median ms':>10} {'original ms':>12} {'ratio':>6}  round medians")
    for label, medians in rounds.items():
        ours = statistics.median(medians)
        variant = label.removesuffix(" int8")
        ref = original_ms(args.shared, variant, fuse, args.backend) if args.img_size == 640 else None
        ref_text = f"{ref:12.1f}" if ref else f"{'-':>12}"
        ratio = f"{ours / ref:6.2f}" if ref else f"{'-':>6}"
        print(f"{label:<{width}} {ours:10.1f} {ref_text} {ratio}  {', '.join(f'{m:.1f}' for m in medians)}")

    if args.profile and args.backend == "onnx":
        print("ONNX Runtime profile, ms per run by operator type (nodes):")
        for path in sorted(WORK.glob("*.onnx")):
            print_operator_profile(path, args.img_size, args.threads)


if __name__ == "__main__":
    main()
